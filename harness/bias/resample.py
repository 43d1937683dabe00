"""Stratified bootstrap for the equalized-odds gaps of ``harness.bias.groups``.

Why stratified: equalized odds compares rates *conditional on the label within each group*
(TPR over a group's positives, FPR over its negatives). An i.i.d. bootstrap over all examples
redraws how many positives each group has; a small group then often loses all its positives (or
negatives) in a resample, the rate is undefined there, and the interval is either null or built
from the lucky resamples only. Resampling with replacement *within each group × label cell*
keeps every cell at its observed size, so each resample has exactly the rates the point estimate
used and the statistic is defined in every resample. The interval is conditional on the
observed cell sizes: it expresses the uncertainty of the rates given those counts (the usual
stratified bootstrap, Davison & Hinkley 1997, §3.2), not the uncertainty of the group
composition, which equalized odds does not measure.

Rates missing from the point estimate (a group without positives has no TPR) are missing from
every resample too; the statistic is the same function of the same cells.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from harness.stats import Interval

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Statistic = Callable[[IntArray], float]


def stratified_bootstrap_ci(
    statistic: Statistic,
    strata: IntArray,
    *,
    n_boot: int,
    seed: int,
    confidence: float = 0.95,
) -> Interval:
    """Percentile interval of ``statistic(indices)`` over resamples drawn within each stratum.

    ``strata[i]`` is the stratum (cell) of example i; every resample holds as many examples of
    each stratum as the data. A resample whose statistic is still undefined (NaN: possible only
    when the statistic itself can be 0/0, e.g. a ratio whose rates are all 0) is left out; with
    more than half left out the interval is undefined (the rule of ``harness.stats.bootstrap_ci``).
    """
    method = (
        f"stratified percentile bootstrap within group x label cells (n_boot={n_boot}, seed={seed})"
    )
    strata = np.asarray(strata, dtype=np.int64)
    if strata.size <= 1 or n_boot <= 0:
        return Interval(None, None, method)
    rng = np.random.default_rng(seed)
    cells = [np.flatnonzero(strata == s) for s in np.unique(strata)]
    draws = np.concatenate(
        [cell[rng.integers(0, cell.size, size=(n_boot, cell.size))] for cell in cells], axis=1
    )
    values = np.array([statistic(draws[b]) for b in range(n_boot)], dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size < n_boot / 2:
        return Interval(None, None, method)
    tail = (1 - confidence) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return Interval(float(low), float(high), method)


def _gap(rates: npt.NDArray[np.float64], use: BoolArray, ratio: bool) -> float:
    """max − min (or min / max) of ``rates`` over the groups in ``use``; NaN with < 2 groups."""
    picked = rates[use]
    if picked.size < 2:
        return float("nan")
    hi, lo = float(picked.max()), float(picked.min())
    if ratio:
        return lo / hi if hi > 0 else float("nan")
    return hi - lo


def equalized_odds_statistic(
    y: IntArray,
    p: IntArray,
    codes: IntArray,
    *,
    tpr_groups: BoolArray,
    fpr_groups: BoolArray,
    ratio: bool,
) -> Statistic:
    """Equalized-odds difference (max of the TPR and FPR gaps) or ratio (min of the two
    ratios) on resampled indices, over the same groups as the point estimate: TPR over the
    groups in ``tpr_groups`` (those with positives), FPR over ``fpr_groups`` (with negatives).
    A rate defined in fewer than two groups takes no part, as in the point estimate."""
    n_groups = int(tpr_groups.size)

    def stat(idx: IntArray) -> float:
        yy, pp, cc = y[idx], p[idx], codes[idx]
        pos = np.bincount(cc, weights=yy, minlength=n_groups)
        neg = np.bincount(cc, weights=1 - yy, minlength=n_groups)
        with np.errstate(divide="ignore", invalid="ignore"):
            tpr = np.bincount(cc, weights=yy * pp, minlength=n_groups) / pos
            fpr = np.bincount(cc, weights=(1 - yy) * pp, minlength=n_groups) / neg
        gaps = [_gap(tpr, tpr_groups, ratio), _gap(fpr, fpr_groups, ratio)]
        defined = [g for g in gaps if np.isfinite(g)]
        if not defined:
            return float("nan")
        return float(min(defined) if ratio else max(defined))

    return stat


def group_label_cells(codes: IntArray, y: IntArray) -> IntArray:
    """Stratum of each example: its group code × its label (0/1)."""
    return np.asarray(codes, dtype=np.int64) * 2 + np.asarray(y, dtype=np.int64)
