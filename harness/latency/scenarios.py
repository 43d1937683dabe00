"""The measured scenarios, after MLPerf Inference: single-stream, offline, server.

Each scenario is a list of ``Job``s (an id, and a thunk that builds its inputs and measures), so
the suite can skip jobs whose rows a resumed run already holds. Inputs are real texts of the
evaluation split; tokenisation is prepared outside the timed region of the model forward and
timed on its own.

* single-stream: batch 1, one query after another, cycling through a deterministic sample of
  evaluation texts: tokenisation, model forward and the two together are timed separately.
* offline: a grid of batch sizes × sequence-length buckets. A bucket of L tokens is filled with
  real texts: evaluation texts are taken in order (cyclically) and joined with a space until the
  tokenizer counts at least L content tokens, then cut at the end of the L-th token (so the text
  holds exactly the tokens the model sees); the model input is truncated to exactly L tokens.
* server: Poisson arrivals at a target rate served by one worker at batch 1, first come first
  served; the latency of a query runs from its arrival to its completion, queueing included.
"""

from __future__ import annotations

import gc
import itertools
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from harness.latency.timing import SyncFn, TimingPlan, entry_from_seconds, measure, pytest_benchmark
from harness.models.base import Encoded

Entry = dict[str, Any]


@runtime_checkable
class TimedModel(Protocol):
    """What the latency suite needs of an adapter: tokenisation apart from the forward."""

    @property
    def model(self) -> Any: ...

    @property
    def tokenizer(self) -> Any: ...

    @property
    def max_length(self) -> int: ...

    @property
    def device(self) -> str: ...

    def tokenize(self, texts: Sequence[str]) -> tuple[list[list[int]], list[bool]]: ...

    def collate(
        self, rows: Sequence[Sequence[int]], truncated: Sequence[bool] | None = None
    ) -> Encoded: ...

    def logits(self, encoded: Encoded) -> Any: ...


@dataclass(frozen=True)
class Bench:
    """How every job measures: plans, device barrier, and facts copied into each entry."""

    plan: TimingPlan
    tokenize_plan: TimingPlan
    sync: SyncFn | None
    info: Mapping[str, Any] = field(default_factory=dict)

    def time(
        self,
        fn: Callable[[], Any],
        *,
        group: str,
        params: Mapping[str, Any],
        tokenize: bool = False,
        extra: Mapping[str, Any] | None = None,
    ) -> Entry:
        # Tokenisation runs on the host: no device barrier, and a shorter time budget.
        return measure(
            fn,
            group=group,
            params=params,
            plan=self.tokenize_plan if tokenize else self.plan,
            sync=None if tokenize else self.sync,
            extra_info={**self.info, **(extra or {})},
        )


@dataclass(frozen=True)
class Job:
    id: str
    scenario: str
    params: Mapping[str, Any]
    run: Callable[[], Entry]


def cycling(fn: Callable[[Any], Any], items: Sequence[Any]) -> Callable[[], Any]:
    """A no-argument callable applying ``fn`` to the next item, round and round."""
    source: Iterator[Any] = itertools.cycle(items)
    return lambda: fn(next(source))


# ------------------------------------------------------------------ single-stream


def single_stream_jobs(
    model: TimedModel, texts: Sequence[str], bench: Bench, *, prefix: str = ""
) -> list[Job]:
    """Batch-1 tokenisation, forward, and both together, over the sampled texts."""
    rows, _ = model.tokenize(texts)
    batches = [model.collate([row]) for row in rows]
    extra = {"n_texts": len(texts), "mean_tokens": float(np.mean([len(r) for r in rows]))}
    group = f"{prefix}single_stream"
    params: dict[str, dict[str, Any]] = {
        part: {"part": part, "batch_size": 1} for part in ("forward", "tokenize", "end_to_end")
    }

    def forward() -> Entry:
        return bench.time(
            cycling(model.logits, batches), group=group, params=params["forward"], extra=extra
        )

    def tokenize() -> Entry:
        def one(text: str) -> Encoded:
            ids, truncated = model.tokenize([text])
            return model.collate(ids, truncated)

        return bench.time(
            cycling(one, texts), group=group, params=params["tokenize"], tokenize=True, extra=extra
        )

    def end_to_end() -> Entry:
        def one(text: str) -> Any:
            ids, truncated = model.tokenize([text])
            return model.logits(model.collate(ids, truncated))

        return bench.time(
            cycling(one, texts), group=group, params=params["end_to_end"], extra=extra
        )

    return [
        Job(f"{group}/{part}", group, params[part], run)
        for part, run in (("forward", forward), ("tokenize", tokenize), ("end_to_end", end_to_end))
    ]


# ------------------------------------------------------------------ offline


def bucket_texts(tokenizer: Any, texts: Sequence[str], length: int, count: int) -> list[str]:
    """``count`` real texts of about ``length`` tokens (special tokens included), deterministic."""
    content = max(1, length - int(tokenizer.num_special_tokens_to_add(pair=False)))
    counts = [len(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]
    if not any(counts):
        raise ValueError("the evaluation texts tokenise to nothing")
    out: list[str] = []
    pointer = 0
    for _ in range(count):
        pieces: list[str] = []
        total = 0
        while total < content:
            pieces.append(texts[pointer % len(texts)])
            total += counts[pointer % len(texts)]
            pointer += 1
        joined = " ".join(pieces)
        out.append(_cut(tokenizer, joined, content))
    return out


def _cut(tokenizer: Any, text: str, n_tokens: int) -> str:
    """Cut ``text`` after its ``n_tokens``-th token (fast tokenizers report character offsets)."""
    if not getattr(tokenizer, "is_fast", False):
        return text  # the model input is still truncated to the bucket's length
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    offsets = enc["offset_mapping"]
    if len(offsets) <= n_tokens:
        return text
    return text[: int(offsets[n_tokens - 1][1])]


def offline_jobs(
    model: TimedModel,
    texts: Sequence[str],
    bench: Bench,
    *,
    batch_sizes: Sequence[int],
    lengths: Sequence[int],
    prefix: str = "",
) -> list[Job]:
    """Forward and tokenisation throughput over the batch-size × length grid."""
    group = f"{prefix}offline"
    jobs: list[Job] = []
    for length in lengths:
        for batch in batch_sizes:
            params = {"batch_size": batch, "seq_len": length}
            jobs.append(
                Job(
                    f"{group}/bs{batch}/len{length}/forward",
                    group,
                    {**params, "part": "forward"},
                    _offline_forward(model, texts, bench, group, batch, length),
                )
            )
            jobs.append(
                Job(
                    f"{group}/bs{batch}/len{length}/tokenize",
                    group,
                    {**params, "part": "tokenize"},
                    _offline_tokenize(model, texts, bench, group, batch, length),
                )
            )
    return jobs


def offline_batch(
    model: TimedModel, texts: Sequence[str], batch: int, length: int
) -> tuple[list[str], Encoded]:
    """The bucket's texts and their model input, exactly ``length`` tokens per row."""
    chosen = bucket_texts(model.tokenizer, texts, length, batch)
    rows = model.tokenizer(chosen, truncation=True, max_length=length)["input_ids"]
    return chosen, model.collate(rows)


def _offline_forward(
    model: TimedModel, texts: Sequence[str], bench: Bench, group: str, batch: int, length: int
) -> Callable[[], Entry]:
    def run() -> Entry:
        _, encoded = offline_batch(model, texts, batch, length)
        extra = {
            "tokens": int(sum(encoded.lengths)),
            "padded_tokens": int(encoded.input_ids.numel()),
        }
        params = {"batch_size": batch, "seq_len": length, "part": "forward"}
        return bench.time(lambda: model.logits(encoded), group=group, params=params, extra=extra)

    return run


def _offline_tokenize(
    model: TimedModel, texts: Sequence[str], bench: Bench, group: str, batch: int, length: int
) -> Callable[[], Entry]:
    def run() -> Entry:
        chosen, _ = offline_batch(model, texts, batch, length)

        def tokenize() -> Encoded:
            ids, truncated = model.tokenize(chosen)
            return model.collate(ids, truncated)

        params = {"batch_size": batch, "seq_len": length, "part": "tokenize"}
        return bench.time(tokenize, group=group, params=params, tokenize=True)

    return run


# ------------------------------------------------------------------ server


def poisson_arrivals(rate_qps: float, n: int, seed: int) -> list[float]:
    """Arrival offsets (seconds from the start) of a Poisson process with the given rate."""
    gaps = np.random.default_rng(seed).exponential(1.0 / rate_qps, size=n)
    return [float(x) for x in np.cumsum(gaps)]


def run_server(
    query: Callable[[str], Any],
    texts: Sequence[str],
    *,
    rate_qps: float,
    n_queries: int,
    seed: int,
    sync: SyncFn | None,
    warmup: int,
) -> tuple[list[float], list[float], float]:
    """Serve Poisson arrivals with one worker; return (latencies, queueing delays, makespan) in s.

    The clock is real: the worker sleeps until a query arrives when it is idle, and a query that
    arrives while the worker is busy waits, so its latency includes the queueing.
    """
    default_timer = pytest_benchmark("timers").default_timer

    for i in range(warmup):
        query(texts[i % len(texts)])
    if sync is not None:
        sync()
    arrivals = poisson_arrivals(rate_qps, n_queries, seed)
    latencies: list[float] = []
    waits: list[float] = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = default_timer()
        for i, offset in enumerate(arrivals):
            arrival = start + offset
            now = default_timer()
            if now < arrival:
                time.sleep(arrival - now)
            began = max(default_timer(), arrival)
            query(texts[i % len(texts)])
            if sync is not None:
                sync()
            done = default_timer()
            latencies.append(done - arrival)
            waits.append(began - arrival)
        makespan = default_timer() - start
    finally:
        if gc_was_enabled:
            gc.enable()
    return latencies, waits, makespan


def server_job(
    model: TimedModel,
    texts: Sequence[str],
    bench: Bench,
    *,
    rate_qps: float,
    n_queries: int,
    seed: int,
) -> Job:
    params = {"rate_qps": round(rate_qps, 3), "queries": n_queries}

    def query(text: str) -> Any:
        ids, truncated = model.tokenize([text])
        return model.logits(model.collate(ids, truncated))

    def run() -> Entry:
        latencies, waits, makespan = run_server(
            query,
            texts,
            rate_qps=rate_qps,
            n_queries=n_queries,
            seed=seed,
            sync=bench.sync,
            warmup=bench.plan.warmup_iterations,
        )
        extra = {
            **bench.info,
            "achieved_qps": n_queries / makespan if makespan > 0 else None,
            "mean_queueing_ms": float(np.mean(waits)) * 1000.0,
            "seed": seed,
        }
        options = {"disable_gc": True, "timer": "perf_counter", "arrivals": "poisson", "workers": 1}
        return entry_from_seconds(
            group="server", params=params, seconds=latencies, options=options, extra_info=extra
        )

    return Job("server/end_to_end", "server", params, run)
