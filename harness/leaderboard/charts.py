"""Which numbers go into which chart: joins across benchmarks by entry, never across definitions.

A chart that pairs two suites (accuracy vs attack success rate, accuracy vs p50 latency) takes
each axis from one benchmark — the most populated one holding that metric — and plots only the
entries present in both, so every point compares like with like. The Pareto front uses the
same significance as the ranks: a point is dominated only by one at least as good on both axes
and significantly better (Holm-adjusted pairwise test of its table) on one of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from harness.leaderboard.entries import SiteSettings
from harness.leaderboard.pairwise import BoolArray
from harness.leaderboard.ranking import Benchmark, pareto_front
from harness.records import Metric
from harness.render.html import Markup
from harness.render.plots import Interval, Point, intervals, scatter

MAX_INTERVAL_ROWS = 40  # an interval chart beyond this is unreadable; the table has the rest

Pick = Callable[[str, str], bool]  # (suite name, metric name) -> wanted


def find(benchmarks: Sequence[Benchmark], pick: Pick) -> tuple[Benchmark, str] | None:
    found = [(b, m) for b in benchmarks for m in b.metrics if pick(b.key.suite, m)]
    if not found:
        return None
    return min(found, key=lambda bm: (-len(bm[0].rows), bm[0].key.slug, bm[1]))


def _metrics(bench: Benchmark, name: str) -> dict[str, tuple[str, Metric]]:
    out = {}
    for row in bench.rows:
        metric = row.suite.metric(name)
        if metric is not None and metric.value is not None:
            out[row.entry.entry_id] = (row.entry.model_name, metric)
    return out


def _ci(metric: Metric) -> tuple[float, float] | None:
    return (
        None if metric.ci_low is None or metric.ci_high is None else (metric.ci_low, metric.ci_high)
    )


def is_accuracy(suite: str, metric: str) -> bool:
    return suite == "accuracy" and metric == "accuracy"


def _named(settings: SiteSettings, suite: str, fallback: str) -> Pick:
    wanted = (settings.primary_metrics or {}).get(suite, fallback)
    return lambda s, m: s == suite and m == wanted


def paired_scatter(
    chart_id: str,
    benchmarks: Sequence[Benchmark],
    x_pick: Pick,
    y_pick: Pick,
    *,
    title: str,
    pareto: bool = False,
) -> Markup:
    x_found, y_found = find(benchmarks, x_pick), find(benchmarks, y_pick)
    if x_found is None or y_found is None:
        return Markup("")
    xs, ys = _metrics(*x_found), _metrics(*y_found)
    shared = sorted(set(xs) & set(ys))
    if not shared:
        return Markup("")
    points = [
        Point(xs[e][0], xs[e][1].value or 0.0, ys[e][1].value or 0.0, _ci(xs[e][1]), _ci(ys[e][1]))
        for e in shared
    ]
    front: list[int] = []
    if pareto:
        x_hi = xs[shared[0]][1].higher_is_better is not False
        y_hi = ys[shared[0]][1].higher_is_better is not False
        front = pareto_front(
            [(p.x, p.y) for p in points],
            x_higher=x_hi,
            y_higher=y_hi,
            x_better=_separations(x_found, shared),
            y_better=_separations(y_found, shared),
        )
    x_label = f"{x_found[0].key.suite}: {x_found[1]}"
    y_label = f"{y_found[0].key.suite}: {y_found[1]}"
    return scatter(chart_id, points, title=title, x_label=x_label, y_label=y_label, front=front)


def _separations(found: tuple[Benchmark, str], entry_ids: list[str]) -> BoolArray | None:
    """The table's significant pairs when the axis is its ranking metric; otherwise None (any
    difference in value counts, since no test was run on that metric)."""
    bench, metric = found
    return bench.significantly_better(entry_ids) if metric == bench.primary else None


def accuracy_vs_asr(benchmarks: Sequence[Benchmark], settings: SiteSettings) -> Markup:
    asr = _named(settings, "robustness", "pwws.attack_success_rate")
    return paired_scatter(
        "c-acc-asr", benchmarks, is_accuracy, asr, title="Accuracy vs attack success rate"
    )


def accuracy_vs_latency(benchmarks: Sequence[Benchmark], settings: SiteSettings) -> Markup:
    p50 = _named(settings, "latency", "single_stream.p50_ms")
    return paired_scatter(
        "c-acc-p50",
        benchmarks,
        is_accuracy,
        p50,
        title="Accuracy vs p50 latency (Pareto front dashed: models no other model "
        "significantly beats on one axis while matching the other)",
        pareto=True,
    )


def metric_intervals(chart_id: str, bench: Benchmark, name: str, *, title: str) -> Markup:
    """Models in table order, each metric value with its interval."""
    rows = []
    for row in bench.rows[:MAX_INTERVAL_ROWS]:
        metric = row.suite.metric(name)
        if metric is not None and metric.value is not None:
            rows.append(Interval(row.entry.model_name, metric.value, metric.ci_low, metric.ci_high))
    return intervals(chart_id, rows, title=title, x_label=name)


def group_gaps(benchmarks: Sequence[Benchmark], settings: SiteSettings) -> list[Markup]:
    charts = []
    for bench in benchmarks:
        if bench.key.suite != settings.gap_suite:
            continue
        gaps = [m for m in bench.metrics if any(p in m for p in settings.gap_patterns)]
        for n, name in enumerate(gaps):
            chart = metric_intervals(
                f"c-gap-{bench.key.slug}-{n}", bench, name, title=f"Group gap: {name}"
            )
            if chart:
                charts.append(chart)
    return charts
