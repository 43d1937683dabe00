"""Differences between two estimates with an interval, and false-discovery control.

``mover_difference`` is the MOVER interval (method of variance estimates recovery; Zou & Donner,
2008) for the difference of two independent estimates, each given with its own interval: it
needs no more than the two intervals, so it serves any metric a suite reports with a valid
interval. For two proportions with Wilson intervals it is Newcombe's hybrid score interval
(method 10), checked against statsmodels' ``confint_proportions_2indep(method='newcomb')``.

``benjamini_hochberg`` adjusts p-values to control the false discovery rate (checked against
statsmodels' ``multipletests(method='fdr_bh')``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from harness.stats import Interval, wilson_interval


def mover_difference(
    a: float | None, a_ci: Interval, b: float | None, b_ci: Interval, *, method: str = "mover"
) -> Interval:
    """Interval of ``a - b`` for independent estimates, from their intervals (None when either
    estimate or interval end is undefined)."""
    ends = (a, a_ci.low, a_ci.high, b, b_ci.low, b_ci.high)
    if any(v is None or not math.isfinite(v) for v in ends):
        return Interval(None, None, method)
    assert a is not None and b is not None and a_ci.low is not None and a_ci.high is not None
    assert b_ci.low is not None and b_ci.high is not None
    d = a - b
    low = d - math.sqrt((a - a_ci.low) ** 2 + (b_ci.high - b) ** 2)
    high = d + math.sqrt((a_ci.high - a) ** 2 + (b - b_ci.low) ** 2)
    return Interval(low, high, method)


def newcombe_difference(k1: int, n1: int, k2: int, n2: int) -> Interval:
    """Newcombe's hybrid score interval for p1 - p2 (independent samples)."""
    if n1 <= 0 or n2 <= 0:
        return Interval(None, None, "newcombe")
    return mover_difference(k1 / n1, wilson_interval(k1, n1), k2 / n2, wilson_interval(k2, n2), method="newcombe")


def benjamini_hochberg(pvalues: Sequence[float]) -> list[float]:
    """BH-adjusted p-values (q-values), in the input order; reject where q <= the FDR level."""
    p = np.asarray(pvalues, dtype=np.float64)
    m = p.size
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    ranked = p[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return [float(v) for v in out]
