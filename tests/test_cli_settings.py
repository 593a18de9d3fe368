"""One declaration (the Settings fields) feeds the environment variables, the options of worker, replay and topics,
and their help."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner
from valuedrift.ops import cli
from valuedrift.ops.cli_settings import settings_options
from valuedrift.streams.core.records import ResponseEvent
from valuedrift.streams.settings import Settings, declared, env_name, option_flag

from tests.helpers import cli as run_cli
from tests.texts import PAIRS

T0 = 1767225600.0
COMMANDS = ("worker", "replay", "topics")

# A valid value other than the default for every setting a command takes: (option value, env value, setting).
# Durations are written as options take them (90s) and as the environment gives them (seconds).
SAMPLES = {
    "broker": ("tansu://127.0.0.1:9999", "tansu://127.0.0.1:9999", "tansu://127.0.0.1:9999"),
    "window_seconds": ("90s", "90", 90.0),
    "lateness_seconds": ("1m", "60", 60.0),
    "idle_close_seconds": ("0", "0", 0.0),
    "max_clock_skew_seconds": ("2m", "120", 120.0),
    "epsilon": ("0.01", "0.01", 0.01),
    "z_threshold": ("5", "5", 5.0),
    "trend_z": ("3", "3", 3.0),
    "trend_windows": ("7", "7", 7),
    "alert_min_n": ("50", "50", 50),
    "alert_page_on": ("g2", "g2", "g2"),
    "alert_rules": ("epsilon,adwin", "epsilon,adwin", "epsilon,adwin"),
    "alert_signals": ("adwin,trend", "adwin,trend", "adwin,trend"),
    "alert_combine": ("2-of-5", "2-of-5", "2-of-5"),
    "alert_clear_windows": ("3", "3", 3),
    "alert_cooldown_windows": ("2", "2", 2),
    "alert_keys": ("4", "4", 4),
    "classifier": ("rules", "rules", "rules"),
    "classifier_precision": ("fp32", "fp32", "fp32"),
    "inference_batch_size": ("4", "4", 4),
    "poll_batch_size": ("64", "64", 64),
    "alert_sinks": (["stdout", "jsonl:/tmp/a.jsonl"], "stdout,jsonl:/tmp/a.jsonl", "stdout,jsonl:/tmp/a.jsonl"),
    "metrics_port": ("9464", "9464", 9464),
    "partitions": ("2", "2", 2),
    "topic_prefix": ("t.", "t.", "t."),
    "input_topic": ("chat", "chat", "chat"),
    "input_format": ("openai", "openai", "openai"),
    "input_map": ("prompt=a.b", "prompt=a.b", "prompt=a.b"),
    "input_key": ("k", "k", "k"),
    "input_context_turns": ("2", "2", 2),
    "app_id": ("a", "a", "a"),
    "datadir": ("/tmp/vd-data", "/tmp/vd-data", Path("/tmp/vd-data")),
    "log_level": ("INFO", "INFO", "INFO"),
}


def taken_by(command: str) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(Settings) if command in declared(f).commands]


def settings_from(command: str, args: list[str], env: dict[str, str] | None = None) -> Settings:
    """The settings a command decorated with @settings_options(command) receives."""
    got: list[Settings] = []
    app = typer.Typer()

    @app.command()
    @settings_options(command)
    def probe(*, settings: Settings) -> None:
        got.append(settings)

    clean = {k: None for k in os.environ if k.startswith("VALUEDRIFT_")}
    r = CliRunner().invoke(app, args, env={**clean, **(env or {})})
    assert r.exit_code == 0, r.output
    return got[0]


def comparable(value: object) -> object:
    return str(value) if value.__class__.__name__ == "BrokerURL" else value


def test_every_setting_has_help_and_a_distinct_variable_and_option():
    fields = dataclasses.fields(Settings)
    assert all(declared(f).help.strip() for f in fields), [f.name for f in fields if not declared(f).help.strip()]
    assert len({env_name(f) for f in fields}) == len(fields)
    for command in COMMANDS:
        flags = [option_flag(f) for f in taken_by(command)]
        assert flags and len(set(flags)) == len(flags), command


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_and_variable_sets_its_setting(command):
    fields = taken_by(command)
    assert {f.name for f in fields} <= set(SAMPLES), "add a sample value for the new setting"
    args: list[str] = []
    for f in fields:
        given = SAMPLES[f.name][0]
        for value in given if isinstance(given, list) else [given]:
            args += [option_flag(f), value]
    by_option = settings_from(command, args)
    by_env = settings_from(command, [], {env_name(f): SAMPLES[f.name][1] for f in fields})
    for f in fields:
        want = SAMPLES[f.name][2]
        assert comparable(getattr(Settings(), f.name)) != want, f"{f.name}: the sample is the default"
        assert comparable(getattr(by_option, f.name)) == want, f.name
        assert comparable(getattr(by_env, f.name)) == want, f.name


def test_an_option_overrides_the_variable():
    s = settings_from("replay", ["--z", "6"], {"VALUEDRIFT_Z_THRESHOLD": "5", "VALUEDRIFT_EPSILON": "0.5"})
    assert (s.z_threshold, s.epsilon) == (6.0, 0.5)


def written_default(f: dataclasses.Field, value: object) -> str:
    """The actual default as the help should write it."""
    if value is None or value == "":
        return ""
    if declared(f).kind == "duration":
        return f"{value:g}s"
    if isinstance(value, Path):
        return "~/" + str(value.relative_to(Path.home()))
    return str(value)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_help_shows_its_actual_default_and_variable(command, monkeypatch):
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VALUEDRIFT_")}
    r = run_cli(command, "--help", env={**env, "COLUMNS": "1000"})
    assert r.returncode == 0, r.stderr
    lines = {ln.split()[1]: ln.rstrip(" │") for ln in r.stdout.splitlines() if ln.startswith("│ --")}
    defaults = Settings()
    for f in taken_by(command):
        default = written_default(f, getattr(defaults, f.name))
        tail = f"[default: {default}; env {env_name(f)}]" if default else f"[env {env_name(f)}]"
        assert lines[option_flag(f)].endswith(f"{declared(f).help} {tail}"), lines[option_flag(f)]


RULE_OPTIONS = {"--window", "--lateness", "--max-clock-skew", "--epsilon", "--z", "--trend-z", "--trend-windows",
                "--min-n", "--page-on", "--rules", "--signals", "--combine", "--clear-windows", "--cooldown-windows",
                "--keys", "--classifier", "--inference-batch-size"}


def options_of(command: str) -> dict[str, str]:
    click_command = typer.main.get_command(cli.app).commands[command]  # type: ignore[attr-defined]
    return {opt: p.help for p in click_command.params for opt in p.opts if not getattr(p, "hidden", False)}


def test_replay_takes_every_window_and_rule_option_of_the_worker_with_the_same_help():
    worker, replay = options_of("worker"), options_of("replay")
    assert set(worker) >= RULE_OPTIONS and set(replay) >= RULE_OPTIONS
    assert {o: worker[o] for o in RULE_OPTIONS} == {o: replay[o] for o in RULE_OPTIONS}
    # replay's own input options are not the worker's input settings
    assert replay["--context-turns"] != worker["--context-turns"] and "--input-format" not in replay


def events_file(tmp_path: Path) -> Path:
    codes = list(PAIRS)
    lines = [ResponseEvent(id=f"e{i}", monitor_key="m", event_time=T0 + i, prompt=PAIRS[codes[i % 5]][0],
                           response=PAIRS[codes[i % 5]][1]).model_dump_json() for i in range(240)]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def loads(monkeypatch):
    """The batch sizes load_classifier is asked for."""
    import valuedrift.classifier.loading as loading

    seen: list[int] = []
    real = loading.load_classifier

    def spy(spec, precision="auto", batch_size=0):  # noqa: ANN001, ANN202
        seen.append(batch_size)
        return real(spec, precision, batch_size)

    monkeypatch.setattr(loading, "load_classifier", spy)
    return seen


def test_replay_passes_the_inference_batch_size_and_records_it_when_set(tmp_path, loads):
    events = events_file(tmp_path)
    for extra, out in (([], "plain.json"), (["--inference-batch-size", "4"], "batched.json")):
        r = CliRunner().invoke(cli.app, ["replay", "-i", str(events), "--classifier", "rules", "--window", "60s",
                                         "--no-progress", "--json", str(tmp_path / out), *extra])
        assert r.exit_code == 0, r.output
    assert loads == [0, 4]
    plain, batched = (json.loads((tmp_path / n).read_text())["config"] for n in ("plain.json", "batched.json"))
    assert "inference_batch_size" not in plain["settings"] and batched["settings"]["inference_batch_size"] == 4
    assert plain["hash"] != batched["hash"]


def test_the_worker_passes_the_inference_batch_size(loads):
    r = CliRunner().invoke(cli.app, ["worker", "--classifier", "no-such-model", "--inference-batch-size", "4"])
    assert r.exit_code == 2 and "unknown classifier 'no-such-model'" in r.output
    assert loads == [4]


def test_the_onnx_classifier_takes_the_inference_batch_size():
    from valuedrift.classifier.loading import load_classifier

    assert load_classifier("default", precision="fp32", batch_size=4).batch_size == 4
    assert load_classifier("default", precision="fp32").batch_size in (32, 256)  # its own: CPU or CUDA
    with pytest.raises(ValueError, match="inference batch size must be >= 0"):
        load_classifier("rules", batch_size=-1)


def test_the_old_batch_size_option_still_sets_the_poll_batch_with_a_warning():
    got: list[Settings] = []
    app = typer.Typer()

    @app.command()
    @settings_options("worker")
    def probe(*, settings: Settings) -> None:
        got.append(settings)

    r = CliRunner().invoke(app, ["--batch-size", "64"])
    assert r.exit_code == 0 and got[0].poll_batch_size == 64
    assert "warning: --batch-size is now --poll-batch-size" in r.output


def test_a_command_whose_parameter_is_also_a_setting_is_refused():
    def replay(*, epsilon: float = 0.0, settings: Settings) -> None: ...

    with pytest.raises(TypeError, match=r"\['epsilon'\] are also settings of 'replay'"):
        settings_options("replay")(replay)
