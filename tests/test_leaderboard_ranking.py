"""Leaderboard ranks: all-pairs tests, Holm across a benchmark's pairs, rank intervals.

The tests check the pieces against statsmodels (exact McNemar, Holm, the Wald two-proportion
test), reproduce the chained-tie defect (A≈B, B≈C, A≠C) and measure the family-wise error of
the whole procedure by simulation when every entry is truly equal.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from harness.leaderboard.entries import BenchmarkKey, Entry, Outcomes, SiteSettings
from harness.leaderboard.pairwise import (
    MCNEMAR,
    OutcomeMatrix,
    holm_adjust,
    interval_z_pvalues,
    mcnemar_exact_pvalues,
    pairwise_tests,
)
from harness.leaderboard.ranking import Benchmark, pareto_front, rank_benchmark
from harness.leaderboard.synthetic import SPLIT_SHA, Spec, make_record
from harness.records import Metric, SuiteCapabilities, SuiteRecord
from harness.stats import holm, mcnemar_exact, wilson_interval

KEY = BenchmarkKey(SPLIT_SHA, "accuracy", "1", "0" * 64)


def entry(
    name: str,
    value: float,
    *,
    ci: tuple[float, float] | None = None,
    right: Sequence[int] | None = None,
    carried: Sequence[int] | None = None,
    metric: str = "accuracy",
    higher: bool = True,
) -> tuple[Entry, SuiteRecord]:
    """A leaderboard row built in memory (no files): ``carried`` are the example indices it has
    predictions for, ``right`` those it gets right; without them it has no per-example data."""
    record, _ = make_record(Spec(name, 0.5, n=4))
    outcomes = None
    if right is not None and carried is not None:
        ids = frozenset(f"ex{i:05d}" for i in carried)
        outcomes = Outcomes(ids, frozenset(f"ex{i:05d}" for i in right))
    low, high = ci if ci is not None else (None, None)
    suite = SuiteRecord(
        name=KEY.suite,
        version="1",
        params={},
        status="ok",
        wall_time_s=0.0,
        metrics=[
            Metric(name=metric, value=value, higher_is_better=higher, ci_low=low, ci_high=high)
        ],
    )
    return Entry(name, None, record, b"", outcomes), suite  # type: ignore[arg-type]


def ranks(bench: Benchmark) -> dict[str, tuple[int | None, int | None]]:
    return {r.entry.model_name: (r.rank_best, r.rank_worst) for r in bench.rows}


# ------------------------------------------------------------------ the pieces vs statsmodels


def test_mcnemar_pvalues_equal_statsmodels_exact() -> None:
    from statsmodels.stats.contingency_tables import mcnemar

    rng = np.random.default_rng(3)
    b = np.concatenate([[0, 0, 1, 5, 30, 400], rng.integers(0, 60, size=40)])
    c = np.concatenate([[0, 3, 1, 0, 31, 380], rng.integers(0, 60, size=40)])
    ours = mcnemar_exact_pvalues(b, c)
    for k in range(b.size):
        reference = mcnemar([[7, b[k]], [c[k], 9]], exact=True).pvalue
        assert ours[k] == pytest.approx(reference, rel=1e-12, abs=1e-300)
        assert ours[k] == pytest.approx(mcnemar_exact(int(b[k]), int(c[k])), rel=1e-12)


def test_pairwise_mcnemar_uses_the_discordant_pairs_on_shared_examples() -> None:
    """The matrix form counts b and c over the examples both entries carry, as statsmodels
    would on each pair's 2x2 table."""
    from statsmodels.stats.contingency_tables import mcnemar

    rng = np.random.default_rng(5)
    has = rng.random((4, 80)) < 0.85
    correct = (rng.random((4, 80)) < [[0.9], [0.8], [0.7], [0.85]]) & has
    result = pairwise_tests(
        correct.sum(axis=1) / has.sum(axis=1),
        higher_is_better=True,
        lows=np.full(4, np.nan),
        highs=np.full(4, np.nan),
        outcomes=OutcomeMatrix(has=has, correct=correct),
        alpha=0.05,
    )
    for i in range(4):
        for j in range(4):
            if i == j:
                continue
            both = has[i] & has[j]
            table = [
                [
                    int((correct[i] & correct[j] & both).sum()),
                    int((correct[i] & ~correct[j] & both).sum()),
                ],
                [
                    int((~correct[i] & correct[j] & both).sum()),
                    int((~correct[i] & ~correct[j] & both).sum()),
                ],
            ]
            assert result.method[i, j] == MCNEMAR
            assert result.shared[i, j] == both.sum()
            assert result.p[i, j] == pytest.approx(mcnemar(table, exact=True).pvalue, rel=1e-12)
    assert result.n_tests == 6


def test_holm_equals_statsmodels_multipletests() -> None:
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(8)
    p = np.concatenate([rng.random(30) ** 3, [0.01, 0.01, 1.0, 0.0]])
    ours = holm_adjust(p)
    assert ours == pytest.approx(multipletests(p, method="holm")[1], abs=1e-15)
    assert ours == pytest.approx(holm(list(p)), abs=1e-15)


def test_interval_test_is_the_wald_two_proportion_test_on_wald_intervals() -> None:
    """Fed symmetric (Wald) intervals of two independent proportions, the interval z-test is
    statsmodels' unpooled Wald test of the difference."""
    from statsmodels.stats.proportion import proportion_confint, test_proportions_2indep

    counts, nobs = np.array([18, 25, 40]), np.array([30, 30, 60])
    low, high = proportion_confint(counts, nobs, alpha=0.05, method="normal")
    p = interval_z_pvalues(counts / nobs, np.asarray(low), np.asarray(high))
    for i, j in ((0, 1), (0, 2), (1, 2)):
        reference = test_proportions_2indep(
            counts[i], nobs[i], counts[j], nobs[j], method="wald", compare="diff"
        ).pvalue
        assert p[i, j] == pytest.approx(reference, rel=1e-9)
        assert p[j, i] == p[i, j]


def test_interval_test_uses_the_half_widths_that_face_each_other() -> None:
    # a's lower half-width 0.1 and b's upper 0.1 face each other; their far sides are huge.
    p = interval_z_pvalues(np.array([1.0, 0.6]), np.array([0.9, -5.0]), np.array([9.0, 0.7]))
    from scipy.stats import norm

    assert p[0, 1] == pytest.approx(2 * norm.sf(0.4 / np.hypot(0.1, 0.1) * 1.959963984540054))
    assert np.isnan(
        interval_z_pvalues(np.array([1.0, 0.6]), np.array([np.nan, 0.5]), np.array([1.1, 0.7]))[
            0, 1
        ]
    )


# ------------------------------------------------------------------ the chained-tie defect


def test_ties_do_not_chain_with_paired_tests() -> None:
    """A≈B (4 discordant pairs, all for A) and B≈C (5 for B), but A≠C (9 for A): the old walk
    down the table put all three in one tie group; Holm over the three pairs separates A and C."""
    from statsmodels.stats.contingency_tables import mcnemar
    from statsmodels.stats.multitest import multipletests

    everyone, a_only, a_and_b = range(0, 40), range(40, 44), range(44, 49)
    n = 60  # examples 49..59: everyone wrong
    members = [
        entry("A", 49 / n, right=[*everyone, *a_only, *a_and_b], carried=range(n)),
        entry("B", 45 / n, right=[*everyone, *a_and_b], carried=range(n)),
        entry("C", 40 / n, right=list(everyone), carried=range(n)),
    ]
    bench = rank_benchmark(KEY, members, SiteSettings())
    assert [r.entry.model_name for r in bench.rows] == ["A", "B", "C"]
    assert ranks(bench) == {"A": (1, 2), "B": (1, 3), "C": (2, 3)}
    raw = [mcnemar([[0, b], [c, 0]], exact=True).pvalue for b, c in ((4, 0), (5, 0), (9, 0))]
    adjusted = multipletests(raw, method="holm")[1]
    pairs = bench.pairs
    assert pairs is not None
    assert [pairs.p[0, 1], pairs.p[1, 2], pairs.p[0, 2]] == pytest.approx(raw, rel=1e-12)
    assert [pairs.adjusted[0, 1], pairs.adjusted[1, 2], pairs.adjusted[0, 2]] == pytest.approx(
        adjusted
    )
    assert adjusted[0] >= 0.05 and adjusted[1] >= 0.05 and adjusted[2] < 0.05  # the chain case
    b_row = bench.rows[1]
    assert "vs A: paired exact McNemar p=0.125 on 60 shared examples" in b_row.basis
    assert "beats none; beaten by none" in b_row.basis
    assert "beats C" in bench.rows[0].basis and "beaten by A" in bench.rows[2].basis


def test_ties_do_not_chain_with_interval_tests() -> None:
    """Lower is better; neighbours' intervals overlap (A≈B, B≈C) while A and C separate."""
    members = [
        entry("C", 13.0, ci=(12.0, 14.0), metric="p50_ms", higher=False),
        entry("A", 10.0, ci=(9.0, 11.0), metric="p50_ms", higher=False),
        entry("B", 11.5, ci=(10.5, 12.5), metric="p50_ms", higher=False),
    ]
    bench = rank_benchmark(KEY, members, SiteSettings())
    assert [r.entry.model_name for r in bench.rows] == ["A", "B", "C"]
    assert ranks(bench) == {"A": (1, 2), "B": (1, 3), "C": (2, 3)}
    assert "95%-interval z-test" in bench.rows[1].basis and "not separated" in bench.rows[1].basis
    # The mean-win-rate input: a win is 1, an unseparated pair 1/2 → (n − rank midpoint)/(n − 1).
    assert [r.win_rate for r in bench.rows] == [0.75, 0.5, 0.25]


def test_clear_differences_give_single_ranks() -> None:
    rng = np.random.default_rng(2)
    n = 300
    members = [
        entry(name, float(np.mean(ok)), right=list(np.flatnonzero(ok)), carried=range(n))
        for name, ok in (
            (name, rng.random(n) < acc) for name, acc in (("x", 0.95), ("y", 0.80), ("z", 0.60))
        )
    ]
    assert ranks(rank_benchmark(KEY, members, SiteSettings())) == {
        "x": (1, 1),
        "y": (2, 2),
        "z": (3, 3),
    }


def test_a_paired_result_against_the_value_order_does_not_separate() -> None:
    """A carries examples 0..199 and scores higher overall, but on the 100 it shares with B
    (100..199) B is far better: the test points against the value order, so no separation."""
    a_right = [*range(0, 100), *range(100, 130)]  # 130 / 200
    b_right = [*range(100, 190), *range(200, 210)]  # 100 / 200
    members = [
        entry("A", 0.65, right=a_right, carried=range(0, 200)),
        entry("B", 0.50, right=b_right, carried=range(100, 300)),
    ]
    bench = rank_benchmark(KEY, members, SiteSettings())
    assert bench.pairs is not None and bench.pairs.adjusted[0, 1] < 1e-6
    assert ranks(bench) == {"A": (1, 2), "B": (1, 2)}


def test_a_row_without_interval_or_predictions_is_never_separated() -> None:
    members = [
        entry("A", 0.9, ci=(0.88, 0.92)),
        entry("B", 0.5, ci=(0.48, 0.52)),
        entry("N", 0.7),  # no interval, no predictions
    ]
    bench = rank_benchmark(KEY, members, SiteSettings())
    assert ranks(bench) == {"A": (1, 2), "N": (1, 3), "B": (2, 3)}
    assert bench.pairs is not None and bench.pairs.n_tests == 1  # untestable pairs: not in Holm
    assert "not tested (no interval on one side)" in bench.rows[1].basis


# ------------------------------------------------------------------ family-wise error by simulation


def familywise_rate(
    kind: str, n: int, *, k: int = 5, p: float = 0.8, reps: int = 800, seed: int = 0
) -> float:
    """Share of replications, all ``k`` entries truly equal, in which any pair is separated.

    ``mcnemar``: every entry answers the same ``n`` examples, each right with the example's own
    probability (examples differ in difficulty, models do not). ``interval``: independent
    binomial accuracies at ``p`` with their Wilson intervals, no predictions. Also run, with
    more settings and replications, by ``benchmarks/sim_leaderboard_ranks.py``.
    """
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(reps):
        if kind == "mcnemar":
            ease = rng.beta(4.0 * p / (1 - p), 4.0, size=n)  # mean p
            correct = rng.random((k, n)) < ease
            matrix = OutcomeMatrix(has=np.ones((k, n), dtype=np.bool_), correct=correct)
            values, lows, highs = correct.mean(axis=1), np.full(k, np.nan), np.full(k, np.nan)
        else:
            counts = rng.binomial(n, p, size=k)
            intervals = [wilson_interval(int(c), n) for c in counts]
            values, matrix = counts / n, None
            lows = np.array([i.low for i in intervals], dtype=np.float64)
            highs = np.array([i.high for i in intervals], dtype=np.float64)
        result = pairwise_tests(
            values, higher_is_better=True, lows=lows, highs=highs, outcomes=matrix, alpha=0.05
        )
        hits += bool(result.better.any())
    return hits / reps


@pytest.mark.parametrize("kind", ["mcnemar", "interval"])
@pytest.mark.parametrize("n", [30, 300])
def test_familywise_error_when_all_entries_are_equal(kind: str, n: int) -> None:
    """Five equal entries, ten pairs: the rate of declaring any pair different stays <= alpha
    (0.06 allows for Monte Carlo error at 800 replications)."""
    assert familywise_rate(kind, n, seed=n) <= 0.06


# ------------------------------------------------------------------ Pareto front coherent with ranks


def test_pareto_front_needs_a_significant_win_to_dominate() -> None:
    # (accuracy, p50 ms): point 1 is worse than point 0 on both axes, but not significantly on
    # either, so it stays on the front; point 2 is significantly slower than point 0.
    points = [(0.90, 10.0), (0.89, 10.2), (0.90, 20.0)]
    assert pareto_front(points, x_higher=True, y_higher=False) == [0]
    x_better = np.zeros((3, 3), dtype=np.bool_)
    y_better = np.zeros((3, 3), dtype=np.bool_)
    y_better[0, 2] = y_better[1, 2] = True
    assert pareto_front(
        points, x_higher=True, y_higher=False, x_better=x_better, y_better=y_better
    ) == [0, 1]


def test_significantly_better_follows_the_benchmark_and_ignores_unranked_entries() -> None:
    members = [
        entry("A", 10.0, ci=(9.9, 10.1), higher=False),
        entry("B", 20.0, ci=(19.9, 20.1), higher=False),
    ]
    bench = rank_benchmark(KEY, members, SiteSettings())
    matrix = bench.significantly_better(["B", "A", "missing"])
    assert matrix.tolist() == [[False, False, False], [True, False, False], [False, False, False]]


# ------------------------------------------------------------------ which metric ranks a table


def _suite_rows(
    name: str, capabilities: SuiteCapabilities | None
) -> list[tuple[Entry, SuiteRecord]]:
    members = []
    for model, (clean, flip) in {"m1": (0.9, 0.2), "m2": (0.8, 0.1)}.items():
        record, _ = make_record(Spec(model, 0.5, n=4))
        suite = SuiteRecord(
            name=name,
            version="1",
            params={},
            status="ok",
            wall_time_s=0.0,
            metrics=[
                Metric(name="clean.accuracy", value=clean, higher_is_better=True),
                Metric(name="typo.flip_rate", value=flip, higher_is_better=False),
            ],
            capabilities=capabilities,
        )
        members.append((Entry(model, None, record, b"", None), suite))  # type: ignore[arg-type]
    return members


def test_a_table_is_ranked_by_the_sites_setting_else_the_declared_headline() -> None:
    key = BenchmarkKey(SPLIT_SHA, "plugin", "1", "0" * 64)
    declared = _suite_rows("plugin", SuiteCapabilities(headline="flip_rate"))
    bench = rank_benchmark(key, declared, SiteSettings())
    assert bench.primary == "typo.flip_rate" and bench.higher_is_better is False
    assert [r.entry.model_name for r in bench.rows] == ["m2", "m1"]
    named = SiteSettings(primary_metrics={"plugin": "clean.accuracy"})
    assert rank_benchmark(key, declared, named).primary == "clean.accuracy"
    # A suite the site does not name is ranked by its declared headline.
    others = SiteSettings(primary_metrics={"accuracy": "accuracy"})
    assert rank_benchmark(key, declared, others).primary == "typo.flip_rate"
    undeclared = _suite_rows("plugin", SuiteCapabilities())
    assert rank_benchmark(key, undeclared, SiteSettings()).primary == "clean.accuracy"


def test_records_without_capabilities_use_the_built_in_suites_headline() -> None:
    key = BenchmarkKey(SPLIT_SHA, "invariance", "1", "0" * 64)
    legacy = _suite_rows("invariance", None)
    assert rank_benchmark(key, legacy, SiteSettings()).primary == "typo.flip_rate"
