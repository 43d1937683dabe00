"""Ranks with family-wise error control, mean win rate and the Pareto front.

Within one benchmark (same split, suite, version, parameters) rows are listed by the ranking
metric in its recorded direction. Every pair of rows is tested (``harness.leaderboard.pairwise``:
paired exact McNemar on shared examples for correctness rates, a z-test from the recorded 95%
intervals otherwise), the benchmark's p-values are Holm-adjusted together, and each row gets a
rank interval: best = 1 + rows significantly better, worst = n − rows significantly worse. With
probability >= 1 − alpha every interval holds the true rank. Ties do not chain: two rows
separate exactly when their own adjusted test says so. A row without an interval (and without
shared predictions) is never separated: we would rather show a wide rank than invent an order.

The mean win rate counts, per benchmark, a significant win as 1, an unseparated pair as one
half and a significant loss as 0, so it equals (n − midpoint of the rank interval) / (n − 1).
The Pareto front is significance-aware in the same way: a point is dominated only by one that
is at least as good on both axes and significantly better on one of them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from harness.leaderboard.entries import BenchmarkKey, Entry, SiteSettings, benchmark_key
from harness.leaderboard.pairwise import (
    MCNEMAR,
    UNTESTED,
    BoolArray,
    OutcomeMatrix,
    PairwiseResult,
    pairwise_tests,
)
from harness.records import SuiteCapabilities, SuiteRecord

MAX_NAMED = 3  # rows named in a row's evidence before "and N more"


@dataclass(frozen=True)
class Row:
    entry: Entry
    suite: SuiteRecord
    value: float | None
    rank_best: int | None = None  # 1 + rows significantly better
    rank_worst: int | None = None  # n − rows significantly worse
    basis: str = ""  # the evidence behind the rank, in words
    win_rate: float | None = None

    @property
    def ranked(self) -> bool:
        return self.rank_best is not None and self.rank_worst is not None

    @property
    def uncertain(self) -> bool:
        """True when the data leave more than one rank open for this row."""
        return self.ranked and self.rank_best != self.rank_worst


@dataclass(frozen=True)
class Benchmark:
    key: BenchmarkKey
    primary: str
    higher_is_better: bool | None
    columns: list[str]  # scored metric names shown in the overview, primary first
    rows: list[Row] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)  # every metric name in the table's records
    pairs: PairwiseResult | None = field(default=None, compare=False)  # over ``ranked_ids``
    ranked_ids: tuple[str, ...] = ()  # entry ids of the ranked rows, in table order

    def significantly_better(self, entry_ids: Sequence[str]) -> BoolArray:
        """out[a, b]: ``entry_ids[a]`` is significantly better than ``entry_ids[b]`` on the
        ranking metric (False for entries this table does not rank)."""
        k = len(entry_ids)
        out = np.zeros((k, k), dtype=np.bool_)
        if self.pairs is None:
            return out
        where = {e: i for i, e in enumerate(self.ranked_ids)}
        pos = np.array([where.get(e, -1) for e in entry_ids], dtype=np.int64)
        ok = np.flatnonzero(pos >= 0)
        out[np.ix_(ok, ok)] = self.pairs.better[np.ix_(pos[ok], pos[ok])]
        return out


def group_benchmarks(
    entries: Sequence[Entry],
) -> dict[BenchmarkKey, list[tuple[Entry, SuiteRecord]]]:
    groups: dict[BenchmarkKey, list[tuple[Entry, SuiteRecord]]] = defaultdict(list)
    for entry in entries:
        for suite in entry.record.suites:
            if suite.status == "ok":
                groups[benchmark_key(entry.record, suite.name)].append((entry, suite))
    return dict(
        sorted(
            groups.items(),
            key=lambda kv: (kv[0].suite, kv[0].version, kv[0].params_sha256, kv[0].split_sha256),
        )
    )


def scored_metrics(suites: Sequence[SuiteRecord]) -> list[str]:
    """Metric names with a direction, in first-seen order across the table's records."""
    seen: dict[str, None] = {}
    for suite in suites:
        for metric in suite.metrics:
            if metric.higher_is_better is not None:
                seen.setdefault(metric.name, None)
    return list(seen)


def all_metrics(suites: Sequence[SuiteRecord]) -> list[str]:
    seen: dict[str, None] = {}
    for suite in suites:
        for metric in suite.metrics:
            seen.setdefault(metric.name, None)
    return list(seen)


def _direction(suites: Sequence[SuiteRecord], name: str) -> bool | None:
    for suite in suites:
        metric = suite.metric(name)
        if metric is not None and metric.higher_is_better is not None:
            return metric.higher_is_better
    return None


def primary_metric(
    suite_name: str, columns: list[str], settings: SiteSettings, caps: SuiteCapabilities
) -> str | None:
    """The metric that ranks a table: the site's setting for the suite, else the suite's
    declared headline, else its first scored metric."""
    wanted = (settings.primary_metrics or {}).get(suite_name)
    if wanted in columns:
        return wanted
    return caps.headline_metric(columns) or (columns[0] if columns else None)


def outcome_matrix(entries: Sequence[Entry]) -> OutcomeMatrix | None:
    """Correctness of ``entries`` over the union of their example ids (None if none has any)."""
    if not any(e.outcomes and e.outcomes.ids for e in entries):
        return None
    columns = {
        i: k
        for k, i in enumerate(sorted({i for e in entries if e.outcomes for i in e.outcomes.ids}))
    }
    has = np.zeros((len(entries), len(columns)), dtype=np.bool_)
    correct = np.zeros_like(has)
    for row, entry in enumerate(entries):
        if entry.outcomes:
            has[row, [columns[i] for i in entry.outcomes.ids]] = True
            correct[row, [columns[i] for i in entry.outcomes.correct if i in columns]] = True
    return OutcomeMatrix(has=has, correct=correct & has)


def _pair_text(pairs: PairwiseResult, i: int, j: int, name: str) -> str:
    """How row i compares with row j (named ``name``), in words."""
    if pairs.method[i, j] == UNTESTED:
        return f"vs {name}: not tested (no interval on one side)"
    verdict = "separated" if pairs.better[i, j] or pairs.better[j, i] else "not separated"
    test = (
        f"paired exact McNemar p={pairs.p[i, j]:.3g} on {pairs.shared[i, j]} shared examples"
        if pairs.method[i, j] == MCNEMAR
        else f"95%-interval z-test p={pairs.p[i, j]:.3g}"
    )
    return f"vs {name}: {test}, Holm {pairs.adjusted[i, j]:.3g}: {verdict}"


def _names(rows: Sequence[Row], picks: Sequence[int]) -> str:
    if not picks:
        return "none"
    shown = ", ".join(rows[k].entry.model_name for k in picks[:MAX_NAMED])
    return shown + (f" and {len(picks) - MAX_NAMED} more" if len(picks) > MAX_NAMED else "")


def _evidence(rows: Sequence[Row], pairs: PairwiseResult, i: int) -> str:
    """The row's test against the row above, then whom it significantly beats and loses to
    (the pairs behind its rank interval; the Holm family is stated once per table)."""
    above = (
        "top of the table" if i == 0 else _pair_text(pairs, i, i - 1, rows[i - 1].entry.model_name)
    )
    beats = [int(k) for k in np.flatnonzero(pairs.better[i])]
    beaten = [int(k) for k in np.flatnonzero(pairs.better[:, i])]
    return f"{above}; beats {_names(rows, beats)}; beaten by {_names(rows, beaten)}"


def _ranked_rows(
    rows: list[Row], primary: str, higher: bool, settings: SiteSettings
) -> tuple[list[Row], PairwiseResult]:
    """Rank rows that have a value (already in table order) from their pairwise tests."""

    def bound(row: Row, attr: str) -> float:
        metric = row.suite.metric(primary)
        got = None if metric is None else getattr(metric, attr)
        return float("nan") if got is None else float(got)

    paired = primary in settings.paired_metrics
    pairs = pairwise_tests(
        np.array([r.value for r in rows], dtype=np.float64),
        higher_is_better=higher,
        lows=np.array([bound(r, "ci_low") for r in rows]),
        highs=np.array([bound(r, "ci_high") for r in rows]),
        outcomes=outcome_matrix([r.entry for r in rows]) if paired else None,
        alpha=settings.alpha,
    )
    best, worst, n = pairs.rank_best, pairs.rank_worst, len(rows)
    out = []
    for i, r in enumerate(rows):
        rate = (n - (best[i] + worst[i]) / 2) / (n - 1) if n > 1 else None
        out.append(
            Row(
                r.entry,
                r.suite,
                r.value,
                int(best[i]),
                int(worst[i]),
                _evidence(rows, pairs, i),
                rate,
            )
        )
    return out, pairs


def rank_benchmark(
    key: BenchmarkKey, members: Sequence[tuple[Entry, SuiteRecord]], settings: SiteSettings
) -> Benchmark:
    """One table: rows in value order, each with its family-wise rank interval."""
    suites = [s for _, s in members]
    columns = scored_metrics(suites)
    primary = primary_metric(key.suite, columns, settings, suites[0].caps())
    if primary is None:
        rows = [
            Row(e, s, None, basis="no scored metric")
            for e, s in sorted(members, key=lambda m: m[0].entry_id)
        ]
        return Benchmark(key, "", None, [], rows, all_metrics(suites))
    columns = ([primary] + [c for c in columns if c != primary])[: settings.max_columns]
    higher = _direction(suites, primary)
    sign = -1.0 if higher else 1.0

    def value_of(suite: SuiteRecord) -> float | None:
        metric = suite.metric(primary)
        return None if metric is None else metric.value

    rows = [Row(e, s, value_of(s)) for e, s in members]
    rows.sort(
        key=lambda r: (
            (1, 0.0, r.entry.entry_id) if r.value is None else (0, sign * r.value, r.entry.entry_id)
        )
    )
    valued = [r for r in rows if r.value is not None]
    missing = [
        Row(r.entry, r.suite, None, basis=f"no value for {primary}")
        for r in rows
        if r.value is None
    ]
    ranked, pairs = _ranked_rows(valued, primary, bool(higher), settings) if valued else ([], None)
    return Benchmark(
        key,
        primary,
        higher,
        columns,
        ranked + missing,
        all_metrics(suites),
        pairs,
        tuple(r.entry.entry_id for r in ranked),
    )


def rank_all(entries: Sequence[Entry], settings: SiteSettings) -> list[Benchmark]:
    return [rank_benchmark(k, m, settings) for k, m in group_benchmarks(entries).items()]


def mean_win_rates(benchmarks: Sequence[Benchmark]) -> dict[str, tuple[float, int]]:
    """entry id -> (mean of per-benchmark win rates, number of benchmarks behind it)."""
    rates: dict[str, list[float]] = defaultdict(list)
    for bench in benchmarks:
        for row in bench.rows:
            if row.win_rate is not None:
                rates[row.entry.entry_id].append(row.win_rate)
    return {k: (sum(v) / len(v), len(v)) for k, v in sorted(rates.items())}


def pareto_front(
    points: Sequence[tuple[float, float]],
    *,
    x_higher: bool,
    y_higher: bool,
    x_better: BoolArray | None = None,
    y_better: BoolArray | None = None,
) -> list[int]:
    """Indices of the points no other point dominates.

    j dominates i when it is at least as good on both axes and better on one; with
    ``x_better`` / ``y_better`` (out[j, i]: j significantly better than i on that axis, as
    ``Benchmark.significantly_better`` gives) "better" must also be significant, so the front
    keeps every point the data cannot show to be beaten. Equal points never dominate each other.
    """
    if not points:
        return []
    xy = np.asarray(points, dtype=np.float64)
    x = xy[:, 0] * (1.0 if x_higher else -1.0)
    y = xy[:, 1] * (1.0 if y_higher else -1.0)
    n = len(points)
    sig_x = (
        np.ones((n, n), dtype=np.bool_)
        if x_better is None
        else np.asarray(x_better, dtype=np.bool_)
    )
    sig_y = (
        np.ones((n, n), dtype=np.bool_)
        if y_better is None
        else np.asarray(y_better, dtype=np.bool_)
    )
    at_least = (x[:, None] >= x[None, :]) & (y[:, None] >= y[None, :])
    strictly = ((x[:, None] > x[None, :]) & sig_x) | ((y[:, None] > y[None, :]) & sig_y)
    dominated = (at_least & strictly).any(axis=0)
    return [int(i) for i in np.flatnonzero(~dominated)]
