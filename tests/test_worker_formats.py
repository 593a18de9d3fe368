"""The stream worker reading an existing chat-log topic in OpenAI chat-completions format (several choices per
message), on the real broker: the same windows as the offline run, no double counting after a SIGKILL."""

from __future__ import annotations

import asyncio
import json
import random

import pytest
from valuedrift.classifier.rules import RuleClassifier
from valuedrift.ops.kafka import ensure_topics, read_topic, send_all
from valuedrift.ops.worker_process import WorkerProcess
from valuedrift.streams.adapters import AdapterConfig, adapt
from valuedrift.streams.core.records import DeadLetter
from valuedrift.streams.offline import run_offline

from tests.helpers import T0, comparable, windows_of
from tests.texts import PAIRS

pytestmark = pytest.mark.integration


def chat_logs(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        model = rng.choice(["gpt-prod", "gpt-canary"])
        codes = [rng.choice(list(PAIRS)) for _ in range(rng.randint(1, 3))]
        out.append({"id": f"chatcmpl-{i}", "model": model, "created": T0 + i * 2.0,
                    "messages": [{"role": "system", "content": "be helpful"},
                                 {"role": "user", "content": PAIRS[codes[0]][0]}],
                    "choices": [{"index": j, "message": {"role": "assistant", "content": PAIRS[c][1]},
                                 "finish_reason": "stop"} for j, c in enumerate(codes)]})
    return out


def test_openai_chat_logs_with_several_choices_survive_a_sigkill_without_double_counting(settings, tmp_path):
    settings = settings.replace(input_format="openai", idle_close_seconds=6.0)
    asyncio.run(ensure_topics(settings))
    logs = chat_logs(240, seed=3)
    events = [e for rec in logs for e in adapt(rec, AdapterConfig("openai"))]
    assert len(events) > len(logs)  # several events per message
    expected = run_offline(events, RuleClassifier(), settings)
    msgs = [(rec["model"].encode(), json.dumps(rec).encode()) for rec in logs]
    bad = [(None, json.dumps({"id": "x", "model": "m", "created": T0, "messages": []}).encode())]
    with WorkerProcess(settings, tmp_path / "w1.log") as w1:
        asyncio.run(send_all(settings.broker, settings.topics.responses, msgs[:120] + bad))
        windows_of(settings, expect=2)
        w1.kill()
    with WorkerProcess(settings, tmp_path / "w2.log") as w2:
        asyncio.run(send_all(settings.broker, settings.topics.responses, msgs[120:]))
        live = windows_of(settings, expect=len(expected.windows), timeout=120)
        dls = [DeadLetter.parse_bytes(r) for r in asyncio.run(
            read_topic(settings.broker, settings.topics.deadletter, expect=1, timeout=30))]
        assert w2.running, w2.log_tail()
    distinct = {w.id: w for w in live}
    assert comparable(distinct.values()) == comparable(expected.windows)
    assert len(dls) == 1 and dls[0].reason.startswith("invalid openai record: choices")
