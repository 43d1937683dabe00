"""Timing on pytest-benchmark's machinery, plus what a model benchmark adds.

``measure`` hands the callable to pytest-benchmark's ``BenchmarkFixture``: its timer
(``pytest_benchmark.timers.default_timer``), its clock-precision estimate, its calibration of
iterations per round so that a round lasts at least ``calibration_precision`` ticks of the clock
(and ``min_time``), its rounds count from ``max_time`` and ``min_rounds``, and its
garbage-collector switch. The fixture's ``Metadata.as_dict`` is the measurement: the same
entry a pytest-benchmark JSON file holds, raw round times included, so results of the
harness load in ``pytest-benchmark compare``.

What is added here: an explicit warm-up before calibration (so a cold first call, e.g. oneDNN
building its kernels, cannot decide the iteration count; it replaces the fixture's warm-up),
device synchronisation inside the timed callable (CUDA kernels are asynchronous: without it the
clock measures the launch only), torch threads pinned for the measurement, percentiles with
order-statistic intervals, and a stability check over the two halves of the rounds.
"""

from __future__ import annotations

import contextlib
import importlib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.stats import order_statistic_ci, t_mean_ci

SyncFn = Callable[[], None]
QUANTILES = (0.5, 0.9, 0.99)


@dataclass(frozen=True)
class TimingPlan:
    """How one measurement runs; the names and defaults follow pytest-benchmark's options."""

    min_rounds: int = 6  # the fewest with a two-sided distribution-free 95% CI for the median
    min_time: float = 5e-6  # seconds; shortest acceptable round (pytest-benchmark's default)
    max_time: float = 1.0  # seconds; target total time of the rounds
    warmup_iterations: int = 3
    calibration_precision: int = 10  # a round lasts at least this many clock ticks
    disable_gc: bool = True

    def scaled(self, factor: float) -> TimingPlan:
        """The same plan with ``max_time`` scaled (e.g. shorter for tokenisation)."""
        return TimingPlan(
            min_rounds=self.min_rounds,
            min_time=self.min_time,
            max_time=self.max_time * factor,
            warmup_iterations=self.warmup_iterations,
            calibration_precision=self.calibration_precision,
            disable_gc=self.disable_gc,
        )


@dataclass(frozen=True)
class _CallSpec:
    id: str
    params: dict[str, Any]


@dataclass(frozen=True)
class _Node:
    """The attributes of a pytest item that ``BenchmarkFixture`` reads."""

    name: str
    nodeid: str
    callspec: _CallSpec


def pytest_benchmark(module: str) -> Any:
    """A pytest-benchmark module; it ships without annotations, so it is used as ``Any``."""
    return importlib.import_module(f"pytest_benchmark.{module}")


def _ignore_warning(*_: object) -> None:
    """The fixture warns only when it was never used; ``measure`` always uses it."""


def param_id(params: Mapping[str, Any]) -> str:
    return "-".join(f"{key}={value}" for key, value in params.items()) or "default"


def synchronised(fn: Callable[[], Any], sync: SyncFn) -> Callable[[], Any]:
    """``fn`` followed by a device barrier, so the clock stops when the kernels have finished.

    The barrier runs after every call; the previous call's barrier (or the warm-up's) leaves the
    device idle when the next timed region starts, so no barrier is needed before it.
    """

    def call() -> Any:
        result = fn()
        sync()
        return result

    return call


def measure(
    fn: Callable[[], Any],
    *,
    group: str,
    params: Mapping[str, Any],
    plan: TimingPlan,
    sync: SyncFn | None = None,
    extra_info: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Time ``fn`` with pytest-benchmark's fixture; return its JSON entry (raw round times in
    ``stats.data``, seconds per call)."""
    fixture_mod, logger_mod = pytest_benchmark("fixture"), pytest_benchmark("logger")
    Logger = logger_mod.Logger
    target = fn if sync is None else synchronised(fn, sync)
    pid = param_id(params)
    node = _Node(
        name=f"{group}[{pid}]",
        nodeid=f"harness.latency::{group}[{pid}]",
        callspec=_CallSpec(pid, dict(params)),
    )
    collected: list[Any] = []
    fixture = fixture_mod.BenchmarkFixture(
        node,
        disable_gc=plan.disable_gc,
        timer=pytest_benchmark("utils").NameWrapper(pytest_benchmark("timers").default_timer),
        min_rounds=plan.min_rounds,
        min_time=plan.min_time,
        max_time=plan.max_time,
        precision=None,
        confidence=None,
        # The warm-up is done here, once, before calibration: the fixture's own warm-up would
        # repeat it inside calibration and again before the rounds (up to 3× the calls, which
        # matters when one call of a large batch takes a second).
        warmup=False,
        warmup_iterations=0,
        calibration_precision=plan.calibration_precision,
        add_stats=collected.append,
        logger=Logger(Logger.QUIET),
        warner=_ignore_warning,
        disabled=False,
        cprofile=False,
        cprofile_loops=None,
        cprofile_dump=None,
        group=group,
    )
    fixture.extra_info.update(extra_info or {})
    for _ in range(plan.warmup_iterations):  # explicit warm-up, before calibration
        target()
    fixture(target)
    entry: dict[str, Any] = collected[0].as_dict(include_data=True)
    entry["options"]["warmup"] = plan.warmup_iterations
    return entry


def entry_from_seconds(
    *,
    group: str,
    params: Mapping[str, Any],
    seconds: Sequence[float],
    options: Mapping[str, Any],
    extra_info: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A pytest-benchmark entry for times not taken by the fixture (the server scenario's
    arrival-to-completion latencies), with pytest-benchmark's own ``Stats``."""
    stats = pytest_benchmark("stats").Stats()
    for value in seconds:
        stats.update(float(value))
    pid = param_id(params)
    return {
        "group": group,
        "name": f"{group}[{pid}]",
        "fullname": f"harness.latency::{group}[{pid}]",
        "params": dict(params),
        "param": pid,
        "extra_info": dict(extra_info or {}),
        "options": dict(options),
        "stats": {**stats.as_dict(), "data": list(stats.data), "iterations": 1},
    }


def entry_seconds(entry: Mapping[str, Any]) -> list[float]:
    """Raw per-call seconds of a pytest-benchmark entry, in round order."""
    return [float(x) for x in entry["stats"]["data"]]


@contextlib.contextmanager
def pinned_threads(n: int) -> Iterator[int]:
    """Set torch's intra-op thread count for the block; restore the previous count after."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(previous)


def device_sync(device: str) -> SyncFn | None:
    """The barrier that makes timings of ``device`` honest, or None where calls are synchronous."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.synchronize
    if device == "mps":
        return torch.mps.synchronize
    return None


@dataclass(frozen=True)
class QuantileEstimate:
    q: float
    value: float
    low: float | None
    high: float | None
    method: str


def quantiles(seconds: Sequence[float], qs: Sequence[float] = QUANTILES) -> list[QuantileEstimate]:
    """Linear-interpolated sample quantiles (the median equals pytest-benchmark's) with
    distribution-free 95% intervals from order statistics; an end is None when too few rounds
    exist to bound it (e.g. the upper end of p99 under ~300 rounds)."""
    arr = np.sort(np.asarray(seconds, dtype=np.float64))
    out = []
    for q in qs:
        ci = order_statistic_ci(arr, q)
        out.append(QuantileEstimate(q, float(np.quantile(arr, q)), ci.low, ci.high, ci.method))
    return out


def stability(seconds: Sequence[float]) -> float | None:
    """|median(first half) − median(second half)| / median(all), over rounds in time order.

    A drift (thermal throttling, a neighbour's job) shows as a difference between the halves;
    the gate can refuse to judge a measurement whose halves disagree."""
    n = len(seconds)
    if n < 4:
        return None
    arr = np.asarray(seconds, dtype=np.float64)
    half = n // 2
    overall = float(np.median(arr))
    if overall <= 0:
        return None
    return abs(float(np.median(arr[:half])) - float(np.median(arr[half:]))) / overall


def summarise(seconds: Sequence[float]) -> dict[str, Any]:
    """Milliseconds summary of a measurement, JSON-ready (no NaN)."""
    arr = np.asarray(seconds, dtype=np.float64)
    ms = 1000.0
    mean_ci = t_mean_ci(arr)
    out: dict[str, Any] = {
        "rounds": int(arr.size),
        "min_ms": float(arr.min()) * ms,
        "max_ms": float(arr.max()) * ms,
        "mean_ms": float(arr.mean()) * ms,
        "mean_ci_ms": [_scaled(mean_ci.low, ms), _scaled(mean_ci.high, ms)],
        "stddev_ms": float(arr.std(ddof=1)) * ms if arr.size > 1 else 0.0,
        "stability_rel_diff": stability(seconds),
    }
    for est in quantiles(seconds):
        key = f"p{round(est.q * 100)}"
        out[f"{key}_ms"] = est.value * ms
        out[f"{key}_ci_ms"] = [_scaled(est.low, ms), _scaled(est.high, ms)]
    return out


def _scaled(value: float | None, factor: float) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return value * factor
