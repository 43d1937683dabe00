"""Seeded simulations of the gate's tests: type-I error under H0 and interval coverage.

Each function draws ``reps`` data sets at sample size ``n`` from a process where the null
hypothesis holds (or, for equivalence, where the truth sits exactly on the margin), runs the
gate's own code path (``harness.gate.evidence`` / ``gate_replicates``) and returns the share of
rejections (or of intervals covering the truth). ``tests/test_gate_simulation.py`` runs them
fast; ``benchmarks/bench_gate_statistics.py`` runs them long and prints the table, beside the
procedures they replaced (the named peers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from harness import stats
from harness.gate.evidence import binary_result, continuous_result, two_sample_result
from harness.gate.inputs import PredictionTable
from harness.gate.randomization import randomization_result
from harness.gate.replicates import SideSummary, example_variance, replicate_t
from harness.gate.result import EvidenceSettings
from harness.gate.scorers import prediction_metric
from harness.stats import paired

ALPHA = 0.05
SIZES = (5, 10, 30, 300)
BASE = EvidenceSettings(alpha=ALPHA, alpha_power=ALPHA, power=0.8, n_perm=199, n_boot=200, seed=0)
Simulation = Callable[[int, int, int], float]


def _settings(rep: int, **extra: object) -> EvidenceSettings:
    return replace(BASE, seed=rep, **extra)  # type: ignore[arg-type]


def binary_type1(n: int, reps: int, seed: int = 0) -> float:
    """Exact McNemar on paired 0/1 outcomes (accuracy, attack success), discordance 0.10."""
    rng = np.random.default_rng(seed)
    cells = rng.multinomial(n, [0.05, 0.05, 0.90], size=reps)
    cache: dict[tuple[int, int], float] = {}
    rejected = 0
    for up, down, _ in cells:
        key = (int(up), int(down))
        if key not in cache:
            cache[key] = stats.mcnemar_exact(*key)
        rejected += cache[key] < ALPHA
    return rejected / reps


def binary_gate_type1(n: int, reps: int, seed: int = 0) -> float:
    """The same through ``binary_result`` on per-example vectors (what the gate calls)."""
    rng = np.random.default_rng(seed)
    hits = 0
    for rep in range(reps):
        a = rng.random(n) < 0.85
        b = np.where(rng.random(n) < 0.1, ~a, a)  # 10% of outcomes re-drawn: exchangeable
        swap = rng.random(n) < 0.5
        a, b = np.where(swap, b, a), np.where(swap, a, b)
        hits += (binary_result(a, b, _settings(rep)).p_value or 1.0) < ALPHA
    return hits / reps


def continuous_type1(n: int, reps: int, seed: int = 0) -> float:
    """Sign-flip test on skewed, zero-inflated per-example values (like |Δp|)."""
    rng = np.random.default_rng(seed)
    hits = 0
    for rep in range(reps):
        scale = rng.exponential(0.1, n) * (rng.random(n) < 0.7)
        a, b = scale * rng.exponential(1, n), scale * rng.exponential(1, n)
        hits += (continuous_result(a, b, _settings(rep)).p_value or 1.0) < ALPHA
    return hits / reps


def _predictions(rng: np.random.Generator, y: np.ndarray, k: int, right: float) -> np.ndarray:
    wrong = (y + rng.integers(1, k, y.size)) % k
    return np.where(rng.random(y.size) < right, y, wrong)


def _table(y: np.ndarray, p: np.ndarray) -> PredictionTable:
    return PredictionTable(tuple(map(str, range(y.size))), y, p, np.zeros((y.size, 0)))


def randomization_type1(n: int, reps: int, seed: int = 0) -> float:
    """Paired randomization on macro-F1, 3 classes, both systems 80% right."""
    rng = np.random.default_rng(seed)
    metric = prediction_metric("f1_macro", ["a", "b", "c"], 15)
    assert metric is not None
    hits = 0
    for rep in range(reps):
        y = rng.integers(0, 3, n)
        pa, pb = _predictions(rng, y, 3, 0.8), _predictions(rng, y, 3, 0.8)
        result = randomization_result(metric, _table(y, pa), _table(y, pb), 3, _settings(rep))
        hits += (result.p_value or 1.0) < ALPHA
    return hits / reps


def latency_type1(n: int, reps: int, seed: int = 0) -> float:
    """Two-sample permutation on p99 latency, ``n`` calls per run, same distribution."""
    rng = np.random.default_rng(seed)
    hits = 0
    for rep in range(reps):
        a = 10 + rng.gamma(2.0, 1.0, n)
        b = 10 + rng.gamma(2.0, 1.0, n)
        hits += (two_sample_result(a, b, 0.99, _settings(rep)).p_value or 1.0) < ALPHA
    return hits / reps


def old_latency_bootstrap_type1(n: int, reps: int, seed: int = 0) -> float:
    """The peer: the two-sample percentile-bootstrap p-value the gate used before issue 14."""
    rng = np.random.default_rng(seed)
    hits = 0
    for rep in range(reps):
        a = 10 + rng.gamma(2.0, 1.0, n)
        b = 10 + rng.gamma(2.0, 1.0, n)
        p, _ = stats.two_sample_bootstrap_pvalue(
            a, b, lambda x: float(np.quantile(x, 0.99)), n_boot=500, seed=rep
        )
        hits += p < ALPHA
    return hits / reps


def old_binary_bootstrap_type1(n: int, reps: int, seed: int = 0) -> float:
    """The peer: the paired-bootstrap p-value the gate used for 0/1 outcomes before issue 14."""
    rng = np.random.default_rng(seed)
    hits = 0
    for rep in range(reps):
        a = rng.random(n) < 0.5
        b = rng.random(n) < 0.5
        d = b.astype(float) - a.astype(float)
        p, _ = stats.paired_bootstrap_pvalue(
            lambda i, d=d: float(d[i].mean()), n, n_boot=500, seed=rep
        )
        hits += p < ALPHA
    return hits / reps


# ------------------------------------------------------------------ equivalence at the margin


def tost_binary_type1(n: int, reps: int, seed: int = 0, margin: float = 0.05) -> float:
    """`within` on accuracy when the true paired difference is exactly the margin."""
    rng = np.random.default_rng(seed)
    psi = 0.10
    cells = rng.multinomial(n, [(psi + margin) / 2, (psi - margin) / 2, 1 - psi], size=reps)
    hits = 0
    for up, down, _ in cells:
        ci = paired.tango_interval(int(up), int(down), n, confidence=1 - 2 * ALPHA)
        hits += ci.low is not None and -margin < ci.low and ci.high < margin  # type: ignore[operator]
    return hits / reps


def tost_continuous_type1(n: int, reps: int, seed: int = 0, margin: float = 0.3) -> float:
    """`within` on a per-example mean when the true mean difference is exactly the margin."""
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(reps):
        d = rng.normal(margin, 1.0, n)
        ci = paired.t_interval(d, confidence=1 - 2 * ALPHA)
        hits += ci.low is not None and -margin < ci.low and ci.high < margin  # type: ignore[operator]
    return hits / reps


# ------------------------------------------------------------------ replicates


def replicate_type1(n: int, reps: int, seed: int = 0, seeds: int = 3, seed_sd: float = 0.01) -> float:
    """Replicate t with 3 seeds per side: seeds move accuracy by N(0, seed_sd); the two methods
    find different examples hard (±u per example, u ~ N(0, 0.05)) but are equal on average."""
    rng = np.random.default_rng(seed)
    hits = 0
    for rep in range(reps):
        difficulty, u = rng.beta(8, 2, n), rng.normal(0, 0.05, n)
        runs = []
        for s in range(2 * seeds):
            side = difficulty + (u if s < seeds else -u)
            p = np.clip(side + rng.normal(0, seed_sd), 0, 1)
            runs.append((rng.random(n) < p).astype(float))
        ma, mb = np.asarray(runs[:seeds]), np.asarray(runs[seeds:])
        part = (example_variance(ma, mb), n) if n > 1 else None
        a, b = SideSummary(tuple(ma.mean(axis=1))), SideSummary(tuple(mb.mean(axis=1)))
        hits += (replicate_t(a, b, part, _settings(rep)).p_value or 1.0) < ALPHA
    return hits / reps


def hierarchical_bootstrap_type1(n: int, reps: int, seed: int = 0, seeds: int = 3, seed_sd: float = 0.01) -> float:
    """The peer for replicates: resample seeds, then examples, percentile-bootstrap p-value."""
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(reps):
        difficulty = rng.beta(8, 2, n)
        runs = np.asarray([
            (rng.random(n) < np.clip(difficulty + rng.normal(0, seed_sd), 0, 1)).astype(float)
            for _ in range(2 * seeds)
        ])
        draws = np.empty(300)
        for k in range(300):
            ex = rng.integers(0, n, n)
            sa, sb = rng.integers(0, seeds, seeds), rng.integers(seeds, 2 * seeds, seeds)
            draws[k] = runs[sb][:, ex].mean() - runs[sa][:, ex].mean()
        p = min(1.0, 2 * min((np.sum(draws <= 0) + 1) / 301, (np.sum(draws >= 0) + 1) / 301))
        hits += p < ALPHA
    return hits / reps


# ------------------------------------------------------------------ coverage of the gate's intervals


def tango_coverage(n: int, reps: int, seed: int = 0) -> float:
    """95% Tango interval of a paired difference (true 0.03, discordance 0.10)."""
    rng = np.random.default_rng(seed)
    truth = 0.03
    cells = rng.multinomial(n, [0.065, 0.035, 0.90], size=reps)
    hits = 0
    for up, down, _ in cells:
        ci = paired.tango_interval(int(up), int(down), n)
        hits += ci.low <= truth <= ci.high  # type: ignore[operator]
    return hits / reps


TYPE1: dict[str, Simulation] = {
    "exact McNemar (0/1 outcomes)": binary_type1,
    "exact McNemar via binary_result": binary_gate_type1,
    "sign-flip permutation (continuous)": continuous_type1,
    "paired randomization (macro-F1)": randomization_type1,
    "two-sample permutation (latency p99)": latency_type1,
    "TOST, Tango interval (accuracy, at the margin)": tost_binary_type1,
    "TOST, t interval (continuous, at the margin)": tost_continuous_type1,
    "replicate t, 3 seeds per side": replicate_type1,
}
PEERS: dict[str, Simulation] = {
    "paired bootstrap p (0/1 outcomes), before issue 14": old_binary_bootstrap_type1,
    "two-sample bootstrap p (latency p99), before issue 14": old_latency_bootstrap_type1,
    "hierarchical bootstrap, 3 seeds per side": hierarchical_bootstrap_type1,
}
COVERAGE: dict[str, Simulation] = {"Tango 95% interval (paired difference)": tango_coverage}
