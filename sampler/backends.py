"""Generation backends: ``hf`` (a local transformers causal LM) and ``openai`` (any OpenAI-compatible server).

Both take a validated ``ProbeRequest`` (its ``seed`` already resolved) and return its k samples, or raise
``GenerationError`` (``retryable`` or not); the service retries and dead-letters. Neither imports torch at
module level: the hf backend loads torch and transformers when it starts.

What the hf backend guarantees under a seed: the random numbers of sample i of a request come from a stream
keyed by (seed, i) only (``valuedrift.sampler.seeding``), so packing, micro-batch size, the other requests in flight and
the order of arrival do not change them. The same model files, conversation, sampling settings and seed give
the same samples on the same device and dtype, run after run; on CPU in float32 this was checked bit for bit
(``tests/test_sampler.py``). Logits themselves may differ in the last bits with the batch shape (GPU kernels
pick different reduction orders), which can flip a token where two candidates are within rounding of each
other; with bf16/fp16 on GPU that is rare but possible, so byte-identical texts are promised for identical
runs (same packing), and identical random streams for any packing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from valuedrift.sampler.events import Sample
from valuedrift.sampler.packing import Item, pack
from valuedrift.sampler.retry import GenerationError
from valuedrift.sampler.seeding import derive_seed, fresh_seed, row_key
from valuedrift.streams.core.records import ProbeRequest

log = logging.getLogger("valuedrift.sampler")


@dataclass(frozen=True)
class Generation:
    """The k samples of one request and the tokens generated for them (None when the backend cannot tell)."""

    samples: list[Sample]
    tokens: int | None


class Backend(Protocol):
    name: str
    model: str

    async def start(self) -> None: ...

    async def generate(self, req: ProbeRequest) -> Generation: ...

    async def close(self) -> None: ...


def plain_transcript(messages: Sequence[dict[str, str]]) -> str:
    """A conversation as plain text, for models without a chat template.

    >>> plain_transcript([{"role": "user", "content": "Hi"}])
    'Hi'
    >>> plain_transcript([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    'System: Be brief.\\n\\nUser: Hi\\n\\nAssistant:'
    """
    if len(messages) == 1 and messages[0]["role"] == "user":
        return messages[0]["content"]
    parts = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n\n".join([*parts, "Assistant:"])


# --------------------------------------------------------------------------------------------------- hf


@dataclass
class _Job:
    req: ProbeRequest
    future: asyncio.Future[Generation]
    loop: asyncio.AbstractEventLoop
    prompt_ids: tuple[int, ...] = ()
    results: dict[int, tuple[list[int], str]] = field(default_factory=dict)


class HFBackend:
    """A transformers causal LM from a local directory; CUDA (bf16, else fp16) when present, else CPU float32.

    Pending requests are packed row by row into micro-batches of at most ``max_batch_rows`` rows and
    ``max_batch_tokens`` padded tokens and generated on one thread (the model is not shared between threads).
    """

    name = "hf"

    def __init__(self, model_dir: str | Path, *, device: str = "auto", dtype: str = "auto",
                 max_batch_rows: int | None = None, max_batch_tokens: int | None = None, batch_wait: float = 0.01,
                 threads: int | None = None, ignore_eos: bool = False) -> None:
        self.model_dir = Path(model_dir)
        self.model = self.model_dir.name
        self.device_name = device
        self.dtype_name = dtype
        self._max_rows = max_batch_rows
        self._max_tokens = max_batch_tokens
        self.batch_wait = batch_wait
        self.threads = threads
        self.ignore_eos = ignore_eos
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hf-generate")
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task[None] | None = None
        self.device: Any = None
        self.dtype: Any = None
        self.context: int | None = None
        self.micro_batches = 0

    @property
    def max_rows(self) -> int:
        return self._max_rows or (256 if self.device is not None and self.device.type == "cuda" else 128)

    @property
    def max_tokens(self) -> int:
        return self._max_tokens or (262_144 if self.device is not None and self.device.type == "cuda" else 16_384)

    def load(self) -> None:
        """Load tokenizer and model (blocking); called by ``start`` in the generation thread."""
        if not self.model_dir.is_dir():
            raise FileNotFoundError(f"model directory {self.model_dir} not found (the hf backend loads local "
                                    f"files only; build a tiny one with `valuedrift sampler tiny DIR`)")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        if self.threads:
            torch.set_num_threads(self.threads)
        want = self.device_name
        if want == "auto":
            want = "cuda" if torch.cuda.is_available() else "cpu"
        if want.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError("--device cuda was asked for but torch sees no CUDA device")
        self.device = torch.device(want)
        dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
        if self.dtype_name == "auto":
            if self.device.type == "cuda":
                self.dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            else:
                self.dtype = torch.float32
        elif self.dtype_name in dtypes:
            self.dtype = dtypes[self.dtype_name]
        else:
            raise ValueError(f"dtype must be auto, float32, bfloat16 or float16, got {self.dtype_name!r}")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)
            self.lm = AutoModelForCausalLM.from_pretrained(self.model_dir, local_files_only=True, dtype=self.dtype)
        except (OSError, ValueError) as err:
            raise RuntimeError(f"cannot load a causal LM from {self.model_dir}: {err}") from None
        self.lm.to(device=self.device, dtype=self.dtype).eval()  # older transformers ignore dtype= above
        cfg = self.lm.config
        self.context = getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None)
        gen_eos = getattr(self.lm.generation_config, "eos_token_id", None)
        eos: list[int] = []
        for e in (gen_eos if isinstance(gen_eos, list) else [gen_eos]) + [self.tokenizer.eos_token_id]:
            if e is not None and e not in eos:
                eos.append(int(e))
        self.eos_ids = eos
        pad = self.tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else (eos[0] if eos else 0))
        self.chat = bool(getattr(self.tokenizer, "chat_template", None))
        log.info("hf backend: %s on %s (%s), context %s, chat template %s", self.model_dir, self.device,
                 str(self.dtype).removeprefix("torch."), self.context, "yes" if self.chat else "no")

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self.load)
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._batcher(), name="hf-batcher")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._executor.shutdown(wait=True, cancel_futures=True)

    def encode(self, req: ProbeRequest) -> tuple[int, ...]:
        """Token ids of the request's prompt (through the chat template when the tokenizer has one)."""
        conv = req.conversation()
        if self.chat:
            text = self.tokenizer.apply_chat_template(conv, add_generation_prompt=True, tokenize=False)
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        else:
            ids = self.tokenizer(plain_transcript(conv))["input_ids"]
        if not ids:
            raise GenerationError("the prompt encodes to no tokens", retryable=False)
        if self.context is not None and len(ids) + req.max_new_tokens > self.context:
            raise GenerationError(f"prompt of {len(ids)} tokens + max_new_tokens={req.max_new_tokens} exceeds the "
                                  f"model's context of {self.context} tokens", retryable=False)
        return tuple(ids)

    async def generate(self, req: ProbeRequest) -> Generation:
        if self._queue is None:
            raise RuntimeError("the hf backend was not started")
        loop = asyncio.get_running_loop()
        job = _Job(req if req.seed is not None else req.model_copy(update={"seed": fresh_seed()}),
                   loop.create_future(), loop)
        await self._queue.put(job)
        return await job.future

    async def _batcher(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self._queue.get()]
            if self.batch_wait > 0:
                await asyncio.sleep(self.batch_wait)
            rows = jobs[0].req.k
            while not self._queue.empty() and rows < 4 * self.max_rows:
                job = self._queue.get_nowait()
                jobs.append(job)
                rows += job.req.k
            jobs = [j for j in jobs if not j.future.done()]
            if not jobs:
                continue
            try:
                await loop.run_in_executor(self._executor, self._run, jobs)
            except Exception as err:  # noqa: BLE001 - every unresolved job learns about it
                for j in jobs:
                    _resolve(j, exc=GenerationError(f"generation failed: {err.__class__.__name__}: {err}"))

    def _run(self, jobs: list[_Job]) -> None:
        """Encode, pack and generate a round of jobs (generation thread)."""
        from valuedrift.sampler.hf_sampling import RowSpec, generate_rows

        live: list[_Job] = []
        for j in jobs:
            try:
                j.prompt_ids = self.encode(j.req)
                live.append(j)
            except GenerationError as err:
                _resolve(j, exc=err)
            except Exception as err:  # noqa: BLE001 - a tokenizer or template error belongs to this request
                _resolve(j, exc=GenerationError(f"cannot encode the prompt: {err}", retryable=False))
        plan = pack([Item(len(j.prompt_ids), j.req.k, j.req.max_new_tokens) for j in live], self.max_rows,
                    self.max_tokens)
        failed: set[int] = set()
        for mb in plan:
            rows = [r for r in mb.rows if r.request not in failed]
            if not rows:
                continue
            specs = []
            for r in rows:
                req = live[r.request].req
                specs.append(RowSpec(live[r.request].prompt_ids, row_key(req.seed or 0, r.sample), req.temperature,
                                     req.top_p, req.max_new_tokens))
            try:
                outs = generate_rows(self.lm, specs, pad_id=self.pad_id, eos_ids=self.eos_ids, device=self.device,
                                     ignore_eos=self.ignore_eos)
            except Exception as err:  # noqa: BLE001 - e.g. CUDA out of memory: retried by the service
                for r in rows:
                    if r.request not in failed:
                        failed.add(r.request)
                        _resolve(live[r.request], exc=GenerationError(
                            f"generation failed: {err.__class__.__name__}: {str(err)[:300]}"))
                continue
            self.micro_batches += 1
            for r, out in zip(rows, outs, strict=True):
                j = live[r.request]
                j.results[r.sample] = out
                if len(j.results) == j.req.k:
                    samples = [Sample(self.tokenizer.decode(t, skip_special_tokens=True), len(t), fin)
                               for t, fin in (j.results[i] for i in range(j.req.k))]
                    _resolve(j, result=Generation(samples, sum(len(t) for t, _ in j.results.values())))


def _resolve(job: _Job, result: Generation | None = None, exc: BaseException | None = None) -> None:
    def setter() -> None:
        if job.future.done():
            return
        if exc is not None:
            job.future.set_exception(exc)
        else:
            job.future.set_result(result)  # type: ignore[arg-type]

    job.loop.call_soon_threadsafe(setter)


# ----------------------------------------------------------------------------------------------- openai


def split_n(k: int, max_n: int | None) -> list[tuple[int, int]]:
    """(first sample index, n) of each HTTP call when a server takes at most ``max_n`` choices per call.

    >>> split_n(5, 2)
    [(0, 2), (2, 2), (4, 1)]
    >>> split_n(5, None)
    [(0, 5)]
    """
    step = k if not max_n or max_n >= k else max_n
    return [(i, min(step, k - i)) for i in range(0, k, step)]


class OpenAIBackend:
    """Chat (or text) completions with ``n`` choices from an OpenAI-compatible server (vLLM, TGI, llama.cpp).

    At most ``concurrency`` HTTP calls are open at a time; each has a total timeout. One call is one attempt:
    timeouts, connection errors, 408, 429 and 5xx are retryable (the service retries with backoff, honouring
    Retry-After), other 4xx are not. The API key is read from the environment variable ``api_key_env``.
    """

    name = "openai"

    def __init__(self, base_url: str, model: str, *, api_key_env: str = "OPENAI_API_KEY", timeout: float = 120.0,
                 concurrency: int = 8, max_n: int | None = None, endpoint: str = "chat",
                 send_seed: bool = True) -> None:
        if endpoint not in ("chat", "completions"):
            raise ValueError(f"endpoint must be chat or completions, got {endpoint!r}")
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.timeout = timeout
        self.concurrency = concurrency
        self.max_n = max_n
        self.endpoint = endpoint
        self.send_seed = send_seed
        self._session: Any = None
        self._sem: asyncio.Semaphore | None = None
        self.calls = 0

    async def start(self) -> None:
        import aiohttp

        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._sem = asyncio.Semaphore(self.concurrency)
        self._session = aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=self.timeout))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def generate(self, req: ProbeRequest) -> Generation:
        if self._session is None:
            raise RuntimeError("the openai backend was not started")
        seed = req.seed if req.seed is not None else fresh_seed()
        parts = await asyncio.gather(*[self._call(req, seed if start == 0 else derive_seed(seed, "n", start), n)
                                       for start, n in split_n(req.k, self.max_n)])
        samples = [s for p, _ in parts for s in p]
        tokens = [t for _, t in parts]
        return Generation(samples, None if any(t is None for t in tokens) else sum(tokens))  # type: ignore[misc]

    def payload(self, req: ProbeRequest, seed: int, n: int) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "n": n, "temperature": req.temperature, "top_p": req.top_p,
                                "max_tokens": req.max_new_tokens}
        if self.send_seed:
            body["seed"] = seed
        if self.endpoint == "chat":
            body["messages"] = req.conversation()
        else:
            body["prompt"] = plain_transcript(req.conversation())
        return body

    async def _call(self, req: ProbeRequest, seed: int, n: int) -> tuple[list[Sample], int | None]:
        import aiohttp

        url = f"{self.base_url}/{'chat/completions' if self.endpoint == 'chat' else 'completions'}"
        assert self._sem is not None
        async with self._sem:
            self.calls += 1
            try:
                async with self._session.post(url, json=self.payload(req, seed, n)) as resp:
                    text = await resp.text()
                    status = resp.status
                    retry_after = _retry_after(resp.headers.get("Retry-After"))
            except TimeoutError:
                raise GenerationError(f"{url} did not answer within {self.timeout:g}s") from None
            except aiohttp.ClientError as err:
                raise GenerationError(f"{url}: {err.__class__.__name__}: {err}") from None
        if status >= 400:
            retryable = status in (408, 429) or status >= 500
            raise GenerationError(f"{url} answered HTTP {status}: {text[:300]}", retryable=retryable,
                                  retry_after=retry_after)
        return _parse_choices(text, n, self.endpoint)


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _parse_choices(text: str, n: int, endpoint: str) -> tuple[list[Sample], int | None]:
    import json

    try:
        body = json.loads(text)
        choices = sorted(body["choices"], key=lambda c: c.get("index", 0))
        if endpoint == "chat":
            texts = [(c.get("message") or {}).get("content") or "" for c in choices]
        else:
            texts = [c.get("text") or "" for c in choices]
        reasons = [c.get("finish_reason") for c in choices]
        usage = body.get("usage") or {}
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise GenerationError(f"malformed completion response ({err.__class__.__name__}): {text[:200]}") from None
    if len(texts) != n:
        raise GenerationError(f"asked for n={n} choices, the server returned {len(texts)}")
    tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
    per = tokens if n == 1 and isinstance(tokens, int) else None
    return [Sample(t, per, r) for t, r in zip(texts, reasons, strict=True)], tokens if isinstance(tokens, int) else None
