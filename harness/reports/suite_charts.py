"""The charts a suite declares (``suite.caps().charts``), drawn from its record and example rows.

A chart is named by its kind. Two kinds serve any suite: ``metric_bars`` (the named metrics with
their 95% intervals) and ``outcome_counts`` (a per-example outcome column counted per group
column). Each built-in suite's own charts are registered under its name, since they read that
suite's ``details``. Suites evolve independently of the report, so every renderer reads shapes
defensively: a missing key draws nothing, and an unexpected shape is reported in the document
instead of failing the whole report. A suite without charts still gets its metric table.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from harness.records import ChartSpec, Metric, SuiteRecord
from harness.render.charts import Bar, bar_chart, confusion_matrix, reliability_diagram
from harness.render.html import Markup, el
from harness.render.numbers import MISSING, is_number

Rows = list[dict[str, Any]]
ChartFn = Callable[[SuiteRecord, ChartSpec, Rows], list[Markup]]

PERCENTILE = re.compile(r"(^|[._])p(50|90|95|99|99\.9)($|[._])")
MSG_UNKNOWN_KIND = (
    "No chart of kind {kind!r} is known to this report; the metric table above is complete."
)

# Chart kind -> renderer. Built-in suites' kinds read their ``details`` (so the report does not
# repeat those as a raw table); the generic kinds read metrics and rows only.
KINDS: dict[str, ChartFn] = {}
DETAILS_KINDS: set[str] = set()


def chart_kind(kind: str, *, reads_details: bool = False) -> Callable[[ChartFn], ChartFn]:
    """Register a renderer for ``ChartSpec(kind=...)`` where it is defined."""

    def register(fn: ChartFn) -> ChartFn:
        KINDS[kind] = fn
        if reads_details:
            DETAILS_KINDS.add(kind)
        return fn

    return register


def draws_details(suite: SuiteRecord) -> bool:
    """True when one of the suite's charts is drawn from its ``details`` (shown, then, as charts
    rather than as the raw 'Details (as recorded)' table)."""
    return any(spec.kind in DETAILS_KINDS for spec in suite.caps().charts)


def figure(chart: Markup, caption: str | None = None) -> Markup:
    return el("figure", chart, el("figcaption", caption) if caption else None)


def metric_bars(
    metrics: Iterable[Metric],
    *,
    title: str,
    unit_interval: bool = False,
    dots: bool = False,
    caption: str | None = None,
    by_family: bool = False,
    with_ci_only: bool = False,
) -> list[Markup]:
    """Bar charts over the given metrics: one per unit (never mixing units on one axis) and,
    with ``by_family``, one per first name component (``groups.*``, ``templates.*``), whose
    prefix then leaves the bar labels so the informative end of each name shows."""
    charts: dict[tuple[str, str], list[Metric]] = {}
    for metric in metrics:
        if not is_number(metric.value) or (with_ci_only and metric.ci_low is None):
            continue
        family = metric.name.split(".", 1)[0] if by_family and "." in metric.name else ""
        charts.setdefault((family, metric.unit or ""), []).append(metric)
    units = {unit for _, unit in charts}
    out = []
    for (family, unit), group in sorted(charts.items()):
        cut = len(family) + 1 if family else 0
        bars = [Bar(m.name[cut:], m.value, m.ci_low, m.ci_high) for m in group]
        heading = title + (f": {family}" if family else "")
        heading += f" ({unit})" if unit and len(units) > 1 else ""
        chart = bar_chart(
            bars,
            title=heading,
            unit_interval=unit_interval,
            dots=dots,
            unit=f" {unit}" if unit and dots else "",
        )
        out.append(figure(chart, caption))
    return out


def _having(suite: SuiteRecord, *words: str) -> list[Metric]:
    return [m for m in suite.metrics if any(w in m.name.lower() for w in words)]


CI_CAPTION = "Whiskers are 95% confidence intervals as recorded by the suite."


@chart_kind("accuracy", reads_details=True)
def accuracy_charts(suite: SuiteRecord, spec: ChartSpec, rows: Rows) -> list[Markup]:
    details = suite.details
    out: list[Markup] = []
    bins = details.get("calibration_bins")
    if isinstance(bins, list) and bins:
        shaped = [
            (
                float(b["bin_low"]),
                float(b["bin_high"]),
                int(b.get("count") or 0),
                b.get("mean_confidence"),
                b.get("accuracy"),
            )
            for b in bins
        ]
        out.append(
            figure(
                reliability_diagram(shaped),
                "Bars: accuracy per confidence bin; red ticks: mean confidence in the bin; "
                "dashed: perfect calibration.",
            )
        )
    matrix, labels = details.get("confusion_matrix"), details.get("label_names")
    if isinstance(matrix, list) and matrix:
        names = (
            [str(n) for n in labels]
            if isinstance(labels, list)
            else [str(i) for i in range(len(matrix))]
        )
        out.append(
            figure(
                confusion_matrix(matrix, names),
                "Rows are true labels, columns predicted labels; shade is the share of the row.",
            )
        )
    groups = details.get("groups")
    if isinstance(groups, Mapping):
        for column, entries in sorted(groups.items()):
            if not isinstance(entries, list) or not entries:
                continue
            bars = [
                Bar(
                    f"{column}={e['group']} (n={e.get('n')})",
                    e.get("accuracy"),
                    e.get("ci_low"),
                    e.get("ci_high"),
                )
                for e in entries
            ]
            out.append(
                figure(
                    bar_chart(bars, title=f"Accuracy by {column}", unit_interval=True),
                    CI_CAPTION,
                )
            )
    return out


@chart_kind("robustness", reads_details=True)
def robustness_charts(suite: SuiteRecord, spec: ChartSpec, rows: Rows) -> list[Markup]:
    out = metric_bars(
        _having(suite, "success"),
        title="Attack success rate by recipe",
        unit_interval=True,
        caption=CI_CAPTION,
    )
    out += metric_bars(
        _having(suite, "under_attack", "clean_accuracy"),
        title="Clean accuracy and accuracy under attack",
        unit_interval=True,
        caption=CI_CAPTION,
    )
    out += invariance_charts(suite, spec, rows)
    outcome = next((k for k in ("result", "result_type") if any(k in r for r in rows)), None)
    if outcome is not None:
        out.append(outcome_table(rows, "recipe", outcome))
    from harness.reports.adversarial import rejected_examples

    out += rejected_examples(rows)  # rejected adversarial examples and why
    return out


@chart_kind("invariance", reads_details=True)
def invariance_charts(suite: SuiteRecord, spec: ChartSpec, rows: Rows) -> list[Markup]:
    return metric_bars(
        _having(suite, "flip"),
        title="Prediction flip rate by perturbation",
        unit_interval=True,
        caption=CI_CAPTION,
    )


@chart_kind("bias", reads_details=True)
def bias_charts(suite: SuiteRecord, spec: ChartSpec, rows: Rows) -> list[Markup]:
    out = metric_bars(
        [m for m in _having(suite, "difference", "gap", "delta") if "ratio" not in m.name],
        title="Group gaps",
        caption=CI_CAPTION + " A gap whose interval excludes 0 is a measured difference.",
        by_family=True,
        with_ci_only=True,
    )
    out += metric_bars(
        _having(suite, "positive_rate", "selection_rate", "mean_score"),
        title="Per-group rates and scores",
        unit_interval=True,
        caption=CI_CAPTION,
    )
    templates = suite.details.get("templates")
    categories = templates.get("categories") if isinstance(templates, Mapping) else None
    if isinstance(categories, Mapping):
        for name, category in sorted(categories.items()):
            out += _group_rate_chart(
                category,
                "group",
                "mean_score",
                f"Template tests, {name}: mean positive score by group",
            )
    groups = suite.details.get("groups")
    if isinstance(groups, Mapping):
        for key, entry in sorted(groups.items()):
            out += _group_rate_chart(
                entry, "label", "selection_rate", f"Selection rate by {key} (evaluation data)"
            )
    return out


def _group_rate_chart(entry: Any, label_key: str, rate: str, title: str) -> list[Markup]:
    """Bars per group from a details ``by_group`` table; rows carry ``ci: {rate: [lo, hi]}``."""
    table = entry.get("by_group") if isinstance(entry, Mapping) else None
    if not isinstance(table, list) or not table:
        return []
    bars = []
    for row in table:
        ci = row.get("ci") if isinstance(row.get("ci"), Mapping) else {}
        low, high = (ci.get(rate) or [None, None])[:2]
        bars.append(Bar(f"{row.get(label_key)} (n={row.get('n')})", row.get(rate), low, high))
    return [figure(bar_chart(bars, title=title, unit_interval=True), CI_CAPTION)]


@chart_kind("latency", reads_details=True)
def latency_charts(suite: SuiteRecord, spec: ChartSpec, rows: Rows) -> list[Markup]:
    out = metric_bars(
        [m for m in suite.metrics if PERCENTILE.search(m.name.lower())],
        title="Latency percentiles",
        dots=True,
        caption="Dots: percentile; whiskers: distribution-free 95% interval (order statistics).",
    )
    out += metric_bars(_having(suite, "throughput", "per_s", "examples_s"), title="Throughput")
    return out


@chart_kind("explain", reads_details=True)
def explain_charts(suite: SuiteRecord, spec: ChartSpec, rows: Rows) -> list[Markup]:
    return metric_bars(
        _having(suite, "comprehensiveness", "sufficiency", "aopc"),
        title="Faithfulness of attributions",
        caption=CI_CAPTION,
    )


def outcome_table(
    rows: Rows, group_key: str, outcome_key: str, *, caption: str | None = None
) -> Markup:
    """Counts of each outcome per group (e.g. result type per recipe), straight from the rows."""
    counts = Counter(
        (str(r.get(group_key, MISSING)), str(r.get(outcome_key, MISSING))) for r in rows
    )
    groups = sorted({g for g, _ in counts})
    outcomes = sorted({o for _, o in counts})
    head = el("tr", el("th", group_key, scope="col"), [el("th", o, scope="col") for o in outcomes])
    body = [
        el("tr", el("td", g), [el("td", str(counts.get((g, o), 0)), cls="num") for o in outcomes])
        for g in groups
    ]
    return el(
        "table",
        el("caption", caption or f"Per-example {outcome_key} counts"),
        el("thead", head),
        el("tbody", body),
        cls="data",
    )


@chart_kind("metric_bars")
def metric_bars_chart(suite: SuiteRecord, spec: ChartSpec, rows: Rows) -> list[Markup]:
    """Bars of the named metrics (in the spec's order) with their recorded 95% intervals."""
    wanted = [m for name in spec.metrics if (m := suite.metric(name)) is not None]
    return metric_bars(wanted, title=spec.title or suite.name, caption=CI_CAPTION)


@chart_kind("outcome_counts")
def outcome_counts_chart(suite: SuiteRecord, spec: ChartSpec, rows: Rows) -> list[Markup]:
    """Counts of the per-example ``outcome`` column per ``group`` column."""
    if spec.group is None or spec.outcome is None or not rows:
        return []
    return [outcome_table(rows, spec.group, spec.outcome, caption=spec.title)]


def _draw(suite: SuiteRecord, spec: ChartSpec, rows: Rows) -> list[Markup]:
    renderer = KINDS.get(spec.kind)
    if renderer is None:
        return [el("p", MSG_UNKNOWN_KIND.format(kind=spec.kind), cls="notice")]
    try:
        return renderer(suite, spec, rows)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        # A suite changed its details' shape: say so in the report rather than fail the audit.
        return [
            el(
                "p",
                f"Charts for this suite could not be drawn from its details "
                f"({type(exc).__name__}: {exc}); the metric table above is complete.",
                cls="notice",
            )
        ]


def charts_for(suite: SuiteRecord, rows: Rows) -> list[Markup]:
    """Every chart the suite declares, in its declared order."""
    return [chart for spec in suite.caps().charts for chart in _draw(suite, spec, rows)]


# Chart kinds defined in their own modules register on import (they use ``chart_kind`` above).
from harness.reports import data_charts as data_charts  # noqa: E402
