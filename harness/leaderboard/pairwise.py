"""All-pairs tests within one benchmark, Holm-adjusted, and the rank intervals they imply.

Why all pairs: comparing only neighbours in the sorted order lets ties chain (A≈B and B≈C put
A, B, C in one group even when A and C differ clearly). Here every pair gets its own test, the
p-values of the benchmark's pairs are Holm-adjusted together (strong family-wise control at
``alpha`` under any dependence between the tests), and each entry's rank is the set of ranks the
significant pairs leave open: best = 1 + (entries significantly better), worst = n − (entries
significantly worse). With probability >= 1 − alpha no pair of truly equal entries is declared
different, so every interval then holds each entry's true rank (the rank-interval construction
of Al Mohamad, Goeman & van Zwet, 2022, built on Holm instead of Tukey).

Two tests, chosen per pair:

* **paired exact McNemar** on the examples both entries carry predictions for, when the metric is
  a correctness rate (the same formula as ``harness.stats.mcnemar_exact`` and
  ``statsmodels.stats.contingency_tables.mcnemar(exact=True)``, vectorised over all pairs);
* otherwise a **z-test from the recorded 95% intervals**: the standard error of each side is its
  half-width facing the other value divided by 1.96 (MOVER, Zou & Donner 2008, which respects
  asymmetric intervals such as Wilson's), and the two estimates are treated as independent.
  Entries scored on the same examples are usually positively correlated, which makes this test
  conservative. A pair where either side lacks an interval is not tested (it never separates)
  and is left out of the Holm family.

A significant pair separates two entries only in the direction of their recorded values; a
McNemar result pointing the other way (possible only when the shared examples are a subset)
leaves the pair unseparated.

Everything is vectorised so that a 1,000-entry benchmark (half a million pairs) takes well under
a second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

Z95 = 1.959963984540054  # the 0.975 normal quantile: recorded intervals are 95% intervals
UNTESTED, MCNEMAR, INTERVAL = 0, 1, 2


@dataclass(frozen=True)
class OutcomeMatrix:
    """Per-example correctness of the ranked entries on one shared column order of examples."""

    has: BoolArray  # (n_entries, n_examples): the entry carries a prediction for the example
    correct: BoolArray  # (n_entries, n_examples): ... and it is right (False where not ``has``)


@dataclass(frozen=True)
class PairwiseResult:
    """Every pair's test; matrices are (n, n), symmetric except ``better``."""

    p: FloatArray  # raw two-sided p-value; NaN on the diagonal and for untested pairs
    adjusted: FloatArray  # Holm-adjusted across the tested pairs; NaN where untested
    better: BoolArray  # better[i, j]: i is significantly better than j
    method: IntArray  # UNTESTED, MCNEMAR or INTERVAL
    shared: IntArray  # examples both entries carry (McNemar pairs), else 0
    n_tests: int  # size of the Holm family
    alpha: float

    @property
    def rank_best(self) -> IntArray:
        """1 + number of entries significantly better (the best rank the data allow)."""
        counts: IntArray = self.better.sum(axis=0, dtype=np.int64)
        return 1 + counts

    @property
    def rank_worst(self) -> IntArray:
        """n − number of entries significantly worse (the worst rank the data allow)."""
        n = int(self.better.shape[0])
        counts: IntArray = self.better.sum(axis=1, dtype=np.int64)
        return n - counts


def mcnemar_exact_pvalues(b: IntArray | FloatArray, c: IntArray | FloatArray) -> FloatArray:
    """Two-sided exact McNemar p-values, elementwise: min(1, 2 · Binom(b + c, ½).cdf(min(b, c)))."""
    from scipy.stats import binom

    b_arr, c_arr = np.asarray(b, dtype=np.float64), np.asarray(c, dtype=np.float64)
    p = 2.0 * binom.cdf(np.minimum(b_arr, c_arr), b_arr + c_arr, 0.5)
    return np.asarray(np.minimum(1.0, np.where(b_arr + c_arr == 0, 1.0, p)), dtype=np.float64)


def interval_z_pvalues(values: FloatArray, lows: FloatArray, highs: FloatArray) -> FloatArray:
    """Two-sided p-values for "equal" between every pair, from values and 95% intervals.

    For a pair with values u > v the standard errors come from the half-widths that face each
    other (u's lower, v's upper) over 1.96; NaN where either interval is missing.
    """
    from scipy.stats import norm

    v = np.asarray(values, dtype=np.float64)
    down = np.maximum(v - np.asarray(lows, dtype=np.float64), 0.0) / Z95
    up = np.maximum(np.asarray(highs, dtype=np.float64) - v, 0.0) / Z95
    diff = v[:, None] - v[None, :]
    # Row i above column j: i's lower and j's upper half-widths face each other.
    se = np.where(
        diff >= 0,
        np.hypot(down[:, None], up[None, :]),
        np.hypot(up[:, None], down[None, :]),
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.abs(diff) / se
    z = np.where(diff == 0, 0.0, np.where(se == 0, np.inf, z))
    p = np.asarray(2.0 * norm.sf(z), dtype=np.float64)
    return np.where(np.isnan(se), np.nan, np.minimum(p, 1.0))


def holm_adjust(pvalues: FloatArray) -> FloatArray:
    """Holm–Bonferroni adjusted p-values of a 1-d array (same order as given)."""
    p = np.asarray(pvalues, dtype=np.float64)
    m = p.size
    if m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    scaled = (m - np.arange(m)) * p[order]
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return adjusted


def _mcnemar_counts(outcomes: OutcomeMatrix) -> tuple[FloatArray, FloatArray]:
    """(discordant counts b[i, j] = i right and j wrong on shared examples, shared counts)."""
    has = outcomes.has.astype(np.float64)
    right = (outcomes.correct & outcomes.has).astype(np.float64)
    return right @ (has - right).T, has @ has.T


def pairwise_tests(
    values: FloatArray,
    *,
    higher_is_better: bool,
    lows: FloatArray,
    highs: FloatArray,
    outcomes: OutcomeMatrix | None,
    alpha: float,
) -> PairwiseResult:
    """Test every pair of entries, Holm-adjust across the pairs, and decide the separations."""
    v = np.asarray(values, dtype=np.float64)
    n = v.size
    p = interval_z_pvalues(v, lows, highs)
    method = np.where(np.isnan(p), UNTESTED, INTERVAL).astype(np.int64)
    shared = np.zeros((n, n), dtype=np.int64)
    agree = np.ones((n, n), dtype=np.bool_)  # the test's direction agrees with the values
    if outcomes is not None:
        b, both = _mcnemar_counts(outcomes)
        paired = both > 0
        p = np.where(paired, mcnemar_exact_pvalues(b, b.T), p)
        method = np.where(paired, MCNEMAR, method)
        shared = np.where(paired, both, 0).astype(np.int64)
        sign = 1.0 if higher_is_better else -1.0
        agree = ~paired | (np.sign(b - b.T) == np.sign(sign * (v[:, None] - v[None, :])))
    np.fill_diagonal(p, np.nan)
    np.fill_diagonal(method, UNTESTED)
    upper = np.triu(~np.isnan(p), k=1)
    adjusted = np.full((n, n), np.nan)
    adjusted[upper] = holm_adjust(p[upper])
    adjusted = np.where(np.isnan(adjusted), adjusted.T, adjusted)
    ahead = (v[:, None] > v[None, :]) if higher_is_better else (v[:, None] < v[None, :])
    better = ahead & agree & (np.nan_to_num(adjusted, nan=1.0) < alpha)
    return PairwiseResult(p, adjusted, better, method, shared, int(upper.sum()), alpha)
