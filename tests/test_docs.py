"""The documentation site: it builds with --strict, its generated reference names everything the code has, and the
commands its pages mark as runnable run and print what the pages show.

Runnable blocks: a ```` ```console ```` block right after ``<!-- docs-test: run -->`` or
``<!-- docs-test: background -->``. Lines starting with ``$ `` are commands (a trailing ``\\`` continues one), the
lines after a command are its output as the page shows it; every shown line must appear, in order (``...`` in a
line stands for any text). ``run`` commands run to completion, one after another, in a fresh folder; a
``background`` command keeps running (a broker, a worker, a consumer) until the page is done, and the test waits
for the output its block shows before going on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import doctest
import html
import importlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = DOCS / "pages"
BIN = Path(sys.executable).parent  # the environment's bin folder: valuedrift, mkdocs

# Pages with runnable blocks, and the marks their test needs. The quick start's port is replaced by a free one.
RUNNABLE = {
    "getting-started.md": [],
    "chat-logs/formats.md": [],
    "chat-logs/quickstart.md": [pytest.mark.integration],
}
PORT_IN_PAGES = "19092"


# ------------------------------------------------------------------------------------------------ the built site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(DOCS / "mkdocs.yml"),
                        "-d", str(out)], capture_output=True, text=True, timeout=600, cwd=ROOT,
                       env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert r.returncode == 0, f"mkdocs build --strict failed:\n{r.stdout}\n{r.stderr}"
    return out


def page_html(site: Path, page: str) -> str:
    return (site / page / "index.html").read_text(encoding="utf-8")


def sections(doc: str) -> dict[str, str]:
    """The HTML after each heading with an id, up to the next heading, by id."""
    parts = re.split(r'<h[1-6] id="([^"]+)"', doc)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def commands() -> list[tuple[str, object]]:
    """Every command below the ``valuedrift`` app, with its path (``valuedrift classifier train``)."""
    import typer
    from valuedrift.ops.cli import app

    out = []

    def walk(cmd: object, path: str) -> None:
        for name, sub in sorted((getattr(cmd, "commands", None) or {}).items()):
            if not getattr(sub, "hidden", False):
                out.append((f"{path} {name}", sub))
                walk(sub, f"{path} {name}")

    walk(typer.main.get_command(app), "valuedrift")
    return out


def test_the_site_builds_strictly_and_every_page_is_there(site):
    for page in PAGES.rglob("*.md"):
        rel = page.relative_to(PAGES).with_suffix("")
        built = site / (rel.parent if rel.name == "index" else rel) / "index.html"
        assert built.exists(), f"{page} was not built"
    assert (site / "img" / "report-example.png").exists()


def test_the_cli_reference_has_every_command_with_its_options(site):
    found = sections(page_html(site, "reference/cli"))
    cmds = commands()
    assert len(cmds) > 20
    for path, cmd in cmds:
        anchor = path.replace(" ", "-")
        assert anchor in found, f"{path} is missing from the CLI reference"
        own = found[anchor]
        for p in getattr(cmd, "params", []):
            if getattr(p, "param_type_name", "") == "option" and not getattr(p, "hidden", False):
                for opt in p.opts:
                    assert f"<code>{html.escape(opt)}</code>" in own, f"{path}: {opt} is missing"


def test_the_settings_reference_names_every_environment_variable(site):
    from valuedrift.streams.settings import Settings

    text = page_html(site, "reference/settings")
    for f in dataclasses.fields(Settings):
        assert f"VALUEDRIFT_{f.name.upper()}" in text, f"Settings.{f.name} is missing from the settings page"


def test_the_schema_reference_has_every_record_and_field(site):
    from valuedrift.streams.core.records import json_schemas

    found = sections(page_html(site, "reference/schemas"))
    for filename, schema in json_schemas().items():
        name = filename.removesuffix(".schema.json")
        assert name.lower() in found, f"{name} is missing from the schema reference"
        for field in schema.get("properties", {}):
            assert f"<code>{field}</code>" in found[name.lower()], f"{name}.{field} is missing"


def test_the_api_pages_show_every_public_name_of_their_module(site):
    documented = {}
    for page in (PAGES / "reference" / "api").glob("*.md"):
        for module in re.findall(r"^:::\s+([\w.]+)", page.read_text(), flags=re.M):
            documented[module] = page
    assert "valuedrift.streams.core.entropy" in documented and len(documented) >= 10
    for module, page in documented.items():
        mod = importlib.import_module(module)
        public = [n for n, v in vars(mod).items() if not n.startswith("_") and getattr(v, "__module__", None) == module
                  and callable(v)]
        assert public, module
        text = page_html(site, f"reference/api/{page.stem}")
        missing = [n for n in public if n not in text]
        assert not missing, f"{module}: {missing} not on {page.name}"


def test_the_readme_links_to_existing_pages_and_says_how_to_build_the_site():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    assert "make docs" in readme
    links = re.findall(r"\]\(((?!https?://|#)[^)]+)\)", readme)
    assert any(link.startswith("docs/pages/") for link in links)
    for link in links:
        assert (ROOT / link.split("#")[0]).exists(), f"README links to {link}, which does not exist"


# ------------------------------------------------------------------------------------------------ runnable pages

BLOCK = re.compile(r"<!-- docs-test: (run|background) -->\s*\n```console\n(.*?)\n```", re.S)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def runnable_blocks(text: str) -> list[tuple[str, list[tuple[str, list[str]]]]]:
    """``[(kind, [(command, shown output lines), ...]), ...]`` for each marked block of a page."""
    out = []
    for kind, body in BLOCK.findall(text):
        steps: list[tuple[str, list[str]]] = []
        lines = body.split("\n")
        i = 0
        while i < len(lines):
            line = lines[i]
            assert line.startswith("$ "), f"a runnable block must start with a command: {line!r}"
            cmd = line[2:]
            while cmd.endswith("\\"):
                i += 1
                cmd = cmd[:-1] + " " + lines[i].strip()
            i += 1
            shown = []
            while i < len(lines) and not lines[i].startswith("$ "):
                shown.append(lines[i])
                i += 1
            steps.append((cmd, [s for s in shown if s.strip()]))
        out.append((kind, steps))
    return out


def missing_lines(shown: list[str], output: str) -> list[str]:
    """The shown lines that do not appear in the output, in order (``...`` matches any text)."""
    actual = [ANSI.sub("", line).strip() for line in output.splitlines()]
    at = 0
    for want in shown:
        pattern = re.compile(".*?".join(re.escape(part) for part in want.strip().split("...")))
        for j in range(at, len(actual)):
            if pattern.fullmatch(actual[j]):
                at = j + 1
                break
        else:
            return shown[shown.index(want):]
    return []


PYCON = re.compile(r"```pycon\n(.*?)\n```", re.S)


@pytest.mark.parametrize("page", sorted(str(p.relative_to(PAGES)) for p in PAGES.rglob("*.md")
                                        if PYCON.search(p.read_text())))
def test_the_pages_python_examples_run(page):
    text = "\n\n".join(PYCON.findall((PAGES / page).read_text()))
    test = doctest.DocTestParser().get_doctest(text, {}, page, page, 0)
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    result = runner.run(test, out=report.append)
    assert result.attempted and not result.failed, "".join(report)


def test_every_page_with_runnable_blocks_is_tested():
    marked = {str(p.relative_to(PAGES)) for p in PAGES.rglob("*.md") if BLOCK.search(p.read_text())}
    assert marked == set(RUNNABLE)


@pytest.mark.parametrize("page", [pytest.param(p, marks=m) for p, m in RUNNABLE.items()])
def test_the_pages_commands_run_and_print_what_the_page_shows(page, tmp_path):
    from valuedrift.ops.broker import free_port

    port = str(free_port())
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONUNBUFFERED": "1",
           "VALUEDRIFT_DATADIR": str(tmp_path / ".worker"), "NO_COLOR": "1", "COLUMNS": "200"}
    blocks = runnable_blocks((PAGES / page).read_text())
    assert blocks
    background: list[tuple[subprocess.Popen, Path, str]] = []
    try:
        for kind, steps in blocks:
            for cmd, shown in steps:
                cmd = cmd.replace(PORT_IN_PAGES, port)
                shown = [s.replace(PORT_IN_PAGES, port) for s in shown]
                if kind == "run":
                    r = subprocess.run(["bash", "-c", cmd], cwd=tmp_path, env=env, capture_output=True, text=True,
                                       timeout=300)
                    assert r.returncode == 0, f"$ {cmd}\n{r.stdout}\n{r.stderr}"
                    assert not missing_lines(shown, r.stdout), f"$ {cmd}\nshown: {shown}\nprinted:\n{r.stdout}"
                    continue
                log = tmp_path / f".background-{len(background)}.log"
                with log.open("w") as fh:
                    proc = subprocess.Popen(["bash", "-c", f"exec {cmd}"], cwd=tmp_path, env=env, stdout=fh,
                                            stderr=subprocess.STDOUT, start_new_session=True)
                background.append((proc, log, cmd))
                deadline = time.monotonic() + 120
                while missing_lines(shown, log.read_text()):
                    assert proc.poll() is None, f"$ {cmd} exited with {proc.returncode}:\n{log.read_text()}"
                    assert time.monotonic() < deadline, f"$ {cmd}\nstill missing: " \
                        f"{missing_lines(shown, log.read_text())}\nprinted:\n{log.read_text()[-3000:]}"
                    time.sleep(0.5)
        for proc, log, cmd in background:
            assert proc.poll() is None, f"$ {cmd} stopped early:\n{log.read_text()[-3000:]}"
    finally:
        for proc, _, _ in reversed(background):  # the consumer, the worker, then the broker
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=15)
            with contextlib.suppress(ProcessLookupError):  # what is left of its process group (Tansu, the broker's)
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
