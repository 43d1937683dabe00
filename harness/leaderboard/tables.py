"""The site's tables and table cells: sortable benchmark tables, the summary, metric tables.

Sortable columns carry their sort key in ``data-v`` (``site.js`` sorts by it); a missing value
sorts last and shows the site's missing mark. Every record string is escaped by ``el``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from harness.leaderboard.entries import Entry, slugify
from harness.leaderboard.ranking import Benchmark, Row
from harness.records import Metric
from harness.render.html import Markup, el, join
from harness.render.numbers import SITE, SITE_MISSING, fmt_ci, fmt_fixed, fmt_site

MwR = dict[str, tuple[float, int]]  # entry id -> (mean win rate, number of benchmarks behind it)


def direction(higher: bool | None) -> str:
    return {True: "↑ higher is better", False: "↓ lower is better"}.get(higher, "not a score")  # type: ignore[arg-type]


def metric_td(metric: Metric | None) -> Markup:
    """A sortable number cell: the value and its interval (none shown when not recorded)."""
    if metric is None or metric.value is None:
        return el("td", SITE_MISSING, cls="num", data_v="")
    ci = None
    if metric.ci_low is not None and metric.ci_high is not None:
        ci = el("span", fmt_ci(metric.ci_low, metric.ci_high, style=SITE), cls="ci")
    return el("td", fmt_site(metric.value), ci, cls="num", data_v=repr(metric.value))


def rate_td(rate: tuple[float, int] | None) -> Markup:
    """A sortable mean-win-rate cell (three decimals)."""
    if rate is None:
        return el("td", SITE_MISSING, cls="num", data_v="")
    return el("td", fmt_fixed(rate[0], 3), cls="num", data_v=repr(rate[0]))


def sort_th(label: str, *, kind: str = "text", best: str = "ascending", note: str = "") -> Markup:
    """A column head whose button sorts the table (``kind`` text or num, ``best`` first)."""
    button = el("button", label, type="button", data_type=kind, data_best=best)
    extra = [el("br"), el("span", note, cls="basis")] if note else None
    cls = "num" if kind == "num" else None
    return el("th", button, extra, scope="col", cls=cls, aria_sort="none")


def filter_box(table_id: str, what: str) -> Markup:
    """A search box that filters a table's rows by model name (shown by ``site.js``)."""
    return el(
        "div",
        el("label", f"Filter {what} by model name", for_=f"{table_id}-q"),
        el("input", id=f"{table_id}-q", type="search", data_filter=table_id, autocomplete="off"),
        el("span", cls="count", id=f"{table_id}-count", role="status", aria_live="polite"),
        cls="filter",
        hidden=True,
    )


def scroll_table(
    table_id: str, label: str, head: Sequence[Markup], body: Sequence[Markup], *, caption: bool
) -> Markup:
    """A sortable table in a keyboard-scrollable region."""
    table = el(
        "table",
        el("caption", label, cls="sr-only") if caption else None,
        el("thead", el("tr", head)),
        el("tbody", body),
        cls="sortable",
        id=table_id,
    )
    return el("div", table, cls="scroll", tabindex="0", role="region", aria_label=label)


def rank_text(row: Row) -> str:
    """A single rank ("2") or the rank interval the data leave open ("1–3")."""
    if row.rank_best is None or row.rank_worst is None:
        return SITE_MISSING
    if row.rank_best == row.rank_worst:
        return str(row.rank_best)
    return f"{row.rank_best}–{row.rank_worst}"


def rank_key(row: Row | None) -> str:
    """Sort key for a rank cell: best rank first, then worst rank ("1.000003")."""
    if row is None or row.rank_best is None or row.rank_worst is None:
        return ""
    return f"{row.rank_best}.{row.rank_worst:06d}"


def rank_td(row: Row | None) -> Markup:
    return el("td", rank_text(row) if row else SITE_MISSING, cls="num rank", data_v=rank_key(row))


def model_link(entry: Entry, root: str) -> Markup:
    return el("a", entry.model_name, href=f"{root}models/{entry.entry_id}.html")


def suite_href(suite: str, root: str) -> str:
    return f"{root}suites/{slugify(suite)}.html"


def family_text(bench: Benchmark) -> str:
    """The Holm family behind a table's ranks, stated once per table rather than per row."""
    if bench.pairs is None:
        return ""
    return f" · {bench.pairs.n_tests} pairs tested, Holm-adjusted at family-wise alpha {bench.pairs.alpha:g}"


def bench_heading(bench: Benchmark) -> Markup:
    """What the table compares: suite version, parameters, split, ranking metric, Holm family."""
    key = bench.key
    params = json.dumps(bench.rows[0].suite.params, sort_keys=True) if bench.rows else "{}"
    return el(
        "p",
        f"suite version {key.version} · parameters ",
        el("code", params),
        " · evaluation split sha256 ",
        el("code", key.split_sha256[:16]),
        " · ranked by ",
        el("strong", bench.primary or "nothing"),
        f" ({direction(bench.higher_is_better)})",
        family_text(bench),
        cls="meta",
    )


def _metric_th(bench: Benchmark, name: str) -> Markup:
    higher = next(
        (m.higher_is_better for r in bench.rows if (m := r.suite.metric(name)) is not None),
        None,
    )
    best = "descending" if higher else "ascending"
    return sort_th(name, kind="num", best=best, note=direction(higher))


def bench_table(bench: Benchmark, mwr: MwR, *, root: str, columns: Sequence[str]) -> Markup:
    """One benchmark: rank interval, model, the columns' metrics, mean win rate, evidence."""
    heads = [sort_th("Rank", kind="num"), sort_th("Model")]
    heads += [_metric_th(bench, name) for name in columns]
    heads.append(sort_th("Mean win rate", kind="num", best="descending", note="across suites"))
    heads.append(el("th", "Evidence (pairwise tests)", scope="col"))
    body = [
        el(
            "tr",
            rank_td(row),
            el("td", model_link(row.entry, root), cls="model"),
            [metric_td(row.suite.metric(name)) for name in columns],
            rate_td(mwr.get(row.entry.entry_id)),
            el("td", row.basis, cls="basis"),
            cls="ranged" if row.uncertain else None,
            data_name=row.entry.model_name,
        )
        for row in bench.rows
    ]
    label = f"{bench.key.suite}: {len(bench.rows)} models"
    table_id = f"t-{bench.key.slug}"
    return join(
        [
            filter_box(table_id, bench.key.suite),
            scroll_table(table_id, label, heads, body, caption=True),
        ]
    )


def summary_table(benchmarks: Sequence[Benchmark], entries: Sequence[Entry], mwr: MwR) -> Markup:
    """Every entry: mean win rate, number of suites, and its rank in each benchmark."""
    ranks: dict[str, dict[str, Row]] = {}
    for bench in benchmarks:
        for row in bench.rows:
            ranks.setdefault(row.entry.entry_id, {})[bench.key.slug] = row
    heads = [
        sort_th("Model"),
        sort_th("Mean win rate", kind="num", best="descending"),
        sort_th("Suites", kind="num"),
    ]
    heads += [sort_th(f"{b.key.suite} rank", kind="num") for b in benchmarks]
    from harness.leaderboard import paradigm  # lazy: paradigm imports this module

    heads += paradigm.heads()  # method, shots, trainable params, training time
    order = sorted(entries, key=lambda e: (-mwr.get(e.entry_id, (-1.0, 0))[0], e.entry_id))
    body = []
    for entry in order:
        rate = mwr.get(entry.entry_id)
        found = ranks.get(entry.entry_id, {})
        cells = [
            el("td", model_link(entry, ""), cls="model"),
            rate_td(rate),
            el("td", str(rate[1] if rate else 0), cls="num"),
            [rank_td(found.get(bench.key.slug)) for bench in benchmarks],
            paradigm.cells(entry),
        ]
        body.append(el("tr", cells, data_name=entry.model_name))
    table = scroll_table("t-summary", "Mean win rate", heads, body, caption=False)
    return join([filter_box("t-summary", "summary"), table])


def kv(items: Iterable[tuple[str, object]]) -> Markup:
    """A definition list of facts; a missing value shows the site's missing mark."""
    rows = [(el("dt", k), el("dd", SITE_MISSING if v is None else str(v))) for k, v in items]
    return el("dl", rows, cls="kv")


def json_block(data: Any) -> Markup:
    return el("pre", json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))


METRIC_HEADS = ("Metric", "Value", "95% CI", "Method", "n", "Unit", "Direction")


def metrics_table(metrics: Sequence[Metric]) -> Markup:
    """Every metric of a suite with its interval, method, n, unit and direction."""
    heads = [el("th", h, scope="col") for h in METRIC_HEADS]
    rows = []
    for m in metrics:
        desc = [el("br"), el("span", m.description, cls="basis")] if m.description else None
        rows.append(
            el(
                "tr",
                el("td", m.name, desc),
                el("td", fmt_site(m.value), cls="num"),
                el("td", fmt_ci(m.ci_low, m.ci_high, style=SITE), cls="num"),
                el("td", m.ci_method or SITE_MISSING),
                el("td", str(m.n) if m.n is not None else SITE_MISSING, cls="num"),
                el("td", m.unit or SITE_MISSING),
                el("td", direction(m.higher_is_better)),
            )
        )
    table = el("table", el("thead", el("tr", heads)), el("tbody", rows))
    return el("div", table, cls="scroll")
