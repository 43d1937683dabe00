"""Seeded coverage simulation of the 95% intervals harness reports for accuracy and macro-F1.

Issue 14's target: coverage in [0.93, 0.975] at (accuracy, n) in ``CELLS``. Run
``python -m tests.interval_simulation --reps 5000`` for the table (benchmarks/bench_intervals.py
records it); tests/test_metric_intervals.py runs a smaller, seeded version.

The model. A task is a class distribution w; a classifier at accuracy level p is right with
probability p on every class and spreads its errors evenly over the other classes, so the cell
probabilities are pi_ij = w_i * (p if i == j else (1 - p) / (k - 1)) and its accuracy is p. The
truth is the population macro-F1 of pi over all k classes. An evaluation set of n examples is a
multinomial draw of the n confusion cells; an interval covers when it holds the truth (an
undefined interval does not). The tasks are binary and 3-class, balanced and imbalanced.

Accuracy intervals depend on the number correct alone, so their coverage is computed exactly
(a binomial sum over 0..n correct) instead of simulated; for the percentile bootstrap this is the
exact coverage of harness's seeded ``bootstrap_ci`` as the accuracy suite used to call it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from harness.metrics import classification as mc
from harness.stats import bootstrap_ci, wilson_interval

FloatArray = mc.FloatArray
IntArray = mc.IntArray

TASKS: dict[str, tuple[float, ...]] = {
    "binary balanced": (0.5, 0.5),
    "binary imbalanced": (0.8, 0.2),
    "3-class balanced": (1 / 3, 1 / 3, 1 / 3),
    "3-class imbalanced": (0.6, 0.3, 0.1),
}
CELLS: tuple[tuple[float, int], ...] = ((0.5, 30), (0.85, 200), (0.95, 30), (0.99, 100))
TARGET = (0.93, 0.975)
F1_METHODS = ("posterior", "percentile bootstrap", "percentile bootstrap, zero_division=0")
ACCURACY_METHODS = ("wilson", "percentile bootstrap")
CHUNK_CELLS = 4_000_000  # gamma / multinomial variates per batch (memory, not speed)


@dataclass(frozen=True)
class Row:
    """One coverage figure: a metric's interval method on one task at one (accuracy, n)."""

    metric: str
    task: str
    accuracy: float
    n: int
    method: str
    coverage: float
    reps: int | None  # None: computed exactly

    @property
    def in_target(self) -> bool:
        return TARGET[0] <= self.coverage <= TARGET[1]


def cell_probabilities(shares: tuple[float, ...], accuracy: float) -> FloatArray:
    """(k, k) population confusion probabilities of the module's classifier model."""
    k = len(shares)
    off = (1 - accuracy) / (k - 1)
    given_true = np.full((k, k), off) + np.eye(k) * (accuracy - off)
    return np.asarray(np.asarray(shares)[:, None] * given_true, dtype=np.float64)


def population_f1_macro(pi: FloatArray) -> float:
    """Macro-F1 of the population: every class has mass, so every F1 is defined."""
    return float(mc.precision_recall_f1(pi)[2].mean())


def sample_confusions(pi: FloatArray, n: int, reps: int, rng: np.random.Generator) -> IntArray:
    """(reps, k, k) confusion matrices of ``reps`` evaluation sets of n examples."""
    k = pi.shape[0]
    return np.asarray(rng.multinomial(n, pi.ravel(), size=reps).reshape(reps, k, k), dtype=np.int64)


def _chunks(reps: int, per_rep: int) -> Iterator[slice]:
    step = max(1, CHUNK_CELLS // max(per_rep, 1))
    for start in range(0, reps, step):
        yield slice(start, min(reps, start + step))


def posterior_intervals(cms: IntArray, rng: np.random.Generator, draws: int) -> FloatArray:
    """(reps, 2): the accuracy suite's macro-F1 interval (``mc.f1_macro_intervals``)."""
    per_rep = draws * cms.shape[-1] ** 2
    return np.concatenate([mc.f1_macro_intervals(cms[s], draws=draws, rng=rng) for s in _chunks(len(cms), per_rep)])


def bootstrap_intervals(cms: IntArray, rng: np.random.Generator, n_boot: int, *, zero_division_nan: bool = True) -> FloatArray:
    """(reps, 2) percentile-bootstrap intervals of macro-F1, as ``stats.bootstrap_ci`` makes them.

    Resampling n examples with replacement is a multinomial draw of the confusion cells at the
    observed shares. ``zero_division_nan=False`` is the old definition (undefined F1 = 0, plain
    mean); undefined resamples are dropped and over half undefined gives no interval.
    """
    out = []
    for s in _chunks(len(cms), n_boot * cms.shape[-1] ** 2):
        part = cms[s]
        n = part.sum(axis=(1, 2))[0]
        shares = part.reshape(len(part), -1) / n
        res = rng.multinomial(n, shares, size=(n_boot, len(part))).reshape(n_boot, len(part), *part.shape[1:])
        f1 = mc.precision_recall_f1(res)[2]
        stat = mc.macro_average(f1) if zero_division_nan else np.nan_to_num(f1, nan=0.0).mean(axis=-1)
        enough = np.isfinite(stat).sum(axis=0) >= n_boot / 2
        with np.errstate(invalid="ignore"):
            bounds = np.nanquantile(stat, [0.025, 0.975], axis=0).T
        out.append(np.where(enough[:, None], bounds, np.nan))
    return np.concatenate(out)


def covered(intervals: FloatArray, truth: float) -> float:
    """Share of intervals holding the truth; an undefined (NaN) interval counts as a miss."""
    with np.errstate(invalid="ignore"):
        return float(np.mean((intervals[:, 0] <= truth) & (truth <= intervals[:, 1])))


def f1_coverage(shares: tuple[float, ...], accuracy: float, n: int, method: str, *, reps: int, seed: int, draws: int = mc.F1_DRAWS, n_boot: int = 1000) -> float:
    """Simulated coverage of one macro-F1 interval method (``F1_METHODS``) at one cell."""
    rng = np.random.default_rng(seed)
    pi = cell_probabilities(shares, accuracy)
    cms = sample_confusions(pi, n, reps, rng)
    if method == "posterior":
        intervals = posterior_intervals(cms, rng, draws)
    elif method.startswith("percentile bootstrap"):
        intervals = bootstrap_intervals(cms, rng, n_boot, zero_division_nan="zero_division=0" not in method)
    else:
        raise ValueError(f"unknown macro-F1 interval method {method!r} (expected one of {F1_METHODS})")
    return covered(intervals, population_f1_macro(pi))


def accuracy_interval(method: str, *, n_boot: int = 1000, seed: int = 0) -> Callable[[int, int], tuple[float | None, float | None]]:
    """The (correct, n) -> interval function of an accuracy method (``ACCURACY_METHODS``)."""
    if method == "wilson":
        return lambda k, n: (lambda ci: (ci.low, ci.high))(wilson_interval(k, n))
    if method == "percentile bootstrap":

        def boot(k: int, n: int) -> tuple[float | None, float | None]:
            correct = np.arange(n) < k
            ci = bootstrap_ci(lambda i: float(correct[i].mean()), n, n_boot=n_boot, seed=seed)
            return ci.low, ci.high

        return boot
    raise ValueError(f"unknown accuracy interval method {method!r} (expected one of {ACCURACY_METHODS})")


def exact_accuracy_coverage(accuracy: float, n: int, interval: Callable[[int, int], tuple[float | None, float | None]]) -> float:
    """Exact coverage: sum of Binomial(n, accuracy) probabilities of the counts whose interval holds it."""
    from scipy.stats import binom

    total = 0.0
    for k in range(n + 1):
        low, high = interval(k, n)
        if low is not None and high is not None and low <= accuracy <= high:
            total += float(binom.pmf(k, n, accuracy))
    return total


def coverage_table(*, reps: int, seed: int = 0, draws: int = mc.F1_DRAWS, n_boot: int = 1000, f1_methods: tuple[str, ...] = F1_METHODS) -> list[Row]:
    """Every cell of the grid: accuracy exactly, macro-F1 by ``reps`` seeded replications."""
    rows = [
        Row("accuracy", "any", p, n, method, exact_accuracy_coverage(p, n, accuracy_interval(method, n_boot=n_boot)), None)
        for method in ACCURACY_METHODS
        for p, n in CELLS
    ]
    for t, (task, shares) in enumerate(TASKS.items()):
        for c, (p, n) in enumerate(CELLS):
            for method in f1_methods:
                cov = f1_coverage(shares, p, n, method, reps=reps, seed=seed + 100 * t + c, draws=draws, n_boot=n_boot)
                rows.append(Row("f1_macro", task, p, n, method, cov, reps))
    return rows


def format_table(rows: list[Row]) -> str:
    """Plain-text table, one line per row, target misses marked."""
    lines = [f"{'metric':9} {'task':19} {'p':>5} {'n':>4}  {'method':39} {'coverage':>8}"]
    for r in rows:
        mark = "" if r.in_target else "  outside [0.93, 0.975]"
        lines.append(f"{r.metric:9} {r.task:19} {r.accuracy:5.2f} {r.n:4d}  {r.method:39} {r.coverage:8.4f}{mark}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=2000, help="replications per macro-F1 cell")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--draws", type=int, default=mc.F1_DRAWS, help="posterior draws per interval")
    args = parser.parse_args()
    print(format_table(coverage_table(reps=args.reps, seed=args.seed, draws=args.draws)))


if __name__ == "__main__":
    main()
