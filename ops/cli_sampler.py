"""``valuedrift sampler ...`` (run the sampler service, benchmark it, build the tiny model) and ``valuedrift probe``.

Nothing here imports torch, transformers or aiokafka at module level: the CLI stays fast and the serving path
stays free of torch (``tests/test_serving_imports.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import time
from pathlib import Path
from typing import Annotated

import typer
from valuedrift.ops.cli_common import load_settings, quiet_kafka_logs, unreachable
from valuedrift.ops.cli_errors import fail
from valuedrift.ops.cli_settings import setting_option

app = typer.Typer(help="The sampler: k sampled responses per probe request (transformers or an OpenAI-compatible "
                       "server).", no_args_is_help=True)

BrokerOpt = setting_option("broker")
PrefixOpt = setting_option("topic_prefix")


def _duration(text: str | None, name: str) -> float | None:
    from valuedrift.streams.settings import parse_duration

    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as err:
        fail(f"--{name}: {err}")


def _logging(level: str | None) -> None:
    lvl = (level or "INFO").upper()
    if lvl not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        fail(f"--log-level must be DEBUG, INFO, WARNING or ERROR, got {level!r}")
    logging.basicConfig(level=lvl, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL if lvl != "DEBUG" else logging.DEBUG)


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(sig, stop.set)


@app.command()
def run(
    backend: Annotated[str, typer.Option(help="hf (local transformers model) | openai (OpenAI-compatible server)")]
    = "hf",
    model: Annotated[str | None, typer.Option(help="hf: local model directory; openai: the served model name")]
    = None,
    base_url: Annotated[str | None, typer.Option(help="openai: base URL, e.g. http://127.0.0.1:8000/v1")] = None,
    api_key_env: Annotated[str, typer.Option(help="openai: environment variable holding the API key")]
    = "OPENAI_API_KEY",
    endpoint: Annotated[str, typer.Option(help="openai: chat (/chat/completions) | completions")] = "chat",
    max_n: Annotated[int | None, typer.Option(min=1, help="openai: most choices per HTTP call (split k)")] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="openai: HTTP calls open at a time")] = 8,
    timeout: Annotated[str, typer.Option(help="openai: timeout of one HTTP call")] = "120s",
    no_seed: Annotated[bool, typer.Option("--no-seed", help="openai: do not send the seed (server rejects it)")]
    = False,
    device: Annotated[str, typer.Option(help="hf: auto | cpu | cuda | cuda:N")] = "auto",
    dtype: Annotated[str, typer.Option(help="hf: auto (bf16/fp16 on CUDA, fp32 on CPU) | float32 | bfloat16 | "
                                            "float16")] = "auto",
    max_batch_rows: Annotated[int | None, typer.Option(min=1, help="hf: rows per micro-batch [256 GPU, 128 CPU]")]
    = None,
    max_batch_tokens: Annotated[int | None, typer.Option(min=1, help="hf: padded tokens per micro-batch")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="hf: torch CPU threads")] = None,
    max_in_flight: Annotated[int, typer.Option(min=1, help="requests generated concurrently (backpressure)")] = 8,
    attempts: Annotated[int, typer.Option(min=1, help="tries per request before it is dead-lettered")] = 3,
    backoff: Annotated[str, typer.Option(help="first retry delay (doubles each retry, at most 30s)")] = "0.5s",
    progress: Annotated[str, typer.Option(help="log progress and throughput this often")] = "30s",
    metrics_port: Annotated[int | None, typer.Option(
        help="serve Prometheus metrics on 127.0.0.1:PORT [env VALUEDRIFT_METRICS_PORT, VALUEDRIFT_METRICS_HOST]")]
    = None,
    broker: BrokerOpt = None,
    topic_prefix: PrefixOpt = None,
    partitions: Annotated[int | None, typer.Option(help="partitions of topics created [4]")] = None,
    app_id: Annotated[str | None, typer.Option(help="app id; the consumer group is <app id>-sampler")] = None,
    log_level: Annotated[str | None, typer.Option(help="DEBUG, INFO, WARNING... [INFO]")] = None,
) -> None:
    """Consume probe requests from the prompts topic; produce k response events per request to responses."""
    from valuedrift.sampler.retry import RetryPolicy

    settings = load_settings(broker=broker, topic_prefix=topic_prefix, partitions=partitions, app_id=app_id)
    timeout_s = _duration(timeout, "timeout")
    try:
        policy = RetryPolicy(attempts=attempts, base=_duration(backoff, "backoff") or 0.0)
    except ValueError as err:
        fail(str(err))
    be = _make_backend(backend, model, base_url, api_key_env, endpoint, max_n, concurrency, timeout_s or 120.0,
                       not no_seed, device, dtype, max_batch_rows, max_batch_tokens, threads)
    _logging(log_level)
    quiet_kafka_logs()
    from valuedrift.ops.kafka import ensure_topics

    try:
        asyncio.run(ensure_topics(settings))
    except Exception as err:  # noqa: BLE001 - any connection failure is reported in one line
        unreachable(settings, err)
    from valuedrift.sampler.metrics import SamplerMetrics
    from valuedrift.sampler.service import SamplerService, ServiceConfig

    registry = None
    port = metrics_port if metrics_port is not None else getattr(settings, "metrics_port", 0)
    host = getattr(settings, "metrics_host", "127.0.0.1")
    if port:
        from prometheus_client import CollectorRegistry, start_http_server

        registry = CollectorRegistry()
        try:
            start_http_server(port, addr=host, registry=registry)
        except OSError as err:
            fail(f"cannot serve metrics on {host}:{port}: {err}", 1)
    config = ServiceConfig(max_in_flight=max_in_flight, retry=policy,
                           progress_seconds=_duration(progress, "progress") or 30.0)

    async def main() -> None:
        stop = asyncio.Event()
        _stop_on_signals(stop)
        await SamplerService(settings, be, config, SamplerMetrics(registry)).run(stop)

    logging.getLogger("valuedrift.sampler").info(
        "sampler: %s backend, model %s; %s → %s (at most %d requests in flight)", be.name, be.model,
        settings.topics.prompts, settings.topics.responses, max_in_flight)
    try:
        asyncio.run(main())
    except (FileNotFoundError, RuntimeError, ValueError) as err:
        fail(str(err), 1)
    except Exception as err:  # noqa: BLE001 - e.g. the broker went away: one line, non-zero exit
        fail(f"sampler stopped: {err.__class__.__name__}: {err}", 1)


def _make_backend(backend: str, model: str | None, base_url: str | None, api_key_env: str, endpoint: str,
                  max_n: int | None, concurrency: int, timeout: float, send_seed: bool, device: str, dtype: str,
                  max_batch_rows: int | None, max_batch_tokens: int | None, threads: int | None):  # noqa: ANN202
    if backend == "hf":
        if not model:
            fail("--model DIR is required with --backend hf (a local transformers model directory; "
                 "`valuedrift sampler tiny DIR` builds a tiny random one)")
        if not Path(model).is_dir():
            fail(f"--model {model}: no such directory (the hf backend loads local files only, never downloads)")
        if dtype not in ("auto", "float32", "bfloat16", "float16"):
            fail(f"--dtype must be auto, float32, bfloat16 or float16, got {dtype!r}")
        from valuedrift.sampler.backends import HFBackend

        return HFBackend(model, device=device, dtype=dtype, max_batch_rows=max_batch_rows,
                         max_batch_tokens=max_batch_tokens, threads=threads)
    if backend == "openai":
        if not base_url or not base_url.startswith(("http://", "https://")):
            fail("--base-url http(s)://HOST:PORT/v1 is required with --backend openai")
        if not model:
            fail("--model NAME (the model name the server serves) is required with --backend openai")
        from valuedrift.sampler.backends import OpenAIBackend

        try:
            return OpenAIBackend(base_url, model, api_key_env=api_key_env, timeout=timeout, concurrency=concurrency,
                                 max_n=max_n, endpoint=endpoint, send_seed=send_seed)
        except ValueError as err:
            fail(str(err))
    fail(f"unknown backend {backend!r}; choose hf or openai")


@app.command()
def bench(
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    model: Annotated[Path | None, typer.Option(help="local model directory [the tiny random model]")] = None,
    k: Annotated[list[int] | None, typer.Option(min=1, max=1000, help="samples per request; repeat [1, 10, 100]")]
    = None,
    max_new_tokens: Annotated[int, typer.Option(min=1, max=4096)] = 32,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    dtype: Annotated[str, typer.Option(help="auto | float32 | bfloat16 | float16")] = "auto",
    min_seconds: Annotated[float, typer.Option(min=0.0, help="measure each k for at least this long")] = 1.0,
    threads: Annotated[int | None, typer.Option(min=1, help="torch CPU threads")] = None,
    max_batch_rows: Annotated[int | None, typer.Option(min=1, help="rows per micro-batch [256 GPU, 128 CPU]")] = None,
) -> None:
    """Responses/s and generated tokens/s of the hf backend at k = 1, 10, 100 on the current device."""
    if model is not None and not model.is_dir():
        fail(f"--model {model}: no such directory")
    from valuedrift.sampler.bench import run_bench

    try:
        result = run_bench(model, ks=k or (1, 10, 100), max_new_tokens=max_new_tokens, device=device, dtype=dtype,
                           min_seconds=min_seconds, threads=threads, max_batch_rows=max_batch_rows)
    except (FileNotFoundError, RuntimeError, ValueError) as err:
        fail(str(err), 1)
    if as_json:
        typer.echo(json.dumps(result))
        return
    typer.echo(f"{result['model']} on {result['device']} ({result['dtype']}, {result['threads']} threads), "
               f"{result['max_new_tokens']} new tokens per response")
    for r in result["results"]:
        typer.echo(f"k={r['k']:>4}: {r['responses_per_s']:9.1f} responses/s {r['tokens_per_s']:10.1f} tokens/s")


@app.command()
def tiny(
    out: Annotated[Path, typer.Argument(help="directory to write the model into")],
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Build a tiny random GPT-2-style model with a locally trained tokenizer (for tests and benchmarks)."""
    from valuedrift.sampler.tiny import build_tiny_model

    typer.echo(str(build_tiny_model(out, seed=seed)))


def probe(
    probes: Annotated[Path, typer.Option(help="probe set: CSV (prompt column) or JSONL (prompt or messages)")],
    steps: Annotated[int, typer.Option(min=0, help="steps to emit (0: until stopped, needs --interval)")] = 1,
    interval: Annotated[str | None, typer.Option(help="wall-clock time between steps, e.g. 10m")] = None,
    monitor_key: Annotated[str, typer.Option(help="monitor key of the responses (a probe may set its own)")]
    = "probe",
    k: Annotated[int, typer.Option(min=1, max=1000, help="samples per prompt per step")] = 100,
    temperature: Annotated[float, typer.Option(min=0.0, max=10.0, help="0 = greedy")] = 0.7,
    top_p: Annotated[float, typer.Option(min=0.0, max=1.0)] = 1.0,
    max_new_tokens: Annotated[int, typer.Option(min=1, max=4096)] = 256,
    seed: Annotated[int, typer.Option(min=0, help="base seed; each prompt and step gets its own")] = 0,
    run_id: Annotated[str | None, typer.Option(help="prefix of request ids [probe-<UTC time>]")] = None,
    carry_turns: Annotated[int, typer.Option(min=0, help="conversation carry-over: previous exchanges kept (0: "
                                                         "none); needs --broker")] = 0,
    carry_timeout: Annotated[str, typer.Option(help="carry-over: wait this long for a step's answers")] = "5m",
    jailbreak_prefixes: Annotated[Path | None, typer.Option(help="adversarial prefixes, one per line")] = None,
    jailbreak_start: Annotated[float, typer.Option(min=0.0, max=1.0, help="injection probability at step 0")] = 0.0,
    jailbreak_end: Annotated[float, typer.Option(min=0.0, max=1.0, help="injection probability after the ramp")]
    = 0.5,
    jailbreak_ramp: Annotated[int | None, typer.Option(min=0, help="steps to reach the end probability [steps-1]")]
    = None,
    step_seconds: Annotated[str | None, typer.Option(
        help="give step s the event time start + s x this (one window per step) instead of the generation time")]
    = None,
    start_time: Annotated[str | None, typer.Option(help="event time of step 0 with --step-seconds [now]")] = None,
    out: Annotated[Path | None, typer.Option(help="write the requests as JSONL here instead of producing them")]
    = None,
    broker: BrokerOpt = None,
    topic_prefix: PrefixOpt = None,
    topic: Annotated[str | None, typer.Option(help="produce to this topic [the prompts topic]")] = None,
) -> None:
    """Emit probe requests: one per prompt per step, for N steps or every interval, to the prompts topic."""
    from pydantic import ValidationError
    from valuedrift.sampler.probe import JailbreakSchedule, ProbePlan, ProbeSetError, load_prefixes, load_probe_set
    from valuedrift.streams.core.records import parse_event_time

    every = _duration(interval, "interval") or 0.0
    if not 0.0 < top_p <= 1.0:
        fail(f"--top-p must be in (0, 1], got {top_p}")
    if steps == 0 and every <= 0:
        fail("--steps 0 (run until stopped) needs --interval")
    if carry_turns and out is not None:
        fail("--carry-turns reads the answers back from Kafka: use --broker, not --out")
    try:
        probe_set = load_probe_set(probes)
        schedule = None
        if jailbreak_prefixes is not None:
            ramp = jailbreak_ramp if jailbreak_ramp is not None else max(steps - 1, 0)
            schedule = JailbreakSchedule(tuple(load_prefixes(jailbreak_prefixes)), jailbreak_start, jailbreak_end,
                                         ramp)
        step_s = _duration(step_seconds, "step-seconds")
        t0 = None
        if step_s is not None:
            t0 = parse_event_time(start_time) if start_time else float(int(time.time() // step_s) * step_s)
        plan = ProbePlan(probes=tuple(probe_set), run_id=run_id or time.strftime("probe-%Y%m%dT%H%M%SZ",
                                                                                time.gmtime()),
                         monitor_key=monitor_key, k=k, temperature=temperature, top_p=top_p,
                         max_new_tokens=max_new_tokens, seed=seed, jailbreak=schedule, carry_turns=carry_turns,
                         step_seconds=step_s, start_time=t0)
        if out is not None:
            n = 0
            with out.open("w") as fh:
                for s in range(steps or 1):
                    for r in plan.step_requests(s):
                        fh.write(r.model_dump_json(exclude_none=True) + "\n")
                        n += 1
            typer.echo(f"wrote {n} requests ({len(probe_set)} prompts x {steps or 1} steps) to {out}")
            return
    except ValidationError as err:
        first = err.errors()[0]
        fail(f"invalid probe request: {'.'.join(map(str, first['loc'])) or 'record'}: {first['msg']}")
    except (ProbeSetError, ValueError) as err:
        fail(str(err))
    from valuedrift.ops.kafka import ensure_topics
    from valuedrift.sampler.service import run_probe

    settings = load_settings(broker=broker, topic_prefix=topic_prefix)
    quiet_kafka_logs()
    try:
        asyncio.run(ensure_topics(settings))
    except Exception as err:  # noqa: BLE001 - any connection failure is reported in one line
        unreachable(settings, err)
    name = topic or settings.topics.prompts

    def on_step(step: int, n: int) -> None:
        typer.echo(f"step {step}: produced {n} requests to {name}")

    async def main() -> int:
        stop = asyncio.Event()
        _stop_on_signals(stop)
        return await run_probe(settings, plan, steps or None, interval=every, topic=name, on_step=on_step,
                               carry_timeout=_duration(carry_timeout, "carry-timeout") or 300.0, stop=stop)

    try:
        n = asyncio.run(main())
    except Exception as err:  # noqa: BLE001 - reported in one line
        fail(f"probe stopped: {err.__class__.__name__}: {err}", 1)
    typer.echo(f"produced {n} requests in all (run {plan.run_id})")
