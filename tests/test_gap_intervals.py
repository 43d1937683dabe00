"""Intervals of between-group gaps (harness.bias.gap_intervals).

The defect (seen on a 6-category run): Fairlearn's percentile bootstrap of a max − min gap sat
above its own estimate ("0.0226 [0.0315, 0.1667]") and excluded 0 for equal groups. The
replacement is checked three ways: the per-rate boxes against statsmodels, the range bounds
against a brute-force search over the boxes, and coverage / false-disparity rates by simulation
at the group sizes users run.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.proportion import proportion_confint

from harness.bias.gap_intervals import RateBox, difference_bounds, ratio_bounds, wilson_boxes
from harness.bias.groups import group_metrics


def _gap(rates: np.ndarray, ratio: bool) -> float:
    hi, lo = float(rates.max()), float(rates.min())
    return (lo / hi if hi > 0 else 1.0) if ratio else hi - lo


def test_boxes_are_statsmodels_wilson_bonferroni_over_every_rate() -> None:
    families = [([3, 9, 0], [10, 12, 5]), ([1, 4], [6, 8])]
    boxes = wilson_boxes(families)
    for (hits, totals), box in zip(families, boxes, strict=True):
        low, high = proportion_confint(hits, totals, alpha=0.05 / 5, method="wilson")
        np.testing.assert_allclose(box.low, low, atol=1e-15)
        np.testing.assert_allclose(box.high, high, atol=1e-15)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)).map(sorted), min_size=2, max_size=6))
def test_bounds_equal_a_brute_force_search_over_the_box(edges: list[list[float]]) -> None:
    """Every point in the box gives a gap inside the bounds, and the bounds are reached (or, for
    the conservative corner where one group would need to be both max and min, approached)."""
    low = np.array([e[0] for e in edges])
    high = np.array([e[1] for e in edges])
    box = RateBox(low, high)
    rng = np.random.default_rng(0)
    corners = rng.integers(0, 2, size=(4000, low.size)).astype(bool)
    interior = rng.random((4000, low.size))
    points = np.vstack([np.where(corners, high, low), low + interior * (high - low)])
    for ratio, (lo, hi) in ((False, difference_bounds(box)), (True, ratio_bounds(box))):
        gaps = np.array([_gap(pt, ratio) for pt in points])
        assert gaps.min() >= lo - 1e-12 and gaps.max() <= hi + 1e-12


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 60), st.floats(0, 1)), min_size=2, max_size=7))
def test_the_interval_always_holds_its_estimate(groups: list[tuple[int, float]]) -> None:
    totals = [n for n, _ in groups]
    hits = [round(n * share) for n, share in groups]
    rates = np.array(hits) / np.array(totals)
    (box,) = wilson_boxes([(hits, totals)])
    lo, hi = difference_bounds(box)
    assert lo - 1e-12 <= _gap(rates, False) <= hi + 1e-12
    if rates.max() > 0:
        lo, hi = ratio_bounds(box)
        assert lo - 1e-12 <= _gap(rates, True) <= hi + 1e-12


@pytest.mark.parametrize(
    ("k", "n", "rates"),
    [
        (2, 5, (0.5, 0.5)),
        (2, 10, (0.7, 0.4)),
        (4, 30, (0.6, 0.6, 0.6, 0.6)),
        (6, 30, (0.9, 0.85, 0.8, 0.8, 0.75, 0.7)),
        (3, 300, (0.2, 0.25, 0.3)),
    ],
)
def test_coverage_by_simulation(k: int, n: int, rates: tuple[float, ...]) -> None:
    """2,000 seeded samples per setting: the 95% interval holds the true gap (difference and
    ratio) at least 95% of the time (Bonferroni boxes are conservative by construction)."""
    rng = np.random.default_rng(k * 1000 + n)
    truth = np.array(rates)
    true_d, true_r = _gap(truth, False), _gap(truth, True)
    hits_d = hits_r = 0
    reps = 2000
    for _ in range(reps):
        counts = rng.binomial(n, truth)
        (box,) = wilson_boxes([(list(counts), [n] * k)])
        lo, hi = difference_bounds(box)
        hits_d += lo <= true_d <= hi
        lo, hi = ratio_bounds(box)
        hits_r += lo <= true_r <= hi
    assert hits_d / reps >= 0.95 and hits_r / reps >= 0.95


def test_equal_groups_rarely_look_unequal() -> None:
    """Six equal groups of 30 (rate 0.8): the difference interval excludes 0 in at most 5% of
    2,000 samples — the false-disparity rate the percentile bootstrap got wrong."""
    rng = np.random.default_rng(11)
    excluded = 0
    for _ in range(2000):
        counts = rng.binomial(30, 0.8, size=6)
        (box,) = wilson_boxes([(list(counts), [30] * 6)])
        excluded += difference_bounds(box)[0] > 0
    assert excluded / 2000 <= 0.05


def test_group_metrics_intervals_hold_their_estimates_with_many_groups() -> None:
    """The shape of the reported case: six categories of unequal size; every gap's interval holds
    its estimate, and each group's row interval is statsmodels' Wilson interval."""
    rng = np.random.default_rng(3)
    sizes = [300, 250, 200, 120, 60, 40]
    groups = [g for g, size in zip("abcdef", sizes, strict=True) for _ in range(size)]
    y = rng.integers(0, 2, size=len(groups)).astype(np.int64)
    p = np.where(rng.random(len(groups)) < 0.85, y, 1 - y).astype(np.int64)
    res = group_metrics(
        y_true=y, y_pred=p, sensitive={"race": groups}, columns=["race"], min_group_size=1
    )
    gaps = [m for m in res.metrics if m.ci_low is not None]
    assert len(gaps) == 6
    for m in gaps:
        assert m.value is not None and m.ci_low <= m.value <= m.ci_high, m.name
    row = next(r for r in res.details["by_group"] if r["label"] == "f")
    in_f = np.array(groups) == "f"
    correct = int(np.sum(y[in_f] == p[in_f]))
    assert row["ci"]["accuracy"] == pytest.approx(
        list(proportion_confint(correct, 40, method="wilson")), abs=1e-15
    )
