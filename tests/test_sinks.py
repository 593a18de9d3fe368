"""Alert sinks (stdout, JSONL, signed webhook) and worker metrics; the worker test runs on the real broker."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest
from aiohttp import web
from valuedrift.ops.broker import free_port
from valuedrift.ops.kafka import ensure_topics
from valuedrift.ops.worker_process import WorkerProcess
from valuedrift.streams.core.records import Alert
from valuedrift.streams.core.webhook_signature import DELIVERY_HEADER, TIMESTAMP_HEADER, SignatureError, verify
from valuedrift.streams.sinks import AlertSinks, Sink, parse_sink

from tests.helpers import alerts_of, produce, scenario, windows_of

ALERT = Alert(id="m@2026-01-01T00:00:00Z/drift", monitor_key="m", window_start=0, window_end=60, rule="drift",
              statistic=1, threshold=1, severity="warning", message="drift")


@pytest.mark.parametrize("spec", ["email:x", "jsonl", "webhook:ftp://x", "stdout:x"])
def test_bad_sink_specs_are_refused_naming_the_problem(spec):
    with pytest.raises(ValueError, match="alert sink"):
        parse_sink(spec)


class Hook:
    """A webhook receiver on 127.0.0.1 that fails, hangs or accepts as told."""

    def __init__(self, plan):
        self.plan, self.bodies, self.headers = list(plan), [], []

    async def handle(self, request):
        body = await request.read()
        step = self.plan.pop(0) if self.plan else "ok"
        if step == "hang":
            await asyncio.sleep(5)
            return web.Response(status=504)
        if step == "500":
            return web.Response(status=500)
        self.bodies.append(body)
        self.headers.append(dict(request.headers))
        return web.Response(status=204)

    async def __aenter__(self):
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/hook"
        return self

    async def __aexit__(self, *exc):
        await self.runner.cleanup()


def test_webhook_is_signed_retried_after_5xx_and_a_timeout_is_counted_not_raised():
    async def main():
        async with Hook(["500", "ok", "hang", "hang"]) as hook:
            undelivered = []
            sinks = AlertSinks([f"webhook:{hook.url}"], environ={"VALUEDRIFT_WEBHOOK_SECRET": "k"}, timeout=0.5,
                               retries=1, backoff=0.05, on_undelivered=lambda n, why: undelivered.append(why))
            sinks.publish(ALERT)  # 500, then delivered on the retry
            sinks.publish(ALERT)  # times out twice: failed after the retry, counted
            await sinks.close(drain_seconds=10)
            (st,) = sinks.stats().values()
            return hook, st, undelivered

    hook, st, undelivered = asyncio.run(main())
    assert st.delivered == 1 and st.failed == 1 and undelivered == ["failed"]
    assert hook.bodies == [ALERT.to_bytes()]
    body, headers = hook.bodies[0], hook.headers[0]
    verify(body, headers, b"k")  # what a receiver runs: authentic and fresh
    ts = int(headers[TIMESTAMP_HEADER])
    with pytest.raises(SignatureError, match="more than the tolerance"):
        verify(body, headers, b"k", now=ts + 301)  # the same delivery replayed six minutes later
    with pytest.raises(SignatureError, match="does not match"):
        verify(body.replace(b"drift", b"DRIFT"), headers, b"k")  # tampered body
    with pytest.raises(SignatureError, match="does not match"):
        verify(body, {**headers, TIMESTAMP_HEADER: str(ts + 1)}, b"k")  # a time stamp moved to look fresh
    with pytest.raises(SignatureError, match="does not match"):
        verify(body, headers, b"other secret")
    with pytest.raises(SignatureError, match="missing header"):
        verify(body, {k: v for k, v in headers.items() if k != DELIVERY_HEADER}, b"k")


def test_a_webhook_without_a_secret_warns_at_start(caplog):
    AlertSinks(["webhook:http://127.0.0.1:9/hook"], environ={})
    assert "VALUEDRIFT_WEBHOOK_SECRET is not set" in caplog.text


def test_a_slow_sink_never_blocks_publishing_it_drops_and_counts(tmp_path):
    async def main():
        async with Hook(["hang"] * 100) as hook:
            sink = Sink("webhook", hook.url, queue_size=5, timeout=3, retries=0)
            sinks = AlertSinks([])
            sinks.sinks.append(sink)
            for _ in range(50):
                sinks.publish(ALERT)  # returns at once although the receiver hangs
            dropped = sink.stats.dropped
            sink.task.cancel()
            return dropped

    assert asyncio.run(main()) >= 40


def test_jsonl_and_stdout_sinks_deliver_each_alert(tmp_path, capsys):
    async def main():
        sinks = AlertSinks([f"jsonl:{tmp_path / 'a.jsonl'}", "stdout"])
        for _ in range(3):
            sinks.publish(ALERT)
        await sinks.close()

    asyncio.run(main())
    lines = (tmp_path / "a.jsonl").read_text().splitlines()
    assert [Alert.model_validate_json(x) for x in lines] == [ALERT] * 3
    assert capsys.readouterr().out.count('"rule":"drift"') == 3


@pytest.mark.integration
def test_worker_serves_metrics_on_loopback_and_writes_alerts_to_a_jsonl_sink(settings, tmp_path):
    port = free_port()
    sink = tmp_path / "alerts.jsonl"
    settings = settings.replace(metrics_port=port, alert_sinks=f"jsonl:{sink}", alert_min_n=1)  # alerts on 15s
    asyncio.run(ensure_topics(settings))
    events = scenario(seed=41)
    with WorkerProcess(settings, tmp_path / "worker.log"):
        produce(settings, events, extra=[(None, b"not json")])
        ws = windows_of(settings, expect=16)
        alerts = alerts_of(settings)
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    assert values["valuedrift_events_in_total"] == len(events) + 1
    assert values["valuedrift_classified_total"] == len(events)
    assert values['valuedrift_dead_letters_total{stage="classify"}'] == 1
    assert values["valuedrift_windows_total"] == len(ws)
    assert 'valuedrift_entropy_nats{key="alpha"}' in values
    assert sum(v for k, v in values.items() if k.startswith("valuedrift_alerts_total")) == len(alerts)
    assert sorted(json.loads(x)["id"] for x in sink.read_text().splitlines()) == sorted(a.id for a in alerts)


def test_webhook_verify_command_accepts_a_fresh_delivery_and_refuses_others(tmp_path):
    import os

    from valuedrift.streams.core.webhook_signature import SIGNATURE_HEADER, signed_headers

    from tests.helpers import cli

    body = tmp_path / "body.json"
    body.write_bytes(ALERT.to_bytes())
    h = signed_headers(ALERT.to_bytes(), b"k")
    args = ["webhook", "verify", "--body", body, "--timestamp", h[TIMESTAMP_HEADER], "--delivery",
            h[DELIVERY_HEADER], "--signature", h[SIGNATURE_HEADER]]
    env = {**os.environ, "VALUEDRIFT_WEBHOOK_SECRET": "k"}
    ok = cli(*args, env=env)
    assert ok.returncode == 0 and "is authentic and fresh" in ok.stdout, ok.stderr
    bad = cli(*args, env={**env, "VALUEDRIFT_WEBHOOK_SECRET": "other"})
    assert bad.returncode == 1 and bad.stderr.startswith("error: delivery") and "Traceback" not in bad.stderr
    old = signed_headers(ALERT.to_bytes(), b"k", timestamp=int(h[TIMESTAMP_HEADER]) - 3600)
    late = cli("webhook", "verify", "--body", body, "--timestamp", old[TIMESTAMP_HEADER], "--delivery",
               old[DELIVERY_HEADER], "--signature", old[SIGNATURE_HEADER], env=env)
    assert late.returncode == 1 and "more than the tolerance" in late.stderr
