"""Latency suite on minilm-l6: measurement overhead against torch's Timer, and repeatability.

1. Overhead. On the same encoded rotten-tomatoes inputs, at batch 1 and batch 32, the suite's
   measurement (``harness.latency.timing.measure``: pytest-benchmark's fixture, gc off, threads
   pinned) against ``torch.utils.benchmark.Timer(...).blocked_autorange()`` at the same thread
   count. The two alternate ``REPEATS`` times; each pair's ratio of medians cancels the
   machine's slow drift, and the claim is on the median ratio: within 5%.
2. Repeatability. The whole suite twice, back to back, with the parameters suggested for
   ``suites/default.yaml``: single-stream p50 within 10% when the suite judges both runs
   stable (its halves check); a run it flags as unstable is reported as an expected failure.

Run: ``pytest benchmarks/bench_latency.py --benchmark-only -s`` (needs the minilm-l6 and
rotten-tomatoes artifacts, fetched once from PyPI). ``HARNESS_BENCH_THREADS`` sets the threads
(default 2); ``HARNESS_BENCH_RESULTS`` (see conftest) also writes the figures.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
from pathlib import Path
from typing import Any

import pytest

THREADS = int(os.environ.get("HARNESS_BENCH_THREADS", "2"))
REPEATS = 11
# Suggested ``suites/default.yaml`` parameters (latency part under a minute on 2 cores).
DEFAULT_YAML_PARAMS: dict[str, Any] = {
    "batch_sizes": [1, 8, 32],
    "seq_lengths": [16, 64],
    "n_texts": 8,
    "max_time_s": 0.3,
    "single_stream_max_time_s": 1.5,
    "tokenize_max_time_s": 0.1,
    "min_rounds": 6,
    "warmup_iterations": 2,
}
FIGURES: dict[str, Any] = {"threads": THREADS}


@pytest.fixture(scope="module")
def setup() -> dict[str, Any]:
    from harness import artifacts
    from harness.config import DatasetConfig
    from harness.data import load_bundle
    from harness.models.hf import HFClassifier

    test = load_bundle(DatasetConfig(name="rotten-tomatoes")).splits["test"]
    folder = artifacts.fetch("minilm-l6")
    model = HFClassifier.load(folder, name="minilm-l6", source="artifact",
                              label_names=["rotten", "fresh"], max_length=128)
    return {"model": model, "data": test, "texts": list(test.sample(32, 0).texts)}


def _interleaved(model: Any, encoded: Any, batch: int) -> dict[str, Any]:
    import torch
    from torch.utils.benchmark import Timer

    from harness.latency.session import measuring
    from harness.latency.timing import TimingPlan, entry_seconds, measure

    plan = TimingPlan(min_rounds=5, max_time=0.4, warmup_iterations=2)
    ours: list[float] = []
    peer: list[float] = []
    with measuring(THREADS):
        for _ in range(REPEATS):
            entry = measure(lambda: model.logits(encoded), group="overhead",
                            params={"batch_size": batch}, plan=plan)
            ours.append(statistics.median(entry_seconds(entry)))
            timer = Timer(stmt="model.logits(encoded)", num_threads=THREADS,
                          globals={"model": model, "encoded": encoded})
            peer.append(timer.blocked_autorange(min_run_time=0.4).median)
        assert torch.get_num_threads() == THREADS
    # Paired ratios: each pair ran back to back, so the machine's slow drift (other jobs on a
    # shared host) cancels out of the ratio; the claim is on their median.
    ratios = [a / b for a, b in zip(ours, peer, strict=True)]
    return {
        "ours_p50_ms": statistics.median(ours) * 1e3,
        "torch_timer_median_ms": statistics.median(peer) * 1e3,
        "rel_diff": statistics.median(ratios) - 1.0,
        "pair_ratios": ratios,
        "ours_per_repeat_ms": [x * 1e3 for x in ours],
        "timer_per_repeat_ms": [x * 1e3 for x in peer],
    }


@pytest.mark.parametrize("batch", [1, 32])
def test_overhead_against_torch_timer(benchmark: Any, setup: dict[str, Any], batch: int) -> None:
    model = setup["model"]
    encoded = model.encode(setup["texts"][:batch])
    figures = _interleaved(model, encoded, batch)
    FIGURES[f"overhead_bs{batch}"] = {**figures, "tokens": encoded.lengths}
    print(json.dumps({f"overhead_bs{batch}": figures}, indent=1))
    benchmark.group = f"latency-overhead-bs{batch}"
    benchmark.extra_info.update({k: v for k, v in figures.items() if not k.endswith("_ms")})
    # pytest-benchmark's own plain timing of the same call, for the saved comparison.
    from harness.latency.session import measuring

    with measuring(THREADS):
        benchmark.pedantic(model.logits, args=(encoded,), rounds=10, warmup_rounds=2)
    assert abs(figures["rel_diff"]) <= 0.05, figures


def test_back_to_back_runs(benchmark: Any, setup: dict[str, Any], tmp_path: Path) -> None:
    from harness.store import ExampleLog
    from harness.suites.base import SuiteContext
    from harness.suites.latency import LatencyParams, LatencySuite

    params = LatencyParams(threads=THREADS, **DEFAULT_YAML_PARAMS)
    outcomes: list[Any] = []

    def one_run() -> None:
        run_dir = tmp_path / f"run{len(outcomes)}"
        log = ExampleLog(run_dir / "examples" / "latency.jsonl").open()
        ctx = SuiteContext(seed=0, run_dir=run_dir, examples=log, logger=logging.getLogger("b"),
                           predictions=lambda: pytest.fail("not needed without int8"))
        outcomes.append(LatencySuite(params=params).run(setup["model"], setup["data"], ctx))
        log.close()

    benchmark.group = "latency-suite-wall-time"
    benchmark.pedantic(one_run, rounds=2, iterations=1, warmup_rounds=0)
    names = ["single_stream.p50_ms", "single_stream.p99_ms", "single_stream.end_to_end.p50_ms",
             "single_stream.stability_rel_diff", "offline.bs32.len64.examples_per_s",
             "offline.bs1.len16.examples_per_s", "cost.matmul_peak_gflops", "cost.peak_fraction",
             "cost.peak_memory_bytes", "cost.flops_per_example"]
    table = {n: [next(m.value for m in o.metrics if m.name == n) for o in outcomes] for n in names}
    first, second = table["single_stream.p50_ms"]
    FIGURES["back_to_back"] = {
        "metrics": table,
        "p50_rel_diff": second / first - 1.0,
        "suite_wall_s": list(benchmark.stats.stats.data),
        "stable": [o.details["stability"]["stable"] for o in outcomes],
        "warnings": [o.warnings for o in outcomes],
    }
    print(json.dumps({"back_to_back": FIGURES["back_to_back"]}, indent=1))
    benchmark.extra_info["p50_rel_diff"] = second / first - 1.0
    if not all(FIGURES["back_to_back"]["stable"]):
        # The suite's own stability check refused one of the runs: on a shared machine that is
        # the intended outcome (a gate must not judge it), not a failure of the claim.
        pytest.xfail(f"a run was flagged unstable by the suite; p50s {table['single_stream.p50_ms']}")
    assert abs(second / first - 1.0) <= 0.10, table
