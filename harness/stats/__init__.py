"""Confidence intervals and paired tests, in one place.

Every interval is a 95% interval unless a caller asks otherwise; every resampling routine takes
an explicit seed so results are reproducible to the bit on the same inputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
Statistic = Callable[[npt.NDArray[np.int64]], float]


@dataclass(frozen=True)
class Interval:
    low: float | None
    high: float | None
    method: str


def wilson_interval(successes: int, n: int, *, confidence: float = 0.95) -> Interval:
    """Wilson score interval for a binomial proportion (well-behaved at 0 and n)."""
    if n <= 0:
        return Interval(None, None, "wilson")
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + confidence / 2))
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # At 0 and n the exact endpoint is the point itself; floating point lands one ulp inside
    # (1 - 1e-16), which would put the estimate outside its own interval.
    low = 0.0 if successes <= 0 else min(p, max(0.0, centre - half))
    high = 1.0 if successes >= n else max(p, min(1.0, centre + half))
    return Interval(low, high, "wilson")


def bootstrap_ci(
    statistic: Statistic,
    n: int,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Interval:
    """Percentile bootstrap over example indices: ``statistic(indices)`` on resamples of 0..n-1.

    Resamples whose statistic is undefined (NaN) are dropped; if more than half are, the
    interval is undefined (None).
    """
    if n <= 1 or n_boot <= 0:
        return Interval(None, None, f"percentile bootstrap (n_boot={n_boot})")
    rng = np.random.default_rng(seed)
    values = np.empty(n_boot)
    for b in range(n_boot):
        values[b] = statistic(rng.integers(0, n, size=n))
    values = values[np.isfinite(values)]
    method = f"percentile bootstrap (n_boot={n_boot}, seed={seed})"
    if values.size < n_boot / 2:
        return Interval(None, None, method)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return Interval(float(low), float(high), method)


def bootstrap_mean_ci(
    values: Sequence[float] | Array, *, n_boot: int = 1000, seed: int = 0
) -> Interval:
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    return bootstrap_ci(lambda idx: float(arr[idx].mean()), int(arr.size), n_boot=n_boot, seed=seed)


def t_mean_ci(
    values: Sequence[float] | Array,
    *,
    confidence: float = 0.95,
    bounds: tuple[float, float] | None = None,
) -> Interval:
    """Student-t interval for a mean; ``bounds`` clips it to the values' range (an accuracy
    interval over seeds cannot leave [0, 1])."""
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    if arr.size < 2:
        return Interval(None, None, "student-t")
    from scipy.stats import t

    quantile = float(t.ppf(0.5 + confidence / 2, arr.size - 1))
    half = quantile * float(arr.std(ddof=1)) / math.sqrt(arr.size)
    mean = float(arr.mean())
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return Interval(low, high, "student-t")


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts b (A right, B wrong) and c."""
    n = b + c
    if n == 0:
        return 1.0
    from scipy.stats import binom

    return float(min(1.0, 2 * binom.cdf(min(b, c), n, 0.5)))


def paired_bootstrap_pvalue(
    diff_statistic: Callable[[npt.NDArray[np.int64]], float],
    n: int,
    *,
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[float, Interval]:
    """Two-sided p-value and CI for a paired difference statistic (B − A) over shared examples.

    The p-value is the share of resampled differences on the other side of zero, doubled
    (percentile bootstrap test); the CI is the percentile interval of the differences.
    """
    if n <= 0 or n_boot <= 0:
        return 1.0, Interval(None, None, "paired bootstrap")
    rng = np.random.default_rng(seed)
    diffs = np.empty(n_boot)
    for b in range(n_boot):
        diffs[b] = diff_statistic(rng.integers(0, n, size=n))
    diffs = diffs[np.isfinite(diffs)]
    if diffs.size == 0:
        return 1.0, Interval(None, None, "paired bootstrap")
    method = f"paired bootstrap (n_boot={n_boot}, seed={seed})"
    return _bootstrap_test(diffs), _percentile(diffs, method)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (same order as given)."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, (m - rank) * pvalues[i])
        adjusted[i] = min(1.0, running)
    return adjusted


def permutation_test(
    values: Array, groups: npt.NDArray[np.int64], *, n_perm: int = 2000, seed: int = 0
) -> float:
    """p-value for "no difference between groups": statistic = max − min of group means."""
    values = np.asarray(values, dtype=np.float64)
    labels = np.unique(groups)
    if labels.size < 2:
        return 1.0

    def spread(g: npt.NDArray[np.int64]) -> float:
        means = [values[g == lab].mean() for lab in labels]
        return float(max(means) - min(means))

    observed = spread(groups)
    rng = np.random.default_rng(seed)
    hits = sum(spread(rng.permutation(groups)) >= observed - 1e-12 for _ in range(n_perm))
    return (hits + 1) / (n_perm + 1)


def order_statistic_ci(sorted_values: Array, q: float, *, confidence: float = 0.95) -> Interval:
    """Distribution-free CI for the q-quantile from order statistics (binomial ranks)."""
    n = int(sorted_values.size)
    if n < 2:
        return Interval(None, None, "order statistics")
    from scipy.stats import binom

    alpha = 1 - confidence
    lo = int(binom.ppf(alpha / 2, n, q))
    hi = int(binom.ppf(1 - alpha / 2, n, q)) + 1
    lo_v = float(sorted_values[max(lo - 1, 0)]) if lo >= 1 else None
    hi_v = float(sorted_values[hi - 1]) if hi <= n else None
    return Interval(lo_v, hi_v, "order statistics (binomial)")


def two_sample_bootstrap_pvalue(
    baseline: Sequence[float] | Array,
    candidate: Sequence[float] | Array,
    statistic: Callable[[Array], float],
    *,
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[float, Interval]:
    """p-value and CI for ``statistic(candidate) − statistic(baseline)`` on independent samples.

    For figures whose samples are not paired (latency calls of two runs): each resample draws
    the baseline then the candidate with replacement, in that order (the same stream as
    ``scipy.stats.bootstrap((a, b), ..., paired=False, batch=1)``). The p-value is the
    percentile-bootstrap test of ``paired_bootstrap_pvalue``.
    """
    a = np.asarray(baseline, dtype=np.float64)
    b = np.asarray(candidate, dtype=np.float64)
    if a.size == 0 or b.size == 0:
        return 1.0, Interval(None, None, "two-sample bootstrap")
    rng = np.random.default_rng(seed)
    diffs = np.empty(n_boot)
    for k in range(n_boot):
        ra = a[rng.integers(0, a.size, size=(1, a.size))[0]]
        rb = b[rng.integers(0, b.size, size=(1, b.size))[0]]
        diffs[k] = statistic(rb) - statistic(ra)
    diffs = diffs[np.isfinite(diffs)]
    if diffs.size == 0:
        return 1.0, Interval(None, None, "two-sample bootstrap")
    method = f"two-sample bootstrap (n_boot={n_boot}, seed={seed})"
    return _bootstrap_test(diffs), _percentile(diffs, method)


def _bootstrap_test(diffs: Array) -> float:
    p_low = (np.sum(diffs <= 0) + 1) / (diffs.size + 1)
    p_high = (np.sum(diffs >= 0) + 1) / (diffs.size + 1)
    return float(min(1.0, 2 * min(p_low, p_high)))


def _percentile(values: Array, method: str) -> Interval:
    low, high = np.quantile(values, [0.025, 0.975])
    return Interval(float(low), float(high), method)


def intervals_overlap(a: Interval, b: Interval) -> bool | None:
    """Whether two intervals overlap; None when either is undefined (the gate's fallback test)."""
    if a.low is None or a.high is None or b.low is None or b.high is None:
        return None
    return a.low <= b.high and b.low <= a.high
