"""Significance-aware ranking, mean win rate and the Pareto front.

Within one benchmark (same split, suite, version, parameters) rows are ordered by the primary
metric in its recorded direction. Walking down the order, a row that cannot be separated from
the row above shares its rank: the two form (or extend) a tie group. "Separated" means a paired
exact McNemar test on per-example correctness at ``alpha`` when the metric is a correctness rate
and both entries carry predictions on shared examples; otherwise disjoint 95% intervals. A row
without an interval cannot be separated — we would rather show a tie than invent an order.
Chains are intended: if B ties A and C ties B, all three share A's rank even when A and C differ,
because no cut between adjacent rows is supported by the data.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from harness.leaderboard.entries import BenchmarkKey, Entry, SiteSettings, benchmark_key
from harness.records import Metric, SuiteRecord
from harness.stats import mcnemar_exact


@dataclass(frozen=True)
class Row:
    entry: Entry
    suite: SuiteRecord
    value: float | None
    rank: int | None = None
    tie_group: int | None = None  # 0-based index of the tie group within the table
    tied: bool = False  # True when the group has more than one member
    basis: str = ""  # how this row was (not) separated from the row above
    win_rate: float | None = None


@dataclass(frozen=True)
class Benchmark:
    key: BenchmarkKey
    primary: str
    higher_is_better: bool | None
    columns: list[str]  # scored metric names shown in the overview, primary first
    rows: list[Row] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)  # every metric name in the table's records


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


def _correct_sets(entry: Entry) -> tuple[frozenset[str], frozenset[str]] | None:
    if not entry.outcomes or not entry.outcomes.ids:
        return None
    return entry.outcomes.ids, entry.outcomes.correct


def separate(
    above: Row,
    below: Row,
    metric: str,
    settings: SiteSettings,
    correct: dict[str, tuple[frozenset[str], frozenset[str]] | None],
) -> tuple[bool, str]:
    """Whether ``below`` is distinguishable from ``above``, and the evidence, in words."""
    if above.value == below.value:
        return False, "equal value"
    if metric in settings.paired_metrics:
        a, b = correct.get(above.entry.entry_id), correct.get(below.entry.entry_id)
        if a is not None and b is not None:
            shared = a[0] & b[0]
            if shared:
                a_only = len((a[1] - b[1]) & shared)
                b_only = len((b[1] - a[1]) & shared)
                p = mcnemar_exact(a_only, b_only)
                verdict = p < settings.alpha
                return (
                    verdict,
                    f"paired exact McNemar p={p:.3g} on {len(shared)} shared examples (alpha={settings.alpha:g})",
                )
    ia, ib = _interval(above.suite.metric(metric)), _interval(below.suite.metric(metric))
    if ia is None or ib is None:
        return False, "no interval on one side: not separable"
    disjoint = ia[1] < ib[0] or ib[1] < ia[0]
    return disjoint, "95% intervals disjoint" if disjoint else "95% intervals overlap"


def _interval(metric: Metric | None) -> tuple[float, float] | None:
    if metric is None or metric.ci_low is None or metric.ci_high is None:
        return None
    return metric.ci_low, metric.ci_high


def primary_metric(suite_name: str, columns: list[str], settings: SiteSettings) -> str | None:
    wanted = settings.primary_metrics.get(suite_name)
    if wanted is not None and wanted in columns:
        return wanted
    return columns[0] if columns else None


def rank_benchmark(
    key: BenchmarkKey,
    members: Sequence[tuple[Entry, SuiteRecord]],
    settings: SiteSettings,
    correct: dict[str, tuple[frozenset[str], frozenset[str]] | None],
) -> Benchmark:
    suites = [s for _, s in members]
    columns = scored_metrics(suites)
    primary = primary_metric(key.suite, columns, settings)
    if primary is None:
        rows = [
            Row(e, s, None, basis="no scored metric")
            for e, s in sorted(members, key=lambda m: m[0].entry_id)
        ]
        return Benchmark(key, "", None, [], rows, all_metrics(suites))
    columns = [primary] + [c for c in columns if c != primary]
    columns = columns[: settings.max_columns]
    higher = _direction(suites, primary)
    sign = -1.0 if higher else 1.0

    def value_of(suite: SuiteRecord) -> float | None:
        metric = suite.metric(primary)
        return None if metric is None else metric.value

    def order(member: tuple[Entry, SuiteRecord]) -> tuple[int, float, str]:
        value = value_of(member[1])
        return (
            (1, 0.0, member[0].entry_id) if value is None else (0, sign * value, member[0].entry_id)
        )

    ranked: list[Row] = []
    group = -1
    group_start_rank = 0
    for position, (entry, suite) in enumerate(sorted(members, key=order), start=1):
        row = Row(entry, suite, value_of(suite))
        if row.value is None:
            ranked.append(Row(entry, suite, None, basis=f"no value for {primary}"))
            continue
        if ranked and ranked[-1].value is not None:
            split, basis = separate(ranked[-1], row, primary, settings, correct)
        else:
            split, basis = True, "top of the table"
        if split:
            group += 1
            group_start_rank = position
        ranked.append(Row(entry, suite, row.value, group_start_rank, group, False, basis))
    sizes: dict[int, int] = defaultdict(int)
    for r in ranked:
        if r.tie_group is not None:
            sizes[r.tie_group] += 1
    ranked = [
        Row(
            r.entry,
            r.suite,
            r.value,
            r.rank,
            r.tie_group,
            r.tie_group is not None and sizes[r.tie_group] > 1,
            r.basis,
        )
        for r in ranked
    ]
    return Benchmark(key, primary, higher, columns, _with_win_rates(ranked), all_metrics(suites))


def _with_win_rates(rows: list[Row]) -> list[Row]:
    """Share of the other ranked rows this row beats on rank; a shared rank counts one half."""
    counts = Counter(r.rank for r in rows if r.rank is not None)
    total = sum(counts.values())
    worse_than: dict[int, int] = {}  # rank -> number of ranked rows strictly below it
    below = total
    for rank in sorted(counts):
        below -= counts[rank]
        worse_than[rank] = below
    out = []
    for r in rows:
        rate = None
        if r.rank is not None and total > 1:
            rate = (worse_than[r.rank] + 0.5 * (counts[r.rank] - 1)) / (total - 1)
        out.append(Row(r.entry, r.suite, r.value, r.rank, r.tie_group, r.tied, r.basis, rate))
    return out


def rank_all(entries: Sequence[Entry], settings: SiteSettings) -> list[Benchmark]:
    correct = {e.entry_id: _correct_sets(e) for e in entries}
    return [rank_benchmark(k, m, settings, correct) for k, m in group_benchmarks(entries).items()]


def mean_win_rates(benchmarks: Sequence[Benchmark]) -> dict[str, tuple[float, int]]:
    """entry id -> (mean of per-benchmark win rates, number of benchmarks behind it)."""
    rates: dict[str, list[float]] = defaultdict(list)
    for bench in benchmarks:
        for row in bench.rows:
            if row.win_rate is not None:
                rates[row.entry.entry_id].append(row.win_rate)
    return {k: (sum(v) / len(v), len(v)) for k, v in sorted(rates.items())}


def pareto_front(
    points: Sequence[tuple[float, float]], *, x_higher: bool, y_higher: bool
) -> list[int]:
    """Indices of points no other point dominates (at least as good on both axes, better on one)."""
    sx = 1.0 if x_higher else -1.0
    sy = 1.0 if y_higher else -1.0
    scored = sorted(range(len(points)), key=lambda i: (-sx * points[i][0], -sy * points[i][1]))
    front: list[int] = []
    best_y = float("-inf")
    last: tuple[float, float] | None = None
    for i in scored:
        y = sy * points[i][1]
        # Sorted best-first on x; a point is on the front when its y beats every better-x point
        # (or it equals the last front point exactly: equal points do not dominate each other).
        if y > best_y or points[i] == last:
            front.append(i)
            best_y = max(best_y, y)
            last = points[i]
    return sorted(front)
