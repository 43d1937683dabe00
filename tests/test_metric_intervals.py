"""Coverage of the accuracy suite's intervals at the edges (issue 14, defects 4, 5 and 7).

References: statsmodels' ``proportion_confint`` (Wilson, Jeffreys, Clopper-Pearson), scipy's
binomial and beta distributions, scikit-learn's weighted F1 for the simulation's truth.
The coverage target is [0.93, 0.975] at (accuracy, n) in ``interval_simulation.CELLS``.
Accuracy coverage is exact (a binomial sum); macro-F1 coverage is a seeded simulation, small
here (``REPS`` per cell, so the band is widened by ``TOL``, 2.5 binomial standard errors) and
large in benchmarks/bench_intervals.py (5000 per cell, the figures quoted in the docs).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from sklearn import metrics as skm
from statsmodels.stats.proportion import proportion_confint

from harness.metrics import classification as mc
from harness.stats import wilson_interval
from tests import interval_simulation as ic
from tests.test_accuracy import probs_for, run_suite

REPS = 800
DRAWS = 500
TOL = 2.5 * math.sqrt(0.95 * 0.05 / REPS)
LOW, HIGH = ic.TARGET
FEASIBLE = [cell for cell in ic.CELLS if cell != (0.99, 100)]


def reference_coverage(p: float, n: int, method: str) -> float:
    """Exact coverage of a statsmodels interval: scipy's binomial mass where it holds p."""
    k = np.arange(n + 1)
    low, high = proportion_confint(k, n, alpha=0.05, method=method)
    return float(sps.binom.pmf(k, n, p)[(low <= p) & (p <= high)].sum())


@pytest.mark.parametrize("n", [1, 2, 5, 30, 100, 200, 1072])
def test_wilson_equals_statsmodels(n: int) -> None:
    for k in sorted({0, 1, 2, n // 3, n // 2, n - 2, n - 1, n} & set(range(n + 1))):
        ours = wilson_interval(k, n)
        low, high = proportion_confint(k, n, alpha=0.05, method="wilson")
        assert ours.low == pytest.approx(low, abs=1e-12) and ours.high == pytest.approx(high, abs=1e-12), (k, n)


@pytest.mark.parametrize("n", [1, 3, 10, 30, 100, 1072])
def test_wilson_point_inside_at_zero_and_n(n: int) -> None:
    """Defect 7: at k = n the upper end was 0.9999999999999999, below the point 1.0."""
    for k in (0, n):
        ci = wilson_interval(k, n)
        assert ci.low is not None and ci.high is not None
        assert ci.low <= k / n <= ci.high
    assert wilson_interval(n, n).high == 1.0 and wilson_interval(0, n).low == 0.0


@pytest.mark.parametrize(("p", "n"), FEASIBLE)
def test_accuracy_wilson_coverage_in_target(p: float, n: int) -> None:
    coverage = ic.exact_accuracy_coverage(p, n, ic.accuracy_interval("wilson"))
    assert coverage == pytest.approx(reference_coverage(p, n, "wilson"), abs=1e-12)
    assert LOW <= coverage <= HIGH


def test_accuracy_target_is_unreachable_at_p099_n100() -> None:
    """At accuracy 0.99 and n = 100 no interval built from the count can cover in [0.93, 0.975].

    Its acceptance region (the counts whose interval holds 0.99) is a run of consecutive counts;
    their binomial masses jump from 0.921 (98-100 correct: Wilson) to 0.982 (97-100: Jeffreys,
    Clopper-Pearson, modified Wilson), so the band lies between two reachable values.
    """
    p, n = 0.99, 100
    pmf = sps.binom.pmf(np.arange(n + 1), n, p)
    cumulative = np.concatenate([[0.0], np.cumsum(pmf)])
    runs = cumulative[None, 1:] - cumulative[:-1, None]  # runs[a, b] = mass of a..b
    upper = np.triu(np.ones((n + 1, n + 1), dtype=bool))
    assert not np.any(upper & (runs >= LOW) & (runs <= HIGH))
    wilson = ic.exact_accuracy_coverage(p, n, ic.accuracy_interval("wilson"))
    assert wilson == pytest.approx(reference_coverage(p, n, "wilson"), abs=1e-12)
    assert wilson == pytest.approx(pmf[98:].sum(), abs=1e-12) and wilson < LOW
    for method in ("jeffreys", "beta"):
        coverage = reference_coverage(p, n, method)
        assert coverage == pytest.approx(pmf[97:].sum(), abs=1e-12) and coverage > HIGH


@pytest.mark.parametrize(("p", "n"), [(0.95, 30), (0.99, 100)])
def test_accuracy_percentile_bootstrap_under_covers(p: float, n: int) -> None:
    """Defect 5: the bootstrap the suite used covered 0.78 at (0.95, 30), 0.63 at (0.99, 100)."""
    assert ic.exact_accuracy_coverage(p, n, ic.accuracy_interval("percentile bootstrap")) < LOW - TOL


def test_suite_accuracy_interval_is_wilson(tmp_path: Path) -> None:
    labels = np.array([0] * 15 + [1] * 15)
    predicted = labels.copy()
    out = run_suite(tmp_path, labels, probs_for(predicted.tolist(), 2))
    m = {x.name: x for x in out.metrics}
    low, high = proportion_confint(30, 30, alpha=0.05, method="wilson")
    assert m["accuracy"].value == 1.0 and m["accuracy"].ci_method == "wilson"
    assert m["accuracy"].ci_low == pytest.approx(low, abs=1e-12) and m["accuracy"].ci_high == 1.0 >= high - 1e-15


def test_group_accuracy_interval_is_wilson(tmp_path: Path) -> None:
    labels = np.array([0, 1] * 20)
    predicted = [0, 1] * 18 + [1, 1, 1, 1]
    groups = {"g": tuple("a" if i % 4 < 2 else "b" for i in range(40))}
    out = run_suite(tmp_path, labels, probs_for(predicted, 2), groups)
    for row in out.details["groups"]["g"]:
        mask = np.array([g == row["group"] for g in groups["g"]])
        correct = int((labels[mask] == np.array(predicted)[mask]).sum())
        low, high = proportion_confint(correct, int(mask.sum()), alpha=0.05, method="wilson")
        assert row["ci_low"] == pytest.approx(low, abs=1e-12) and row["ci_high"] == pytest.approx(high, abs=1e-12)


@pytest.mark.parametrize("task", list(ic.TASKS))
@pytest.mark.parametrize(("p", "n"), ic.CELLS)
def test_f1_macro_posterior_coverage(task: str, p: float, n: int) -> None:
    """Seeded simulation of the suite's macro-F1 interval; band widened by TOL for REPS.

    Binary balanced at (0.99, 100) is the accuracy case again (macro-F1 there moves with the
    error count): coverage is either P(<= 2 errors) = 0.921 or P(<= 3 errors) = 0.982, and the
    posterior takes the conservative side, so its upper limit there is P(<= 3 errors).
    """
    seed = 1000 + 10 * list(ic.TASKS).index(task) + ic.CELLS.index((p, n))
    coverage = ic.f1_coverage(ic.TASKS[task], p, n, "posterior", reps=REPS, seed=seed, draws=DRAWS)
    high = HIGH
    if task == "binary balanced" and (p, n) == (0.99, 100):
        high = float(sps.binom.cdf(3, n, 1 - p))
    assert LOW - TOL <= coverage <= high + TOL


@pytest.mark.parametrize("task", list(ic.TASKS))
@pytest.mark.parametrize(("p", "n"), [(0.95, 30), (0.99, 100)])
def test_f1_macro_percentile_bootstrap_fails_the_check(task: str, p: float, n: int) -> None:
    """The check above rejects the interval the suite used (zero width on perfect samples)."""
    for method in ("percentile bootstrap", "percentile bootstrap, zero_division=0"):
        coverage = ic.f1_coverage(ic.TASKS[task], p, n, method, reps=400, seed=7, n_boot=200)
        assert coverage < LOW - TOL, method


@pytest.mark.parametrize(("task", "p"), [(t, p) for t in ic.TASKS for p in (0.5, 0.85, 0.99)])
def test_simulation_truth_equals_sklearn_population_f1(task: str, p: float) -> None:
    """The truth: scikit-learn's macro-F1 with every (true, predicted) pair weighted by its probability."""
    pi = ic.cell_probabilities(ic.TASKS[task], p)
    k = pi.shape[0]
    true, pred = np.divmod(np.arange(k * k), k)
    reference = skm.f1_score(true, pred, sample_weight=pi.ravel(), average="macro")
    assert ic.population_f1_macro(pi) == pytest.approx(reference, abs=1e-12)
    assert np.trace(pi) == pytest.approx(p, abs=1e-12) and pi.sum(axis=1) == pytest.approx(ic.TASKS[task])


@pytest.mark.parametrize(
    "cm",
    [
        [[40, 3, 1], [5, 20, 2], [0, 4, 6]],
        [[30, 0, 0], [0, 10, 0], [0, 0, 0]],  # class 2 unseen: the prior covers classes 0 and 1 only
        [[7, 2], [0, 0]],  # class 1 predicted twice, no examples
    ],
)
def test_posterior_jaccard_marginals_are_jeffreys_beta(cm: list[list[int]]) -> None:
    """Each seen class's Jaccard tp/(tp+fp+fn) has posterior Beta(tp + 1/2, fp + fn + 1/2) (scipy)."""
    counts = np.array(cm, dtype=np.int64)
    cells = mc.posterior_cells(counts, draws=20_000, rng=np.random.default_rng(11))
    for c in np.flatnonzero(mc.defined_classes(counts)):
        tp = cells[:, c, c]
        union = cells[:, c, :].sum(axis=1) + cells[:, :, c].sum(axis=1) - tp
        hits, misses = counts[c, c], counts[c, :].sum() + counts[:, c].sum() - 2 * counts[c, c]
        result = sps.kstest(tp / union, sps.beta(hits + 0.5, misses + 0.5).cdf)
        assert result.pvalue > 0.001, (c, result)
    unseen = ~mc.defined_classes(counts)
    assert np.all(cells[:, unseen, :] == 0) and np.all(cells[:, :, unseen] == 0)


def test_interval_of_unseen_class_equals_reduced_matrix() -> None:
    """A class neither present nor predicted is outside the estimand, as in the point estimate."""
    full = np.array([[30, 2, 0], [3, 12, 0], [0, 0, 0]])
    ours = mc.f1_macro_interval(full, draws=40_000, seed=5)
    reduced = mc.f1_macro_interval(full[:2, :2], draws=40_000, seed=6)
    assert ours.low == pytest.approx(reduced.low, abs=0.005) and ours.high == pytest.approx(reduced.high, abs=0.005)


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 4).flatmap(lambda k: st.lists(st.integers(0, 12), min_size=k * k, max_size=k * k)), st.integers(0, 99))
def test_interval_holds_its_point(cells: list[int], seed: int) -> None:
    k = math.isqrt(len(cells))
    cm = np.array(cells, dtype=np.int64).reshape(k, k)
    point = float(mc.macro_average(mc.precision_recall_f1(cm)[2]))
    ci = mc.f1_macro_interval(cm, draws=300, seed=seed)
    if mc.defined_classes(cm).sum() < 2:
        assert ci.low is None and ci.high is None
    else:
        assert ci.low is not None and ci.high is not None
        assert 0.0 <= ci.low <= point <= ci.high <= 1.0


def test_bootstrap_on_undefined_statistics_is_null(tmp_path: Path) -> None:
    """One scored example: no resampling interval exists (stats.bootstrap_ci needs n > 1)."""
    out = run_suite(tmp_path, np.array([1]), probs_for([1], 2))
    m = {x.name: x for x in out.metrics}
    for name in ("ece", "brier", "nll"):
        assert m[name].value is not None and m[name].ci_low is None and m[name].ci_high is None
    assert m["accuracy"].ci_low == pytest.approx(proportion_confint(1, 1, method="wilson")[0], abs=1e-12)
