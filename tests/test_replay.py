"""Audit replay (``valuedrift replay``): same results as the pipeline, byte-identical JSON, the HTML report."""

from __future__ import annotations

import csv
import gzip
import json
import os
import random
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from valuedrift.classifier.rules import RuleClassifier
from valuedrift.classifier.training_data import shared_data_dir
from valuedrift.ops.replay import ReplayError, ReplayOptions, canonical_json, read_files, replay
from valuedrift.streams.core.records import ClassifiedResponse, ResponseEvent, WindowStatistic
from valuedrift.streams.offline import run_offline
from valuedrift.streams.settings import Settings

from tests.helpers import cli
from tests.texts import PAIRS

T0 = 1767225600.0
SETTINGS = Settings(window_seconds=60.0, lateness_seconds=0.0, classifier="rules")
ARGS = ["--classifier", "rules", "--window", "60s", "--lateness", "0s"]


def scenario(n_windows=8, per_window=20, seed=3, keys=("alpha", "beta")):
    """alpha is a stable mix; beta turns harmful and off-topic half-way."""
    rng = random.Random(seed)
    out = []
    for w in range(n_windows):
        for key in keys:
            for i in range(per_window):
                code = rng.choice(list(PAIRS)) if key != "beta" or w < n_windows // 2 else rng.choice(["g2", "g5"])
                prompt, response = PAIRS[code]
                out.append(ResponseEvent(id=f"{key}-{w}-{i}", monitor_key=key,
                                         event_time=T0 + w * 60 + (i + 0.5) * 60 / per_window,
                                         prompt=prompt, response=response))
    return out


def write_jsonl(path: Path, records) -> Path:
    path.write_text("".join(r.model_dump_json() + "\n" for r in records))
    return path




def one_line_error(r, fragment):
    assert r.returncode != 0, r.stdout
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], r.stderr


def canon_windows(ws):
    """Window statistics as the replay JSON holds them (sorted by key and start, fixed float precision)."""
    ws = sorted(ws, key=lambda w: (w.monitor_key, w.window_start))
    return json.loads(canonical_json([w.model_dump(mode="json") for w in ws]))


def canon(result):
    return json.loads(canonical_json(result))


def windows_in(result):
    return [WindowStatistic.model_validate(w) for w in result["windows"]]


# ---------------------------------------------------------------- same results as the pipeline, reproducibly


def test_cli_replay_is_byte_identical_across_runs_and_matches_run_offline(tmp_path):
    events = scenario()
    src = write_jsonl(tmp_path / "events.jsonl", events)
    outs = []
    for run in (1, 2):
        env = {**os.environ, "PYTHONHASHSEED": str(run)}  # different hash orders in the two processes
        r = cli("replay", "-i", src, *ARGS, "--json", tmp_path / f"r{run}.json", "--report", tmp_path / f"r{run}.html",
                "--classified", tmp_path / f"c{run}.jsonl.gz", env=env)
        assert r.returncode == 0, r.stderr
        outs.append(tuple((tmp_path / f"{n}{run}.{ext}").read_bytes() for n, ext in
                          (("r", "json"), ("r", "html"), ("c", "jsonl.gz"))))
    assert outs[0] == outs[1]
    result = json.loads(outs[0][0])
    assert set(result) == {"schema", "input", "config", "versions", "classifier", "windows", "alerts", "rates"}
    assert result["input"]["n_events"] == len(events) and result["input"]["n_bad_lines"] == 0
    assert result["input"]["sources"][0]["sha256"] == __import__("hashlib").sha256(src.read_bytes()).hexdigest()
    assert result["versions"]["classifier"] == "rules-1" and result["versions"]["valuedrift"]
    assert len(result["config"]["hash"]) == 16 and result["config"]["settings"]["window_seconds"] == 60.0
    expected = run_offline(events, RuleClassifier(), SETTINGS)
    assert result["windows"] == canon_windows(expected.windows)
    assert sorted(a["id"] for a in result["alerts"]) == sorted(a.id for a in expected.alerts)
    beta = result["rates"]["beta"]["ds_dt_per_window"]  # beta collapses onto two categories: S falls
    assert beta["value"] < 0 and beta["ci_low"] < beta["value"] < beta["ci_high"] and beta["p_value"] < 0.05
    assert "replayed 320 events" in r.stdout and "beta: 8 windows" in r.stdout
    # --classified: every event once, labelled as the worker labels it; replayed, the same windows and alerts
    assert f"classified: {tmp_path / 'c2.jsonl.gz'} (320 records)" in r.stdout
    recs = [ClassifiedResponse.parse_bytes(line) for line in gzip.decompress(outs[0][2]).splitlines()]
    assert sorted(c.id for c in recs) == sorted(e.id for e in events)
    clf = RuleClassifier()
    probs = clf.predict_proba([e.prompt for e in events], [e.response for e in events])
    by_id = {c.id: c for c in recs}
    for e, p in zip(events, probs, strict=True):
        assert by_id[e.id].probs == dict(zip(clf.taxonomy.codes, map(float, p), strict=True))
        assert by_id[e.id].category == clf.taxonomy.codes[int(p.argmax())] and by_id[e.id].model_version == "rules-1"
    again = cli("replay", "-i", tmp_path / "c1.jsonl.gz", "--window", "60s", "--lateness", "0s",
                "--json", tmp_path / "r3.json")
    assert again.returncode == 0, again.stderr
    second = json.loads((tmp_path / "r3.json").read_text())
    assert second["input"]["format"] == "classified"
    assert second["windows"] == result["windows"] and second["alerts"] == result["alerts"]


def test_json_is_canonical():
    result = replay(read_files_from(scenario(n_windows=3)), SETTINGS, ReplayOptions(classifier="rules"))
    text = canonical_json(result)
    assert text == canonical_json(json.loads(text))  # floats already at their fixed precision; keys sorted


def read_files_from(events, opts=None, tmp=None):
    import tempfile

    d = Path(tmp or tempfile.mkdtemp())
    return read_files([write_jsonl(d / "e.jsonl", events)], opts or ReplayOptions(classifier="rules"))


def test_classified_input_skips_inference_and_gives_the_same_windows(tmp_path):
    events = scenario()
    clf = RuleClassifier()
    probs = clf.predict_proba([e.prompt for e in events], [e.response for e in events])
    codes = clf.taxonomy.codes
    classified = [ClassifiedResponse(id=e.id, monitor_key=e.monitor_key, event_time=e.event_time,
                                     category=codes[int(p.argmax())],
                                     probs=dict(zip(codes, map(float, p), strict=True)), model_version=clf.version)
                  for e, p in zip(events, probs, strict=True)]
    raw = replay(read_files([write_jsonl(tmp_path / "raw.jsonl", events)], ReplayOptions(classifier="rules")),
                 SETTINGS, ReplayOptions(classifier="rules"))
    pre = read_files([write_jsonl(tmp_path / "cls.jsonl", reversed(classified))], ReplayOptions())
    assert pre.format == "classified" and not pre.events
    out = replay(pre, SETTINGS, ReplayOptions(classifier="no-such-model"))  # never loaded: no inference
    assert out["windows"] == raw["windows"] and out["alerts"] == raw["alerts"]
    assert out["versions"]["classifier"] == "rules-1" and out["config"]["replay"]["classifier"] is None


def test_order_time_sorts_and_order_input_reproduces_late_events(tmp_path):
    events = scenario(n_windows=3, keys=("alpha",))
    shuffled = events[20:] + events[:20]  # the first window arrives last: late in arrival order
    src = write_jsonl(tmp_path / "e.jsonl", shuffled)
    by_time = replay(read_files([src], ReplayOptions(classifier="rules")), SETTINGS, ReplayOptions(classifier="rules"))
    by_input = replay(read_files([src], ReplayOptions(classifier="rules", order="input")), SETTINGS,
                      ReplayOptions(classifier="rules", order="input"))
    assert by_time["input"]["n_late"] == 0 and len(by_time["windows"]) == 3
    assert by_input["input"]["n_late"] == 20 and len(by_input["windows"]) == 2
    expected = run_offline(shuffled, RuleClassifier(), SETTINGS)
    assert canon(by_input)["windows"] == canon_windows(expected.windows)


# ---------------------------------------------------------------- input formats and bad records


def test_csv_gz_jsonl_bad_records_and_time_filters(tmp_path):
    events = scenario(n_windows=4)
    with gzip.open(tmp_path / "a.csv.gz", "wt", newline="") as fh:
        w = csv.DictWriter(fh, ["id", "monitor_key", "event_time", "prompt", "response"])
        w.writeheader()
        for e in events[:100]:
            w.writerow({"id": e.id, "monitor_key": e.monitor_key, "event_time": repr(e.event_time),
                        "prompt": e.prompt, "response": e.response})
        w.writerow({"id": "bad", "monitor_key": "alpha", "event_time": "soon", "prompt": "p", "response": "r"})
    lines = [e.model_dump_json() for e in events[100:]] + ["{not json", '{"id": "x", "monitor_key": "alpha"}']
    (tmp_path / "b.jsonl").write_text("\n".join(lines) + "\n\n")
    r = cli("replay", "-i", tmp_path / "a.csv.gz", "-i", tmp_path / "b.jsonl", *ARGS, "--json", tmp_path / "o.json",
            "--from", "2026-01-01T00:01:00Z", "--to", str(T0 + 180))
    assert r.returncode == 0, r.stderr
    warn = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(warn) == 1 and warn[0].startswith("warning: skipped 3 bad record(s); first: a.csv.gz:102: event_time")
    out = json.loads((tmp_path / "o.json").read_text())
    inp = out["input"]
    assert [(s["records"], s["bad"]) for s in inp["sources"]] == [(101, 1), (62, 2)]
    assert inp["n_bad_lines"] == 3 and inp["n_events"] == 80 and inp["n_outside_range"] == 80
    assert {w["window_start"] for w in out["windows"]} == {T0 + 60, T0 + 120}
    assert any("invalid JSON" in b for b in inp["bad_examples"])
    assert any(b.startswith("b.jsonl:62: event_time: Field required") for b in inp["bad_examples"])


def test_openai_logs_with_a_field_map_file(tmp_path):
    lines = []
    for i, e in enumerate(scenario(n_windows=3)):
        lines.append(json.dumps({"request": {"messages": [{"role": "user", "content": e.prompt}]},
                                 "response": {"body": {"id": f"c{i}", "model": "gpt-x", "created": e.event_time,
                                                       "choices": [{"index": 0, "message": {
                                                           "role": "assistant", "content": e.response}}]}},
                                 "meta": {"tenant": e.monitor_key}}))
    (tmp_path / "chat.jsonl").write_text("\n".join(lines))
    (tmp_path / "map.toml").write_text('monitor_key = "meta.tenant"\n')
    r = cli("replay", "-i", tmp_path / "chat.jsonl", "--format", "openai", "--map", tmp_path / "map.toml", *ARGS,
            "--json", tmp_path / "o.json")
    assert r.returncode == 0, r.stderr
    out = json.loads((tmp_path / "o.json").read_text())
    assert out["input"]["n_events"] == 120 and sorted(out["rates"]) == ["alpha", "beta"]
    assert out["config"]["replay"]["map"] == {"monitor_key": "meta.tenant"}


def test_transcripts_with_assigned_times(tmp_path):
    rows = [{"chosen": f"\n\nHuman: {PAIRS['g1'][0]}\n\nAssistant: {PAIRS['g1'][1]}\n\nHuman: {PAIRS['g2'][0]}"
                       f"\n\nAssistant: {PAIRS['g2'][1]}"} for _ in range(90)]
    (tmp_path / "t.jsonl").write_text("\n".join(map(json.dumps, rows)))
    inp = read_files([tmp_path / "t.jsonl"], ReplayOptions(format="transcript", fields=_map("transcript=chosen"),
                                                           default_key="hh", start_time=T0, time_step=2.0))
    assert len(inp.events) == 180 and inp.events[0].id == "t.jsonl:1#1" and inp.events[1].id == "t.jsonl:1#2"
    assert inp.events[-1].event_time == T0 + 89 * 2.0
    out = replay(inp, SETTINGS, ReplayOptions(classifier="rules"))
    assert [w["n"] for w in out["windows"]] == [60, 60, 60]
    assert out["windows"][0]["counts"]["g1"] == 30 and out["windows"][0]["counts"]["g2"] == 30


def test_context_turns_reach_the_replayed_prompts_and_the_config(tmp_path):
    from valuedrift.classifier.context import MARK

    rows = [{"chosen": f"\n\nHuman: {PAIRS['g1'][0]}\n\nAssistant: {PAIRS['g1'][1]}\n\nHuman: {PAIRS['g2'][0]}"
                       f"\n\nAssistant: {PAIRS['g2'][1]}"}]
    (tmp_path / "t.jsonl").write_text(json.dumps(rows[0]) + "\n")
    opts = ReplayOptions(format="transcript", fields=_map("transcript=chosen"), default_key="hh", start_time=T0,
                         context_turns=2)
    first, second = read_files([tmp_path / "t.jsonl"], opts).events
    assert first.prompt == PAIRS["g1"][0] and second.prompt.startswith(f"{PAIRS['g2'][0]}\n\n{MARK} Assistant: ")
    assert opts.as_dict()["context_turns"] == 2 and "context_turns" not in ReplayOptions().as_dict()
    r = cli("replay", "-i", tmp_path / "t.jsonl", "--format", "transcript", "--context-turns", "-1")
    assert r.returncode != 0 and "context-turns" in r.stderr and "Traceback" not in r.stderr, r.stderr


def _map(text):
    from valuedrift.streams.adapters import parse_map

    return parse_map(text)


def test_hh_rlhf_replays_as_a_chat_log(tmp_path):
    path = shared_data_dir() / "hh-rlhf" / "harmless-base-test.jsonl.gz"
    if not path.exists():
        pytest.skip(f"hh-rlhf data not found at {path} (set VALUEDRIFT_SHARED_DATA to the shared data folder)")
    r = cli("replay", "-i", path, "--format", "transcript", "--map", "transcript=chosen", "--key", "hh-chosen",
            "--start-time", "2026-01-01T00:00:00Z", "--time-step", "1s", *ARGS, "--json", tmp_path / "hh.json")
    assert r.returncode == 0, r.stderr
    out = json.loads((tmp_path / "hh.json").read_text())
    assert out["input"]["n_records"] == 2312 and out["input"]["n_bad_lines"] == 0
    assert out["input"]["n_events"] > 2 * 2312 and out["input"]["n_duplicate_ids"] == 0
    assert len(out["windows"]) == 39 and out["rates"]["hh-chosen"]["ds_dt_per_window"] is not None


def cli_without(module, *args):
    """The CLI in a process where ``module`` cannot be imported (as on a machine without it)."""
    code = (f"import sys; sys.modules[{module!r}] = None; sys.argv = ['valuedrift', *sys.argv[1:]]; "
            "from valuedrift.ops.cli import main; main()")
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def test_parquet_input_and_a_one_line_error_without_pyarrow(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    events = scenario(n_windows=3)
    pq.write_table(pa.Table.from_pylist([e.model_dump(exclude={"metadata"}) for e in events]), tmp_path / "e.parquet")
    r = cli("replay", "-i", tmp_path / "e.parquet", *ARGS, "--json", tmp_path / "o.json")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "o.json").read_text())["input"]["n_events"] == len(events)
    jsonl = cli("replay", "-i", write_jsonl(tmp_path / "e.jsonl", events), *ARGS, "--json", tmp_path / "j.json")
    assert jsonl.returncode == 0
    assert json.loads((tmp_path / "o.json").read_text())["windows"] == \
        json.loads((tmp_path / "j.json").read_text())["windows"]
    one_line_error(cli_without("pyarrow", "replay", "-i", tmp_path / "e.parquet", *ARGS),
                   "reading Parquet needs pyarrow")


@pytest.mark.parametrize("args, fragment", [
    (["-i", "/no/such.jsonl"], "input /no/such.jsonl: no such file"),
    (["-i", "{src}", "--format", "xml"], "unknown --format 'xml'"),
    (["-i", "{src}", "--map", "promt=a"], "map: unknown field 'promt'"),
    (["-i", "{src}", "--map", "/no/map.json"], "map: cannot read /no/map.json"),
    (["-i", "{src}", "--format", "mapped"], "mapped format needs prompt=PATH"),
    (["-i", "{src}", "--reference", "gamma"], "--reference 'gamma' is not a monitor key"),
    (["-i", "{src}", "--start-time", "noon"], "--start-time: 'noon' is not an ISO-8601 time"),
    (["-i", "{src}", "--order", "random"], "--order must be time or input"),
    (["-i", "{src}", "--window", "soon"], "'soon' is not a duration"),
    (["-i", "{src}", "--window", "0"], "window_seconds (--window) must be from 1 s to a year"),
    (["-i", "{src}", "--window", "0.5s"], "window_seconds (--window) must be from 1 s to a year"),
    (["-i", "{src}", "--window", "99999999999999999999d"], "window_seconds (--window) must be from 1 s to a year"),
    (["-i", "{src}", "--max-clock-skew", "0"], "max_clock_skew_seconds must be > 0"),
    (["-i", "{src}", "--min-n", "0"], "min_n (responses per block) must be >= 1"),
    (["-i", "{src}", "--classifier", "gpt-judge"], "unknown classifier 'gpt-judge'"),
    (["-i", "{src}", "--from", "2030-01-01T00:00:00Z"], "no usable events in the input"),
    (["-i", "{src}", "--classified", "{src}/c.jsonl"], "cannot write"),
    (["-i", "{txt}"], "unknown file type"),
    ([], "give --input FILE"),
    (["--topic", "t"], "--topic needs --broker"),
    (["--topic", "t", "--broker", "http://x:1"], "scheme must be kafka://"),
    (["--topic", "t", "--broker", "kafka://127.0.0.1:1"], "cannot read topic 't' from kafka://127.0.0.1:1"),
])
def test_bad_replay_arguments_give_one_line(tmp_path, args, fragment):
    src = write_jsonl(tmp_path / "e.jsonl", scenario(n_windows=1))
    (tmp_path / "e.txt").write_text("x")
    args = [a.format(src=src, txt=tmp_path / "e.txt") for a in args]
    extra = [] if "--classifier" in args else ["--classifier", "rules"]
    one_line_error(cli("replay", *args, *extra), fragment)


# ---------------------------------------------------------------- the report


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[dict] = []
        self.svgs: list[dict] = []
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "svg":
            self.svgs.append({"key": a.get("data-key"), "classes": []})
        elif self.svgs and tag not in ("title",):
            self.svgs[-1]["classes"].append((tag, a.get("class")))

    def handle_data(self, data):
        self.text.append(data)


def test_report_has_a_plot_per_key_with_band_line_and_alert_markers(tmp_path):
    weird = '<script>alert("x")</script>'
    events = scenario(n_windows=10, keys=("alpha", "beta", weird))
    inp = read_files([write_jsonl(tmp_path / "e.jsonl", events)], ReplayOptions(classifier="rules"))
    out = replay(inp, SETTINGS, ReplayOptions(classifier="rules", reference="alpha"))
    from valuedrift.ops.report import render_report

    page = render_report(out)
    p = _Collect()
    p.feed(page)
    assert sorted(s["key"] for s in p.svgs) == sorted(["alpha", "beta", weird])
    for svg in p.svgs:
        assert ("polyline", "s-line") in svg["classes"] and ("path", "ci-band") in svg["classes"]
        assert ("rect", "share") in svg["classes"] and ("rect", "delta-bar") in svg["classes"]
    beta = next(s for s in p.svgs if s["key"] == "beta")
    assert ("g", "alert-marker") in beta["classes"]
    assert any(a["monitor_key"] == "beta" and a["severity"] != "info" for a in out["alerts"])
    # self-contained: no scripts, no external references; the hostile key is text, not markup
    assert not [t for t, a in p.tags if t in ("script", "img", "link", "iframe")]
    assert not [a for _, a in p.tags if any(k in a for k in ("src", "href"))]
    assert "<script>" not in page and "&lt;script&gt;" in page
    rates = [a.get("data-key") for t, a in p.tags if t == "tr" and a.get("data-key")]
    assert sorted(rates) == sorted(["alpha", "beta", weird])
    assert "γ_eff per window" in page and "suppression %" in page
    assert out["rates"]["beta"]["gamma_eff_per_window"] is not None and out["rates"]["alpha"]["reference"]
    text = "".join(p.text)
    assert "Config hash" in text and out["config"]["hash"] in text and "rules-1" in text


def test_report_in_a_headless_browser(tmp_path):
    browser = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)),
                   None)
    if browser is None:
        pytest.skip("no chromium binary on this machine: the report is checked by parsing its HTML instead")
    inp = read_files([write_jsonl(tmp_path / "e.jsonl", scenario())], ReplayOptions(classifier="rules"))
    from valuedrift.ops.report import render_report

    (tmp_path / "r.html").write_text(render_report(replay(inp, SETTINGS, ReplayOptions(classifier="rules"))))
    r = subprocess.run([browser, "--headless", "--disable-gpu", "--no-sandbox", f"--screenshot={tmp_path / 's.png'}",
                        "--window-size=1000,2000", (tmp_path / "r.html").as_uri()], capture_output=True, timeout=120)
    assert r.returncode == 0 and (tmp_path / "s.png").stat().st_size > 10_000
    dom = subprocess.run([browser, "--headless", "--disable-gpu", "--no-sandbox", "--dump-dom",
                          (tmp_path / "r.html").as_uri()], capture_output=True, text=True, timeout=120).stdout
    keys = {e.monitor_key for e in scenario()}
    assert dom.count("<svg") >= len(keys) and all(key in dom for key in keys)  # the browser built every plot
    assert "<polyline" in dom or "<path" in dom


def test_png_plots_per_key_and_a_note_without_matplotlib(tmp_path):
    src = write_jsonl(tmp_path / "e.jsonl", scenario(n_windows=3))
    r = cli("replay", "-i", src, *ARGS, "--png", tmp_path / "png")
    assert r.returncode == 0, r.stderr
    pngs = sorted(p.name for p in (tmp_path / "png").iterdir())
    assert pngs == ["alpha.png", "beta.png"]
    assert all((tmp_path / "png" / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
    r = cli_without("matplotlib", "replay", "-i", src, *ARGS, "--png", tmp_path / "none")
    assert r.returncode == 0 and "--png skipped: no plotting library (matplotlib)" in r.stderr
    assert not (tmp_path / "none").exists()


def test_default_onnx_classifier_and_its_model_card(tmp_path):
    from valuedrift.classifier.loading import load_classifier

    try:
        load_classifier("default")
    except (RuntimeError, FileNotFoundError) as err:
        pytest.skip(f"default classifier unavailable: {err}")
    events = scenario(n_windows=3, per_window=4)
    inp = read_files([write_jsonl(tmp_path / "e.jsonl", events)], ReplayOptions())
    settings = Settings(window_seconds=60.0, lateness_seconds=0.0)
    labelled: list[ClassifiedResponse] = []
    out = replay(inp, settings, ReplayOptions(), emit=labelled.append)
    assert out["versions"]["classifier"].endswith("-int8") and out["classifier"]["evaluation"]["test_int8"]["n"] > 0
    assert sum(w["n"] for w in out["windows"]) == len(events)
    # its labels, replayed as classified records: the same windows, entropy_corrected from the same card included
    assert all(w["entropy_corrected"] is not None for w in out["windows"])
    again = replay(read_files([write_jsonl(tmp_path / "c.jsonl", labelled)], ReplayOptions()), settings,
                   ReplayOptions())
    assert again["windows"] == out["windows"] and again["classifier"]["evaluation"] == out["classifier"]["evaluation"]
    other = [c.model_copy(update={"model_version": "someone-elses-model"}) for c in labelled]  # no card known here
    third = replay(read_files([write_jsonl(tmp_path / "o.jsonl", other)], ReplayOptions()), settings, ReplayOptions())
    assert third["classifier"]["evaluation"] is None
    assert all(w["entropy_corrected"] is None for w in third["windows"])
    assert [w["entropy"] for w in third["windows"]] == [w["entropy"] for w in out["windows"]]
    from valuedrift.ops.report import render_report

    page = render_report(out)
    assert "Model card: measured evaluation" in page and "macro_f1" in page


def test_bench_replay_reports_its_numbers():
    from valuedrift.ops.bench_replay import run_bench

    r = run_bench(n=4000, keys=4, repeat=1, per_window=50)
    assert r["events"] == 4000 and r["windows"] == 80
    assert {"parse_only_eps", "core_eps", "ratio", "json_loads_eps", "end_to_end_eps"} <= set(r)
    assert r["core_eps"] > 0 and r["parse_only_eps"] > 0


# ---------------------------------------------------------------- against the live worker (real broker)


@pytest.mark.integration
def test_replay_from_a_topic_equals_the_live_worker_and_the_file_replay(settings, tmp_path):
    import asyncio

    from valuedrift.ops.kafka import ensure_topics
    from valuedrift.ops.worker_process import WorkerProcess

    from tests.helpers import alerts_of, produce, windows_of

    settings = settings.replace(alert_min_n=20)  # windows of 20 judged one by one, so there are alerts to compare
    asyncio.run(ensure_topics(settings))
    events = scenario()
    src = write_jsonl(tmp_path / "e.jsonl", events)
    r = cli("replay", "-i", src, *ARGS, "--min-n", "20", "--json", tmp_path / "file.json")
    assert r.returncode == 0, r.stderr
    from_file = json.loads((tmp_path / "file.json").read_text())
    with WorkerProcess(settings, tmp_path / "worker.log"):
        produce(settings, events)
        live = windows_of(settings, expect=len(from_file["windows"]))
        live_alerts = alerts_of(settings)
    def same(ws):  # the worker closes the last windows when its keys go idle, the replay at the end of input
        return [{k: v for k, v in w.items() if k != "closed_by"} for w in ws]

    assert same(canon_windows(live)) == same(from_file["windows"])
    ids = [w["id"] for w in from_file["windows"]]
    assert len(set(ids)) == len(ids) and all(i.endswith("/60s") for i in ids)
    assert sorted(a.id for a in live_alerts) == sorted(a["id"] for a in from_file["alerts"])
    # the same alerts, evidence included (which categories moved, their intervals, the example ids), to the byte
    live_json = json.loads(canonical_json(sorted((a.model_dump(mode="json") for a in live_alerts),
                                                 key=lambda a: a["id"])))
    assert live_json == sorted(from_file["alerts"], key=lambda a: a["id"])
    drift = [a for a in live_json if a["rule"] == "drift"]
    assert drift and drift[0]["monitor_key"] == "beta" and drift[0]["evidence"]["top_change"] in ("g2", "g5")
    assert drift[0]["evidence"]["examples"]
    r = cli("replay", "--topic", settings.topics.responses, "--broker", str(settings.broker), "--idle", "2s",
            "--from", T0, "--to", T0 + 3600, *ARGS, "--min-n", "20", "--json", tmp_path / "topic.json")
    assert r.returncode == 0, r.stderr
    from_topic = json.loads((tmp_path / "topic.json").read_text())
    assert from_topic["windows"] == from_file["windows"] and from_topic["alerts"] == from_file["alerts"]
    assert from_topic["input"]["kafka"]["messages"] == len(events)
    assert from_topic["input"]["kafka"]["topic"] == settings.topics.responses
    # the worker's classified topic (several records per message, as JSON Lines) replays to the same windows
    r = cli("replay", "--topic", settings.topics.classified, "--broker", str(settings.broker), "--idle", "2s",
            "--from", T0, "--to", T0 + 3600, *ARGS, "--min-n", "20", "--json", tmp_path / "classified.json")
    assert r.returncode == 0, r.stderr
    from_classified = json.loads((tmp_path / "classified.json").read_text())
    assert from_classified["input"]["kafka"]["messages"] < len(events)
    assert from_classified["input"]["n_events"] == len(events)
    assert from_classified["windows"] == from_file["windows"] and from_classified["alerts"] == from_file["alerts"]


def test_the_report_marks_where_the_classifier_changed(tmp_path):
    from valuedrift.ops.report import render_report

    rng = random.Random(9)
    records = [ClassifiedResponse(id=f"{key}-{w}-{i}", monitor_key=key, event_time=T0 + 60 * w + i * 3.0,
                                  category=(c := rng.choice(list(PAIRS))), probs={k: float(k == c) for k in PAIRS},
                                  model_version="old-int8" if w < 4 else "new-int8")
               for key in ("alpha", "beta") for w in range(8) for i in range(20)]
    inp = read_files([write_jsonl(tmp_path / "c.jsonl", records)], ReplayOptions())
    out = replay(inp, SETTINGS, ReplayOptions())
    assert out["input"]["n_events"] == len(records) and out["input"]["n_unknown_category"] == 0
    flagged = sorted((w["monitor_key"], w["window_start"] - T0) for w in out["windows"] if w["classifier_changed"])
    assert flagged == [("alpha", 240.0), ("beta", 240.0)]
    assert sorted(a["monitor_key"] for a in out["alerts"] if a["rule"] == "classifier_changed") == ["alpha", "beta"]
    for key in ("alpha", "beta"):  # dS/dt and the rest measure the new classifier's windows only
        rates = out["rates"][key]
        assert rates["windows"] == 4 and rates["classifier_change"]["windows_before"] == 4
        assert rates["classifier_change"]["at"] == "2026-01-01T00:04:00Z"
        assert rates["events"] == sum(w["n"] for w in out["windows"] if w["monitor_key"] == key
                                      and w["window_start"] >= T0 + 240)
    page = render_report(out)
    assert page.count('class="classifier-change"') == 2 and "the classifier changed to new-int8" in page
    assert page.count("since the classifier change at 2026-01-01T00:04:00Z") == 2


def test_a_long_csv_field_and_a_truncated_gz_lose_no_valid_record(tmp_path):
    events = scenario(n_windows=3)
    rows = [{"id": e.id, "monitor_key": e.monitor_key, "event_time": e.event_time, "prompt": e.prompt,
             "response": e.response} for e in events]
    rows[5]["response"] = "long answer " * 20_000  # 240 KB, over the csv module's default field limit
    with (tmp_path / "e.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    inp = read_files([tmp_path / "e.csv"], ReplayOptions(classifier="rules"))
    assert inp.n_events == len(events) and inp.n_bad == 0
    full = gzip.compress("".join(e.model_dump_json() + "\n" for e in events).encode())
    (tmp_path / "cut.jsonl.gz").write_bytes(full[: len(full) * 2 // 3])
    inp = read_files([tmp_path / "cut.jsonl.gz"], ReplayOptions(classifier="rules"))
    assert 0 < inp.n_events < len(events) and inp.n_bad == 1
    assert "the file ends early" in inp.bad_examples[0] and "records before are kept" in inp.bad_examples[0]
    with pytest.raises(ReplayError, match="is a folder"):
        read_files([tmp_path], ReplayOptions(classifier="rules"))


def test_terminal_output_escapes_control_characters_in_keys(tmp_path):
    hostile = "model-\x1b]0;owned\x07\u202e"
    events = [e.model_copy(update={"monitor_key": hostile}) for e in scenario(n_windows=2, keys=("alpha",))]
    src = write_jsonl(tmp_path / "e.jsonl", events)
    r = cli("replay", "-i", src, *ARGS)
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout and "\x07" not in r.stdout and "\u202e" not in r.stdout
    assert "model-\\x1b]0;owned\\x07\\u202e:" in r.stdout


def test_auto_reads_each_record_in_the_format_it_is_in_and_names_the_fix_for_the_rest(tmp_path):
    events = scenario(n_windows=2)
    lines = [e.model_dump_json() for e in events[:30]]
    for e in events[30:]:  # the same responses logged as OpenAI chat completions
        lines.append(json.dumps({"id": e.id, "model": e.monitor_key, "created": e.event_time,
                                 "messages": [{"role": "user", "content": e.prompt}],
                                 "choices": [{"message": {"role": "assistant", "content": e.response}}]}))
    lines.append(json.dumps({"question": "q", "answer": "a"}))
    inp = read_files([write_lines(tmp_path / "mixed.jsonl", lines)], ReplayOptions(classifier="rules"))
    assert inp.n_events == len(events) and inp.n_bad == 1
    assert inp.sources[0].formats == {"own": 30, "openai": len(events) - 30}
    assert "no input format fits this record (it has: answer, question)" in inp.bad_examples[0]
    assert "--format mapped" in inp.bad_examples[0]


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_latin1_file_loses_only_its_non_utf8_records_and_no_key_is_mangled(tmp_path):
    events = scenario(n_windows=2)
    lines = [e.model_dump_json().encode() for e in events]
    lines[3] = lines[3].replace(b'"alpha"', b'"caf\xe9"')  # one record written in Latin-1
    (tmp_path / "latin1.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    inp = read_files([tmp_path / "latin1.jsonl"], ReplayOptions(classifier="rules"))
    assert inp.n_events == len(events) - 1 and inp.n_bad == 1
    assert "not UTF-8 text (invalid byte 0xe9)" in inp.bad_examples[0]
    assert {e.monitor_key for e in inp.events} == {"alpha", "beta"}


@pytest.mark.integration
def test_the_worker_and_replay_topic_accept_and_refuse_the_same_hostile_messages(settings, tmp_path):
    import asyncio

    from valuedrift.ops.kafka import ensure_topics, read_topic
    from valuedrift.ops.worker_process import WorkerProcess
    from valuedrift.streams.core.records import DeadLetter

    from tests.helpers import produce, windows_of

    settings = settings.replace(max_message_bytes=4096)
    asyncio.run(ensure_topics(settings))
    events = scenario(n_windows=2)
    hostile = [(None, b""), (None, b"x" * 5000), (None, b'{"id": "u", "monitor_key": "sim-\xff\xfe"}'),
               (None, json.dumps({**json.loads(events[0].model_dump_json()), "id": "big",
                                  "response": "y" * 6000}).encode()),
               (None, b"{not json")]
    with WorkerProcess(settings, tmp_path / "worker.log"):
        produce(settings, events, extra=hostile)
        live = windows_of(settings, expect=4)
        dead = [DeadLetter.parse_bytes(m) for m in asyncio.run(
            read_topic(settings.broker, settings.topics.deadletter, expect=len(hostile), timeout=30))]
    r = cli("replay", "--topic", settings.topics.responses, "--broker", str(settings.broker), "--idle", "2s",
            *ARGS, "--json", tmp_path / "topic.json", env={**os.environ, "VALUEDRIFT_MAX_MESSAGE_BYTES": "4096"})
    assert r.returncode == 0, r.stderr
    out = json.loads((tmp_path / "topic.json").read_text())
    assert len(dead) == out["input"]["n_bad_lines"] == len(hostile)
    refused_live = {(d.partition, d.offset) for d in dead}
    refused_replay = {tuple(map(int, b.split(": ", 1)[0].split("[", 1)[1].replace("]@", " ").split()))
                      for b in out["input"]["bad_examples"]}
    assert refused_live == refused_replay  # the same messages, by partition and offset
    assert sum(w.n for w in live) == sum(w["n"] for w in out["windows"]) == len(events)
    assert any("not UTF-8" in d.reason for d in dead) and any("not UTF-8" in b for b in out["input"]["bad_examples"])


@pytest.mark.integration
def test_replay_of_a_topic_is_not_held_open_by_a_running_workers_ticks(settings):
    """A running worker sends idle-close ticks to its classified topic every few seconds; they are not records, so
    reading the topic stops after --idle without a record instead of waiting for its one-hour timeout."""
    import asyncio
    import threading
    import time

    from valuedrift.ops.kafka import ensure_topics, make_producer
    from valuedrift.ops.replay import read_kafka
    from valuedrift.streams.core.records import tick_payload

    asyncio.run(ensure_topics(settings))
    topic = settings.topics.classified
    records = [ClassifiedResponse(id=f"r{i}", monitor_key="k", event_time=T0 + i, category="g1", probs={"g1": 1.0},
                                  model_version="m-1") for i in range(3)]
    started, stop = threading.Event(), threading.Event()

    async def tick_until_stopped() -> None:
        producer = make_producer(settings.broker)
        await producer.start()
        try:
            for rec in records:
                await (await producer.send(topic, value=rec.to_bytes()))
            while not stop.is_set():
                await (await producer.send(topic, value=tick_payload(time.time())))
                started.set()
                await asyncio.sleep(0.3)
        finally:
            await producer.stop()

    ticker = threading.Thread(target=lambda: asyncio.run(tick_until_stopped()), daemon=True)
    ticker.start()
    try:
        assert started.wait(30)
        t0 = time.monotonic()
        inp = read_kafka(str(settings.broker), topic, ReplayOptions(), idle=1.5, timeout=120)
        waited = time.monotonic() - t0
        still_ticking = ticker.is_alive() and not stop.is_set()
    finally:
        stop.set()
        ticker.join(30)
    assert sorted(r.id for r in inp.classified) == ["r0", "r1", "r2"]  # read partition by partition
    assert inp.kafka["messages"] == 3  # the ticks are neither records nor counted
    assert still_ticking and waited < 60  # stopped by --idle while the ticks went on (not by the timeout)
