"""Latency and efficiency suite: single-stream percentiles, offline throughput, cost, variants.

Every timing goes through pytest-benchmark's fixture (``harness.latency.timing``) with torch's
thread count pinned, the garbage collector off and, on GPU, a device barrier after each call.
Tokenisation is timed apart from the model forward. Rows of ``examples/latency.jsonl`` hold one
measurement each (raw round times included) and are the source of every metric; the same
measurements are written as ``latency.benchmark.json`` in the run folder for
``pytest-benchmark compare``. Scenarios and methods are described in ``harness/latency/``.
The record's ``details.per_example`` tells the gate which rows' rounds each single-stream
percentile is a quantile of (a two-sample test on the rounds).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from harness import registry
from harness.data import Dataset
from harness.errors import SuiteError
from harness.models.base import ModelAdapter
from harness.records import ChartSpec, Metric, SuiteCapabilities
from harness.suites.base import Suite, SuiteContext, SuiteOutcome, SuiteParams

OFFLINE_POOL = 512  # evaluation texts the length buckets are filled from
MSG_NOT_TIMED_MODEL = (
    "suite 'latency': model adapter {kind} has no tokenize/collate/logits; the suite times "
    "tokenisation apart from the forward and needs them (HFClassifier has them)"
)
MSG_NO_BUCKET = (
    "latency.seq_lengths: no bucket fits the model's max_length {max_length} (got {got})"
)
MSG_SKIPPED_BUCKETS = (
    "latency.seq_lengths: buckets {skipped} exceed the model's max_length {max_length}; skipped"
)


def _f(default: Any, description: str, **kw: Any) -> Any:
    return Field(default=default, description=description, **kw)


class LatencyParams(SuiteParams):
    threads: int | None = _f(None, "torch intra-op threads while measuring (null: current).", ge=1)
    # Rounds cycle through the texts: keep n_texts well below the number of rounds so both
    # halves of the rounds (the stability check) see the same mix of lengths.
    n_texts: int = _f(8, "Evaluation texts cycled through at single-stream.", ge=1)
    batch_sizes: list[int] = Field(
        default_factory=lambda: [1, 8, 32], min_length=1, description="Offline grid: batch sizes."
    )
    seq_lengths: list[int] = Field(
        default_factory=lambda: [16, 64, 128], min_length=1,
        description="Offline grid: tokens per example; buckets above max_length are skipped.",
    )
    # 6 is the fewest rounds for which the median has a two-sided distribution-free 95% CI.
    min_rounds: int = _f(6, "Fewest timed rounds per measurement (pytest-benchmark).", ge=2)
    max_time_s: float = _f(1.0, "Target seconds of rounds per offline/matmul measurement.", gt=0)
    single_stream_max_time_s: float = _f(2.0, "Target seconds per single-stream measurement.", gt=0)
    tokenize_max_time_s: float = _f(0.25, "Target seconds per tokenisation measurement.", gt=0)
    min_time_s: float = _f(5e-6, "Shortest round; calibration repeats calls to reach it.", gt=0)
    calibration_precision: int = _f(10, "A round lasts at least this many clock ticks.", ge=1)
    warmup_iterations: int = _f(3, "Untimed calls before calibration and before rounds.", ge=0)
    disable_gc: bool = _f(True, "Garbage collector off during timed rounds.")
    stability_threshold: float = _f(0.10, "Largest relative p50 gap between round halves.", gt=0)
    matmul_size: int | None = _f(None, "n×n matmul for the peak (null: 1024 CPU, 8192 GPU).", ge=64)
    server: bool = _f(False, "Run the server scenario (Poisson arrivals, batch 1).")
    server_rate_qps: float | None = _f(None, "Arrival rate (null: half of capacity).", gt=0)
    server_queries: int = _f(200, "Queries in the server scenario.", ge=10)
    int8: bool = _f(False, "Also measure a dynamic int8 copy (CPU) and its accuracy change.")
    precisions: list[Literal["bf16", "int8"]] = _f(
        [], "Reduced precisions measured side by side with the model as configured (fp32 by "
        "default), each with its speed-ups, accuracy change and argmax agreement; int8: true adds int8.")
    int8_eval_examples: int | None = _f(500, "Examples for each variant's accuracy change.", ge=1)
    n_bootstrap: int = _f(1000, "Bootstrap resamples for the variants' accuracy-change CI.", ge=100)

    @field_validator("batch_sizes", "seq_lengths")
    @classmethod
    def _positive(cls, values: list[int]) -> list[int]:
        if any(v < 1 for v in values):
            raise ValueError(f"every value must be a positive int (got {values})")
        return sorted(set(values))


@registry.suites.register
class LatencySuite(Suite[LatencyParams]):
    name = "latency"
    version = "1.0"
    Params = LatencyParams
    # Every figure measures the machine, not the model.
    capabilities = SuiteCapabilities(
        measures_machine=True,
        timing_dependent=True,
        headline="p50_ms",
        outcome_kinds=["samples"],
        charts=[ChartSpec(kind="latency")],
    )
    smoke_params: ClassVar[dict[str, Any]] = {
        "batch_sizes": [1, 4], "seq_lengths": [8, 16], "n_texts": 8, "max_time_s": 0.03,
        "single_stream_max_time_s": 0.1, "tokenize_max_time_s": 0.02, "matmul_size": 128,
    }
    description = (
        "Single-stream p50/p90/p99 with CIs, offline throughput grid, cost and matmul peak, "
        "optional server and int8 variant; pytest-benchmark JSON"
    )

    def run(self, model: ModelAdapter, data: Dataset, ctx: SuiteContext) -> SuiteOutcome:
        import torch

        from harness.latency import figures, scenarios
        from harness.latency.export import write_benchmark_json

        p = self.params
        if not isinstance(model, scenarios.TimedModel):
            raise SuiteError(MSG_NOT_TIMED_MODEL.format(kind=type(model).__name__))
        lengths = [n for n in p.seq_lengths if n <= model.max_length]
        skipped = [n for n in p.seq_lengths if n > model.max_length]
        if not lengths:
            raise SuiteError(MSG_NO_BUCKET.format(max_length=model.max_length, got=p.seq_lengths))
        warnings: list[str] = []
        if skipped:
            warnings.append(
                MSG_SKIPPED_BUCKETS.format(skipped=skipped, max_length=model.max_length)
            )
        setup = _setup(p, model, data, ctx.seed, lengths)
        session, memory, peak_memory = _measure(p, model, ctx, setup)
        variants_found = _variants(p, model, data, ctx, setup, session, warnings)
        json_path = write_benchmark_json(
            ctx.run_dir, session.entries(),
            extra_machine={**setup.info, "interop_threads": torch.get_num_interop_threads()},
        )
        metrics, details = figures.suite_figures(model, session.rows, peak_memory,
                                                 p.stability_threshold)
        for kind, found in variants_found.items():
            metrics += figures.variant_metrics(kind, found)
            details[kind] = found
        details.update({
            "threads": {"requested": p.threads, "pinned": setup.threads,
                        "observed_while_measuring": sorted(session.observed_threads)},
            "device": setup.device,
            "memory_method": memory.method,
            "benchmark_json": json_path.name,
            "skipped_seq_lengths": skipped,
            "matmul": {"n": setup.matmul_size, "dtype": setup.matmul_dtype},
            "per_example": per_example_declarations(metrics),
        })
        warnings += _measurement_warnings(p, metrics, details, session)
        departures = ["FLOPs are an analytic estimate (2·N·T + attention), not counted; "
                      "see harness/latency/cost.py"]
        if multi := sorted(i for i, r in session.rows.items() if r.get("iterations", 1) > 1):
            departures.append(f"percentiles of {', '.join(multi)} are over rounds of several "
                              "calls each (calibrated to the clock), not over single calls")
        return SuiteOutcome(metrics=metrics, warnings=warnings, departures=departures,
                            details=details, example_order=list(session.rows))


# The single-stream rows whose recorded rounds (seconds, ``benchmark.stats.data``) the pNN_ms
# metrics are quantiles of: metric prefix -> row id.
SINGLE_STREAM_ROWS = {
    "single_stream": "single_stream/forward",
    "single_stream.tokenize": "single_stream/tokenize",
    "single_stream.end_to_end": "single_stream/end_to_end",
}
PERCENTILE = re.compile(r"p(\d+)_ms")


def per_example_declarations(metrics: list[Metric]) -> dict[str, dict[str, Any]]:
    """For the gate (``details.per_example``, read by ``harness.gate.inputs``): each single-stream
    percentile is that quantile of the row's timed rounds, in milliseconds (two-sample test)."""
    out: dict[str, dict[str, Any]] = {}
    for metric in metrics:
        head, _, tail = metric.name.rpartition(".")
        match = PERCENTILE.fullmatch(tail)
        if head in SINGLE_STREAM_ROWS and match:
            out[metric.name] = {
                "field": "benchmark.stats.data",
                "where": {"id": SINGLE_STREAM_ROWS[head]},
                "aggregate": f"quantile:{int(match.group(1)) / 100}",
                "scale": 1000.0,
            }
    return out


@dataclass(frozen=True)
class _Setup:
    """How this run measures: threads, benches (plans, device barrier), texts and the matmul."""

    threads: int
    device: str
    info: dict[str, Any]
    single_stream: Any  # scenarios.Bench with the single-stream time budget
    bench: Any  # scenarios.Bench for offline, server and matmul measurements
    texts: list[str]
    pool: list[str]
    lengths: list[int]
    matmul_size: int
    matmul_dtype: Any


def _setup(p: LatencyParams, model: Any, data: Dataset, seed: int, lengths: list[int]) -> _Setup:
    import torch

    from harness.latency import cost, scenarios, timing

    threads = p.threads or torch.get_num_threads()
    device = model.device
    info = {"threads": threads, "device": device, "dtype": model.info().dtype,
            "torch": torch.__version__}
    plan = timing.TimingPlan(
        min_rounds=p.min_rounds, min_time=p.min_time_s, max_time=p.max_time_s,
        warmup_iterations=p.warmup_iterations, calibration_precision=p.calibration_precision,
        disable_gc=p.disable_gc,
    )
    sync = timing.device_sync(device)
    tok_plan = plan.scaled(p.tokenize_max_time_s / p.max_time_s)
    ss_bench = scenarios.Bench(plan.scaled(p.single_stream_max_time_s / p.max_time_s),
                               tok_plan, sync, info)
    bench = scenarios.Bench(plan, tok_plan, sync, info)
    texts = list(data.sample(p.n_texts, seed).texts)
    pool = list(data.sample(OFFLINE_POOL, seed).texts)
    size = p.matmul_size or (8192 if device.startswith("cuda") else 1024)
    return _Setup(threads, device, info, ss_bench, bench, texts, pool, lengths, size,
                  cost.matmul_dtype(model))


def _measure(p: LatencyParams, model: Any, ctx: SuiteContext, st: _Setup) -> tuple[Any, Any, int | None]:
    """Single stream, the offline grid and the matmul peak (and the server scenario when asked);
    returns the session, the memory probe and the peak memory before any int8 copy."""
    from harness.latency import cost, scenarios
    from harness.latency.session import Session

    jobs = [
        *scenarios.single_stream_jobs(model, st.texts, st.single_stream),
        *scenarios.offline_jobs(model, st.pool, st.bench, batch_sizes=p.batch_sizes,
                                lengths=st.lengths),
        cost.matmul_job(st.device, st.matmul_dtype, st.matmul_size, st.bench),
    ]
    session = Session(ctx.examples, info=st.info, progress=ctx.progress,
                      total=len(jobs) + int(p.server) + 3 * len(set(p.precisions) | ({"int8"} if p.int8 else set())))
    memory = cost.PeakMemory(st.device).start()
    session.execute(jobs, st.threads)
    if p.server:
        e2e = session.seconds("single_stream/end_to_end")
        rate = p.server_rate_qps or 0.5 * len(e2e) / sum(e2e)  # half the batch-1 capacity
        job = scenarios.server_job(model, st.texts, st.bench, rate_qps=rate,
                                   n_queries=p.server_queries, seed=ctx.seed)
        session.execute([job], st.threads)
    return session, memory, memory.peak_bytes()  # before the int8 copy adds its own weights


def _variants(
    p: LatencyParams, model: Any, data: Dataset, ctx: SuiteContext, st: _Setup, session: Any,
    warnings: list[str],
) -> dict[str, dict[str, Any]]:
    """Each requested variant's figures where possible (a warning says when one is not)."""
    from harness.latency import variants

    kinds = list(dict.fromkeys(list(p.precisions) + (["int8"] if p.int8 else [])))
    out: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        found = variants.measure_variant(
            kind, model, data, session, texts=st.texts, pool=st.pool,
            config=(max(p.batch_sizes), max(st.lengths)), benches=(st.single_stream, st.bench),
            threads=st.threads, eval_examples=p.int8_eval_examples,
            predictions=ctx.predictions(), seed=ctx.seed, n_boot=p.n_bootstrap,
        )  # fmt: skip
        if found is None:
            need = "on CPU" if kind == "int8" else "in fp32"
            warnings.append(f"latency.{kind}: needs an HFClassifier {need} (device {st.device}); skipped")
        else:
            out[kind] = found
    return out


def _measurement_warnings(
    p: LatencyParams, metrics: list[Metric], details: dict[str, Any], session: Any
) -> list[str]:
    """Unstable rounds, a disturbed matmul peak, and measurements resumed from an earlier session."""
    from harness.latency import figures

    warnings: list[str] = []
    stab = details["stability"]
    if not stab["stable"]:
        warnings.append(
            f"latency: unstable measurements (p50 of the round halves differ by more than "
            f"{p.stability_threshold:.0%}): {', '.join(stab['unstable']) or 'single_stream'}"
        )
    if disturbed := figures.disturbed_peak_warning(metrics):
        warnings.append(disturbed)
    if session.resumed:
        warnings.append(f"latency: {session.resumed} measurements come from an earlier, "
                        "interrupted session of this run")
    return warnings
