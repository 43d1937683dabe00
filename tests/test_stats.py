"""harness.stats agrees with statsmodels / scipy on the same data, with identical
resamples where the reference uses the same random stream."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import bootstrap
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from harness import stats
from harness.metrics import classification as mc


@settings(max_examples=200)
@given(st.integers(0, 500), st.integers(0, 60), st.integers(0, 60), st.integers(0, 500))
def test_mcnemar_equals_statsmodels(a: int, b: int, c: int, d: int) -> None:
    table = [[a, b], [c, d]]
    expected = mcnemar(table, exact=True).pvalue
    assert stats.mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-12, abs=1e-300)


def test_mcnemar_from_paired_outcomes_equals_statsmodels() -> None:
    rng = np.random.default_rng(3)
    right_a = rng.random(5000) < 0.85
    right_b = np.where(rng.random(5000) < 0.05, ~right_a, right_a)
    table = [
        [int(np.sum(right_a & right_b)), int(np.sum(right_a & ~right_b))],
        [int(np.sum(~right_a & right_b)), int(np.sum(~right_a & ~right_b))],
    ]
    assert stats.mcnemar_exact(table[0][1], table[1][0]) == pytest.approx(
        mcnemar(table, exact=True).pvalue
    )


def same(ref: object) -> object:
    """scipy's interval, up to the last bits of floating-point rounding (its quantile routine is
    not numpy's); the resamples themselves are identical."""
    ci = ref.confidence_interval  # type: ignore[attr-defined]
    return pytest.approx((ci.low, ci.high), rel=1e-12, abs=1e-15)


def _scipy_paired(
    data: tuple[np.ndarray, ...], statistic: object, *, n_boot: int, seed: int
) -> object:
    # batch=1 draws one resample at a time: the same random stream as harness.stats.
    return bootstrap(
        data,
        statistic,
        paired=True,
        vectorized=False,
        n_resamples=n_boot,
        batch=1,
        method="percentile",
        confidence_level=0.95,
        rng=np.random.default_rng(seed),
    )


@pytest.mark.parametrize("n", [57, 200])
def test_bootstrap_ci_equals_scipy(n: int) -> None:
    rng = np.random.default_rng(n)
    values = rng.normal(0.3, 1.0, size=n)
    ours = stats.bootstrap_ci(lambda idx: float(values[idx].mean()), n, n_boot=400, seed=11)
    ref = _scipy_paired((values,), np.mean, n_boot=400, seed=11)
    assert (ours.low, ours.high) == same(ref)


def test_paired_bootstrap_equals_scipy() -> None:
    """The paired difference of a metric (here F1) over the same examples: identical resamples,
    identical interval, and the p-value follows from scipy's bootstrap distribution."""
    rng = np.random.default_rng(7)
    n = 301
    labels = rng.integers(0, 2, size=n)
    pred_a = np.where(rng.random(n) < 0.85, labels, 1 - labels)
    pred_b = np.where(rng.random(n) < 0.80, labels, 1 - labels)

    def diff(idx: np.ndarray) -> float:
        return mc.f1_macro(labels[idx], pred_b[idx], 2) - mc.f1_macro(labels[idx], pred_a[idx], 2)

    p, ci = stats.paired_bootstrap_pvalue(diff, n, n_boot=300, seed=5)

    def scipy_stat(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
        return mc.f1_macro(y, b, 2) - mc.f1_macro(y, a, 2)

    ref = _scipy_paired((labels, pred_a, pred_b), scipy_stat, n_boot=300, seed=5)
    assert (ci.low, ci.high) == same(ref)
    dist = ref.bootstrap_distribution  # type: ignore[attr-defined]
    expected_p = min(
        1.0,
        2
        * min((np.sum(dist <= 0) + 1) / (dist.size + 1), (np.sum(dist >= 0) + 1) / (dist.size + 1)),
    )
    assert p == pytest.approx(expected_p)


def test_two_sample_bootstrap_equals_scipy() -> None:
    rng = np.random.default_rng(1)
    a = 10 + rng.gamma(2.0, 1.0, size=151)
    b = 11 + rng.gamma(2.0, 1.0, size=120)
    p, ci = stats.two_sample_bootstrap_pvalue(
        a, b, lambda x: float(np.quantile(x, 0.9)), n_boot=300, seed=2
    )
    ref = bootstrap(
        (a, b),
        lambda x, y: float(np.quantile(y, 0.9) - np.quantile(x, 0.9)),
        paired=False,
        vectorized=False,
        n_resamples=300,
        batch=1,
        method="percentile",
        rng=np.random.default_rng(2),
    )
    assert (ci.low, ci.high) == same(ref)
    dist = ref.bootstrap_distribution
    assert p == pytest.approx(
        min(1.0, 2 * min((np.sum(dist <= 0) + 1) / 301, (np.sum(dist >= 0) + 1) / 301))
    )
    assert p < 0.05  # a shift of one unit is detected


# statsmodels' multipletests costs ~0.15 s per call here: few examples, ties included.
@settings(max_examples=12, deadline=None)
@given(
    st.lists(
        st.sampled_from([0.0, 0.001, 0.01, 0.02, 0.04, 0.2, 0.5, 1.0]) | st.floats(0, 1),
        min_size=1,
        max_size=12,
    )
)
def test_holm_equals_statsmodels(pvalues: list[float]) -> None:
    expected = multipletests(pvalues, method="holm")[1]
    assert stats.holm(pvalues) == pytest.approx(list(expected), abs=1e-12)


def test_intervals_overlap() -> None:
    assert stats.intervals_overlap(stats.Interval(0, 1, ""), stats.Interval(0.5, 2, "")) is True
    assert stats.intervals_overlap(stats.Interval(0, 1, ""), stats.Interval(1.5, 2, "")) is False
    assert stats.intervals_overlap(stats.Interval(None, 1, ""), stats.Interval(1.5, 2, "")) is None
