"""The latency suite on the tiny fixture model: figures, CIs, threads, pytest-benchmark JSON."""

from __future__ import annotations

import gc
import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from harness.data import Dataset
from harness.errors import SuiteError
from harness.latency import cost, scenarios, timing
from harness.latency.export import BENCHMARK_FILE
from harness.models.hf import HFClassifier
from harness.predictions import Predictions
from harness.records import RunRecord, SuiteRecord
from harness.store import ExampleLog, read_jsonl
from harness.suites.base import SuiteContext, SuiteOutcome
from harness.suites.latency import LatencyParams, LatencySuite
from tests.fixtures_text import make_rows

FAST = dict(
    batch_sizes=[1, 4],
    seq_lengths=[8, 16, 64],  # 64 exceeds the fixture's max_length 32: skipped with a warning
    n_texts=16,
    max_time_s=0.04,
    single_stream_max_time_s=0.15,
    tokenize_max_time_s=0.02,
    matmul_size=128,
    server=True,
    server_queries=20,
    int8=True,
    precisions=["bf16", "int8"],  # side by side with fp32 (int8 named twice: measured once)
    int8_eval_examples=40,
    n_bootstrap=200,
)


def _dataset() -> Dataset:
    rows = make_rows(60)
    return Dataset(
        name="tiny",
        split="test",
        ids=tuple(r["id"] for r in rows),
        texts=tuple(r["text"] for r in rows),
        labels=tuple(0 if r["label"] == "neg" else 1 for r in rows),
        label_names=("neg", "pos"),
    )


def _context(run_dir: Path, preds: Predictions) -> SuiteContext:
    log = ExampleLog(run_dir / "examples" / "latency.jsonl").open()
    return SuiteContext(
        seed=0, run_dir=run_dir, examples=log, logger=logging.getLogger("test"),
        predictions=lambda: preds,
    )


class Run:
    def __init__(self, model: HFClassifier, data: Dataset, preds: Predictions, run_dir: Path,
                 params: LatencyParams, outcome: SuiteOutcome, threads_seen: list[int],
                 threads_before: int, threads_after: int) -> None:
        self.model, self.data, self.preds, self.run_dir = model, data, preds, run_dir
        self.params, self.outcome, self.threads_seen = params, outcome, threads_seen
        self.threads_before, self.threads_after = threads_before, threads_after

    def metric(self, name: str) -> Any:
        found = [m for m in self.outcome.metrics if m.name == name]
        assert found, f"missing metric {name}"
        return found[0]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path) -> HFClassifier:
    return HFClassifier.load(tiny_model_dir, name="tiny", source="path", max_length=32)


@pytest.fixture(scope="module")
def run(tiny: HFClassifier, tmp_path_factory: pytest.TempPathFactory) -> Run:
    import torch

    data = _dataset()
    preds = Predictions(data.ids, data.labels, tiny.predict_proba(list(data.texts)))
    before = torch.get_num_threads()
    wanted = 1 if before != 1 else 2
    seen: list[int] = []
    # Observe (not replace) the model: record torch's thread count at every real forward.
    hook = tiny.model.register_forward_pre_hook(lambda *_: seen.append(torch.get_num_threads()))
    run_dir = tmp_path_factory.mktemp("latency-run")
    params = LatencyParams(threads=wanted, **FAST)
    ctx = _context(run_dir, preds)
    try:
        outcome = LatencySuite(params=params).run(tiny, data, ctx)
    finally:
        hook.remove()
        ctx.examples.close()
    return Run(tiny, data, preds, run_dir, params, outcome, seen, before, torch.get_num_threads())


EXPECTED = [
    *(f"single_stream.{k}" for k in ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "stddev_ms",
                                      "stability_rel_diff")),
    "single_stream.tokenize.p50_ms", "single_stream.tokenize.p99_ms",
    "single_stream.end_to_end.p50_ms", "single_stream.end_to_end.p99_ms",
    *(f"offline.bs{b}.len{n}.{k}" for b in (1, 4) for n in (8, 16)
      for k in ("examples_per_s", "tokens_per_s", "peak_fraction")),
    *(f"cost.{k}" for k in ("parameters", "non_embedding_parameters", "size_on_disk_bytes",
                            "peak_memory_bytes", "flops_per_example", "matmul_peak_gflops",
                            "achieved_gflops", "peak_fraction")),
    "server.p50_ms", "server.p99_ms", "server.achieved_qps", "server.mean_queueing_ms",
    "int8.single_stream.p50_ms", "int8.single_stream.speedup", "int8.offline.speedup",
    "int8.accuracy", "int8.accuracy_delta", "int8.agreement",
    *(f"bf16.{k}" for k in ("single_stream.p50_ms", "single_stream.speedup", "offline.speedup",
                            "accuracy", "accuracy_delta", "agreement")),
]


def test_suite_produces_every_figure(run: Run) -> None:
    names = [m.name for m in run.outcome.metrics]
    assert len(names) == len(set(names))
    for name in EXPECTED:
        value = run.metric(name).value
        assert value is not None and np.isfinite(value), name
    assert not any(n.startswith("offline.") and ".len64." in n for n in names)
    assert any("[64]" in w and "max_length 32" in w for w in run.outcome.warnings)
    assert run.metric("cost.parameters").value == run.model.info().n_parameters
    disk = sum(f.size for f in run.model.info().files)
    assert run.metric("cost.size_on_disk_bytes").value == disk
    fraction = run.metric("cost.peak_fraction").value
    assert fraction is not None and fraction > 0
    if fraction >= 1:  # a peak measured while the machine was busy: the suite must say so
        assert any("matmul peak" in w for w in run.outcome.warnings), run.outcome.warnings
    # tokens/s = examples/s × tokens per example, and every bucket's rows hold exactly n tokens
    for b, n in ((1, 8), (4, 16)):
        ex = run.metric(f"offline.bs{b}.len{n}.examples_per_s")
        tok = run.metric(f"offline.bs{b}.len{n}.tokens_per_s")
        assert tok.value == pytest.approx(ex.value * n)
    stab = run.outcome.details["stability"]
    assert isinstance(stab["stable"], bool)
    assert stab["single_stream_rel_diff"] == run.metric("single_stream.stability_rel_diff").value


def test_record_round_trip_and_rows(run: Run) -> None:
    rec = SuiteRecord(name="latency", version=LatencySuite.version, params=run.params.model_dump(),
                      status="ok", metrics=run.outcome.metrics, wall_time_s=1.0,
                      details=run.outcome.details, warnings=run.outcome.warnings)
    again = SuiteRecord.model_validate_json(rec.model_dump_json())
    assert again == rec
    assert RunRecord.model_fields["suites"]  # the record type the runner will wrap it in
    rows = list(read_jsonl(run.run_dir / "examples" / "latency.jsonl"))
    assert [r["id"] for r in rows] == list(run.outcome.example_order or [])
    timed = [r for r in rows if "benchmark" in r]
    assert {"single_stream/forward", "single_stream/tokenize", "single_stream/end_to_end",
            "offline/bs4/len16/forward", "offline/bs4/len16/tokenize", "cost/matmul",
            "server/end_to_end", "int8/single_stream/forward", "bf16/single_stream/forward",
            "bf16/offline/bs4/len16/forward"} <= {r["id"] for r in timed}
    for r in timed:
        assert r["summary"]["rounds"] == len(r["benchmark"]["stats"]["data"])
        assert r["summary"]["rounds"] >= run.params.min_rounds or r["id"].startswith("server")


def test_cis_contain_their_point_estimates(run: Run) -> None:
    with_ci = [m for m in run.outcome.metrics if m.ci_low is not None or m.ci_high is not None]
    assert len(with_ci) >= 15
    for m in with_ci:
        assert m.value is not None
        if m.ci_low is not None:
            assert m.ci_low <= m.value, m.name
        if m.ci_high is not None:
            assert m.value <= m.ci_high, m.name
    for name in ("single_stream.p50_ms", "single_stream.tokenize.p50_ms",
                 "offline.bs4.len16.examples_per_s"):
        m = run.metric(name)
        assert m.ci_low is not None and m.ci_high is not None and m.ci_method.startswith("order")


def test_thread_count_is_pinned_during_measurement_and_restored(run: Run) -> None:
    wanted = run.params.threads
    assert run.threads_seen, "the forward hook never fired"
    assert set(run.threads_seen) == {wanted}
    assert run.outcome.details["threads"]["observed_while_measuring"] == [wanted]
    assert run.threads_after == run.threads_before


def test_benchmark_json_loads_in_pytest_benchmark_compare(run: Run, tmp_path: Path) -> None:
    path = run.run_dir / BENCHMARK_FILE
    doc = json.loads(path.read_text())
    assert {"machine_info", "commit_info", "benchmarks", "datetime", "version"} <= set(doc)
    names = [b["name"] for b in doc["benchmarks"]]
    assert "single_stream[part=forward-batch_size=1]" in names
    assert doc["machine_info"]["threads"] == run.params.threads
    other = tmp_path / "other.json"
    other.write_text(path.read_text())
    cli = Path(sys.executable).with_name("pytest-benchmark")
    for args in ([str(path)], [str(path), str(other), "--between", "median"]):
        out = subprocess.run([str(cli), "compare", *args], cwd=tmp_path, capture_output=True,
                             text=True, timeout=120, check=False)
        text = out.stdout + out.stderr
        assert out.returncode == 0, text
        assert "Failed to load" not in text
        for name in names:  # every harness measurement is shown by pytest-benchmark
            assert name in text, name


def test_resumed_run_reuses_rows_and_gives_the_same_metrics(run: Run) -> None:
    import torch

    seen: list[int] = []
    hook = run.model.model.register_forward_pre_hook(
        lambda *_: seen.append(torch.get_num_threads())
    )
    ctx = _context(run.run_dir, run.preds)
    try:
        again = LatencySuite(params=run.params).run(run.model, run.data, ctx)
    finally:
        hook.remove()
        ctx.examples.close()
    assert seen == []  # nothing was measured again
    skip = {"cost.peak_memory_bytes"}  # measured over the span, not stored in a row
    first = {m.name: m for m in run.outcome.metrics if m.name not in skip}
    second = {m.name: m for m in again.metrics if m.name not in skip}
    assert first == second
    assert any("earlier, interrupted session" in w for w in again.warnings)


def test_measure_synchronises_after_every_call() -> None:
    calls = {"fn": 0, "sync": 0}

    def fn() -> None:
        calls["fn"] += 1
        time.sleep(0.0005)

    def sync() -> None:
        assert calls["sync"] == calls["fn"] - 1  # the barrier follows each call
        calls["sync"] += 1

    plan = timing.TimingPlan(min_rounds=5, max_time=0.01, warmup_iterations=2)
    entry = timing.measure(fn, group="g", params={"x": 1}, plan=plan, sync=sync)
    assert calls["sync"] == calls["fn"] > entry["stats"]["rounds"] >= 5


def test_calibration_is_pytest_benchmarks() -> None:
    plan = timing.TimingPlan(min_rounds=7, max_time=0.05, warmup_iterations=1)
    fast = timing.measure(lambda: None, group="g", params={}, plan=plan)
    slow = timing.measure(lambda: time.sleep(0.002), group="g", params={}, plan=plan)
    # A no-op is far below the clock's resolution × calibration_precision: calls are looped.
    assert fast["stats"]["iterations"] > 1
    assert slow["stats"]["iterations"] == 1 and slow["stats"]["rounds"] >= 7
    assert slow["options"]["timer"] == "perf_counter"
    assert min(timing.entry_seconds(slow)) >= 0.002


def test_garbage_collector_is_off_while_timing() -> None:
    states: list[bool] = []
    plan = timing.TimingPlan(min_rounds=5, max_time=0.01, warmup_iterations=0)
    entry = timing.measure(lambda: states.append(gc.isenabled()), group="g", params={}, plan=plan)
    timed = entry["stats"]["rounds"] * entry["stats"]["iterations"]
    assert states.count(False) >= timed
    assert gc.isenabled()


def test_length_buckets_hold_real_texts_of_exact_length(tiny: HFClassifier) -> None:
    texts = list(_dataset().texts)
    chosen, encoded = scenarios.offline_batch(tiny, texts, 4, 20)
    again, _ = scenarios.offline_batch(tiny, texts, 4, 20)
    assert chosen == again
    assert encoded.lengths == [20, 20, 20, 20]
    stream = " ".join(texts * 3)
    for text in chosen:
        assert text in stream  # a stretch of consecutive evaluation texts, cut at a token end


def test_stability_compares_the_halves() -> None:
    assert timing.stability([1.0] * 10 + [2.0] * 10) == pytest.approx(1.0 / 1.5)
    assert timing.stability([1.0, 1.0, 1.0, 1.0]) == 0.0
    assert timing.stability([1.0, 2.0]) is None


def test_quantiles_match_pytest_benchmark_median() -> None:
    rng = np.random.default_rng(0)
    seconds = list(rng.exponential(0.01, size=500))
    est = timing.quantiles(seconds)
    stats = timing.entry_from_seconds(group="g", params={}, seconds=seconds, options={})["stats"]
    assert est[0].value == pytest.approx(stats["median"])
    for e in est:
        assert e.low is not None and e.low <= e.value
        assert e.high is not None and e.value <= e.high


def test_flops_estimate(tiny: HFClassifier) -> None:
    model = cost.FlopsModel(non_embedding_params=100, layers=2, hidden=4)
    assert model.per_example(10) == 2 * 100 * 10 + 4 * 2 * 10 * 10 * 4
    total, embedding = cost.parameter_counts(tiny.model)
    assert total == tiny.info().n_parameters and 0 < embedding < total
    assert cost.FlopsModel.of(tiny.model).layers == 2


def test_bad_input_is_refused(tiny: HFClassifier, tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        LatencyParams(batch_sizes=[0])
    data = _dataset()
    preds = Predictions(data.ids, data.labels, np.full((len(data), 2), 0.5))
    ctx = _context(tmp_path, preds)
    with pytest.raises(SuiteError, match="no bucket fits the model's max_length 32"):
        LatencySuite(params=LatencyParams(seq_lengths=[64])).run(tiny, data, ctx)

    class NoTokenize:
        label_names = ("neg", "pos")
        device = "cpu"

    with pytest.raises(SuiteError, match="NoTokenize has no tokenize"):
        LatencySuite(params=LatencyParams()).run(NoTokenize(), data, ctx)  # type: ignore[arg-type]
    ctx.examples.close()


def test_a_peak_below_the_model_rate_is_called_disturbed() -> None:
    from harness.latency.figures import disturbed_peak_warning
    from harness.records import Metric

    def metrics(fraction: float | None) -> list[Metric]:
        return [Metric(name="cost.peak_fraction", value=fraction, higher_is_better=True)]

    assert disturbed_peak_warning(metrics(0.07)) is None
    assert disturbed_peak_warning(metrics(None)) is None
    assert disturbed_peak_warning([]) is None
    warning = disturbed_peak_warning(metrics(13.6))
    assert warning is not None and "matmul peak" in warning and "13.60" in warning


def test_bf16_variant_agrees_with_the_original(run: Run) -> None:
    bf16 = run.outcome.details["bf16"]
    assert bf16["original_precision"] == "fp32"
    acc = bf16["accuracy"]
    at = [run.data.ids.index(i) for i in run.data.sample(run.params.int8_eval_examples, 0).ids]
    assert acc["n"] == len(at)
    right = run.preds.probabilities.argmax(axis=1)[at] == np.asarray(run.data.labels)[at]
    assert acc["base_accuracy"] == pytest.approx(float(right.mean()))
    assert 0.9 <= acc["agreement"] <= 1.0
    assert run.metric("bf16.agreement").value == acc["agreement"]
