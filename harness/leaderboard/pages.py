"""HTML for the three kinds of page: overview, model, suite.

Every string that comes from a record goes through ``esc`` (HTML-escaped, quotes included), in
text and in attributes alike; record data never reaches a <script>, a ``style`` attribute or an
event handler. Links are relative, so the site works from file:// and under any path prefix.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from harness.leaderboard import charts
from harness.leaderboard.entries import Entry, SiteSettings
from harness.leaderboard.ranking import Benchmark, Row
from harness.leaderboard.svg import esc, fmt
from harness.records import Metric

# 'self' covers same-folder files on http(s) and, in Chromium, file:// too; no inline script or
# style is ever emitted, so neither 'unsafe-inline' nor hashes are needed.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'"
)


def page(title: str, body: str, *, root: str, settings: SiteSettings) -> str:
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f"<title>{esc(title)} · {esc(settings.title)}</title>\n"
        '<link rel="icon" href="data:,">\n'
        f'<link rel="stylesheet" href="{root}assets/site.css">\n'
        f'<script src="{root}assets/site.js" defer></script>\n</head>\n<body>\n'
        '<a class="skip" href="#main">Skip to content</a>\n'
        f'<header><nav aria-label="Site"><a href="{root}index.html">{esc(settings.title)}</a>'
        f'<a href="{root}data/leaderboard.json">Table (JSON)</a><a href="{root}data/leaderboard.csv">Table (CSV)</a>'
        "</nav></header>\n"
        f'<main id="main">\n{body}\n</main>\n'
        f"<footer>Built by harness from verified run records. {RANK_NOTE.format(confidence=confidence(settings))}</footer>\n"
        "</body>\n</html>\n"
    )


def ci_text(metric: Metric) -> str:
    if metric.ci_low is None or metric.ci_high is None:
        return ""
    return f'<span class="ci">[{esc(fmt(metric.ci_low))}, {esc(fmt(metric.ci_high))}]</span>'


def metric_td(metric: Metric | None) -> str:
    if metric is None or metric.value is None:
        return '<td class="num" data-v="">–</td>'
    return (
        f'<td class="num" data-v="{metric.value!r}">{esc(fmt(metric.value))}{ci_text(metric)}</td>'
    )


def direction(higher: bool | None) -> str:
    return {True: "↑ higher is better", False: "↓ lower is better"}.get(higher, "not a score")  # type: ignore[arg-type]


def sort_th(label: str, *, kind: str = "text", best: str = "ascending", note: str = "") -> str:
    extra = f'<br><span class="basis">{esc(note)}</span>' if note else ""
    cls = ' class="num"' if kind == "num" else ""
    return (
        f'<th scope="col"{cls} aria-sort="none"><button type="button" data-type="{kind}" data-best="{best}">'
        f"{esc(label)}</button>{extra}</th>"
    )


def filter_box(table_id: str, what: str) -> str:
    return (
        f'<div class="filter" hidden><label for="{table_id}-q">Filter {esc(what)} by model name</label>'
        f'<input id="{table_id}-q" type="search" data-filter="{table_id}" autocomplete="off">'
        f'<span class="count" id="{table_id}-count" role="status" aria-live="polite"></span></div>'
    )


RANK_NOTE = (
    "Ranks are {confidence} rank intervals: “1–3” means the data cannot place the model more "
    "precisely than between ranks 1 and 3 (every pair tested, Holm-adjusted)."
)


def confidence(settings: SiteSettings) -> str:
    """The simultaneous confidence of the rank intervals, e.g. '95%'."""
    return f"{100 * (1 - settings.alpha):g}%"


def rank_text(row: Row) -> str:
    """A single rank ("2") or the rank interval the data leave open ("1–3")."""
    if row.rank_best is None or row.rank_worst is None:
        return "–"
    if row.rank_best == row.rank_worst:
        return str(row.rank_best)
    return f"{row.rank_best}–{row.rank_worst}"


def rank_key(row: Row | None) -> str:
    """Sort key for a rank cell: best rank first, then worst rank ("1.000003")."""
    if row is None or row.rank_best is None or row.rank_worst is None:
        return ""
    return f"{row.rank_best}.{row.rank_worst:06d}"


def model_link(entry: Entry, root: str) -> str:
    return f'<a href="{root}models/{esc(entry.entry_id)}.html">{esc(entry.model_name)}</a>'


def suite_href(suite: str, root: str) -> str:
    from harness.leaderboard.entries import slugify

    return f"{root}suites/{slugify(suite)}.html"


def bench_heading(bench: Benchmark) -> str:
    key = bench.key
    params = json.dumps(bench.rows[0].suite.params, sort_keys=True) if bench.rows else "{}"
    return (
        f'<p class="meta">suite version {esc(key.version)} · parameters <code>{esc(params)}</code> · '
        f"evaluation split sha256 <code>{esc(key.split_sha256[:16])}</code> · ranked by "
        f"<strong>{esc(bench.primary or 'nothing')}</strong> ({esc(direction(bench.higher_is_better))})"
        f"{esc(family_text(bench))}</p>"
    )


def family_text(bench: Benchmark) -> str:
    """The Holm family behind a table's ranks, stated once per table rather than per row."""
    if bench.pairs is None:
        return ""
    return f" · {bench.pairs.n_tests} pairs tested, Holm-adjusted at family-wise alpha {bench.pairs.alpha:g}"


def bench_table(
    bench: Benchmark, mwr: dict[str, tuple[float, int]], *, root: str, columns: Sequence[str]
) -> str:
    table_id = f"t-{bench.key.slug}"
    heads = [sort_th("Rank", kind="num"), sort_th("Model")]
    for name in columns:
        higher = next(
            (m.higher_is_better for r in bench.rows if (m := r.suite.metric(name)) is not None),
            None,
        )
        heads.append(
            sort_th(
                name,
                kind="num",
                best="descending" if higher else "ascending",
                note=direction(higher),
            )
        )
    heads.append(sort_th("Mean win rate", kind="num", best="descending", note="across suites"))
    heads.append('<th scope="col">Evidence (pairwise tests)</th>')
    body = []
    for row in bench.rows:
        cls = ' class="ranged"' if row.uncertain else ""
        rate = mwr.get(row.entry.entry_id)
        cells = [
            f'<td class="num rank" data-v="{rank_key(row)}">{rank_text(row)}</td>',
            f'<td class="model">{model_link(row.entry, root)}</td>',
            *(metric_td(row.suite.metric(name)) for name in columns),
            f'<td class="num" data-v="{rate[0]!r}">{rate[0]:.3f}</td>'
            if rate
            else '<td class="num" data-v="">–</td>',
            f'<td class="basis">{esc(row.basis)}</td>',
        ]
        body.append(f'<tr{cls} data-name="{esc(row.entry.model_name)}">{"".join(cells)}</tr>')
    caption = f"{esc(bench.key.suite)}: {len(bench.rows)} models"
    return (
        filter_box(table_id, bench.key.suite)
        + f'<div class="scroll" tabindex="0" role="region" aria-label="{caption}"><table class="sortable" id="{table_id}">'
        + f'<caption class="sr-only">{caption}</caption><thead><tr>{"".join(heads)}</tr></thead>'
        + f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def overview(
    benchmarks: Sequence[Benchmark],
    entries: Sequence[Entry],
    mwr: dict[str, tuple[float, int]],
    settings: SiteSettings,
) -> str:
    parts = [f"<h1>{esc(settings.title)}</h1>"]
    if settings.description:
        parts.append(f"<p>{esc(settings.description)}</p>")
    parts.append(
        f'<p class="meta">{len(entries)} verified entries · {len(benchmarks)} benchmarks. '
        f"{RANK_NOTE.format(confidence=confidence(settings))} Highlighted rows have a rank range. "
        "Tests: paired exact McNemar on per-example correctness where both entries carry "
        "predictions, otherwise a z-test from the two 95% intervals; Holm across the pairs of "
        f"each table (family-wise alpha {settings.alpha:g}).</p>"
    )
    parts.append('<h2 id="summary">Mean win rate across suites</h2>')
    parts.append(summary_table(benchmarks, entries, mwr))
    for bench in benchmarks:
        parts.append(
            f'<h2 id="{esc(bench.key.slug)}"><a href="{esc(suite_href(bench.key.suite, ""))}">{esc(bench.key.suite)}</a></h2>'
        )
        parts.append(bench_heading(bench))
        parts.append(bench_table(bench, mwr, root="", columns=bench.columns))
    figures = [
        c
        for c in (
            charts.accuracy_vs_asr(benchmarks, settings),
            charts.accuracy_vs_latency(benchmarks, settings),
        )
        if c
    ]
    figures += charts.group_gaps(benchmarks, settings)
    if figures:
        parts.append(
            '<h2 id="charts">Charts</h2><div class="charts">' + "".join(figures) + "</div>"
        )
    return page("Overview", "\n".join(parts), root="", settings=settings)


def summary_table(
    benchmarks: Sequence[Benchmark], entries: Sequence[Entry], mwr: dict[str, tuple[float, int]]
) -> str:
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
    order = sorted(entries, key=lambda e: (-mwr.get(e.entry_id, (-1.0, 0))[0], e.entry_id))
    body = []
    for entry in order:
        rate = mwr.get(entry.entry_id)
        cells = [
            f'<td class="model">{model_link(entry, "")}</td>',
            f'<td class="num" data-v="{rate[0]!r}">{rate[0]:.3f}</td>'
            if rate
            else '<td class="num" data-v="">–</td>',
            f'<td class="num">{rate[1] if rate else 0}</td>',
        ]
        for bench in benchmarks:
            found = ranks.get(entry.entry_id, {}).get(bench.key.slug)
            shown = rank_text(found) if found else "–"
            cells.append(f'<td class="num rank" data-v="{rank_key(found)}">{shown}</td>')
        body.append(f'<tr data-name="{esc(entry.model_name)}">{"".join(cells)}</tr>')
    return (
        filter_box("t-summary", "summary")
        + '<div class="scroll" tabindex="0" role="region" aria-label="Mean win rate"><table class="sortable" id="t-summary">'
        + f"<thead><tr>{''.join(heads)}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def kv(items: Iterable[tuple[str, object]]) -> str:
    rows = "".join(f"<dt>{esc(k)}</dt><dd>{esc('–' if v is None else v)}</dd>" for k, v in items)
    return f'<dl class="kv">{rows}</dl>'


def json_block(data: Any) -> str:
    return f"<pre>{esc(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))}</pre>"


def metrics_table(metrics: Sequence[Metric]) -> str:
    heads = "".join(
        f'<th scope="col">{h}</th>'
        for h in ("Metric", "Value", "95% CI", "Method", "n", "Unit", "Direction")
    )
    rows = []
    for m in metrics:
        ci = (
            "–" if m.ci_low is None or m.ci_high is None else f"[{fmt(m.ci_low)}, {fmt(m.ci_high)}]"
        )
        desc = f'<br><span class="basis">{esc(m.description)}</span>' if m.description else ""
        rows.append(
            f'<tr><td>{esc(m.name)}{desc}</td><td class="num">{esc(fmt(m.value))}</td><td class="num">{esc(ci)}</td>'
            f'<td>{esc(m.ci_method or "–")}</td><td class="num">{esc(m.n if m.n is not None else "–")}</td>'
            f"<td>{esc(m.unit or '–')}</td><td>{esc(direction(m.higher_is_better))}</td></tr>"
        )
    return f'<div class="scroll"><table><thead><tr>{heads}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def model_page(
    entry: Entry,
    standings: Sequence[tuple[Benchmark, Row]],
    mwr: dict[str, tuple[float, int]],
    settings: SiteSettings,
) -> str:
    """Every suite, provenance, model card and downloads of one entry; ``standings`` are its
    rows in each benchmark (passed in so N pages do not each scan N rows)."""
    rec = entry.record
    model, data, prov = rec.model, rec.dataset, rec.provenance
    parts = [f"<h1>{esc(model.name)}</h1>"]
    rate = mwr.get(entry.entry_id)
    items = [
        f'<li><a href="{esc(suite_href(bench.key.suite, "../"))}">{esc(bench.key.suite)}</a> '
        f"(v{esc(bench.key.version)}): rank {esc(rank_text(row))} of {len(bench.rows)}</li>"
        for bench, row in standings
    ]
    parts.append(
        f'<p class="meta">Mean win rate across suites: {f"{rate[0]:.3f} over {rate[1]}" if rate else "–"}</p>'
        f"<ul>{''.join(items)}</ul>"
    )
    parts.append(
        '<h2 id="downloads">Downloads</h2><ul>'
        f'<li><a href="../records/{esc(entry.entry_id)}.json" download>record.json</a> (the verified run record)</li>'
        '<li><a href="../data/leaderboard.json" download>full table (JSON)</a></li>'
        '<li><a href="../data/leaderboard.csv" download>full table (CSV)</a></li></ul>'
    )
    parts.append('<h2 id="model">Model</h2>')
    parts.append(
        kv(
            [
                ("entry", entry.entry_id),
                ("run id", rec.run_id),
                ("source", model.source),
                ("location", model.location),
                ("weights sha256", model.digest),
                ("tokenizer sha256", model.tokenizer_digest),
                ("parameters", model.n_parameters),
                ("labels", ", ".join(model.label_names)),
                ("max length", model.max_length),
                ("dtype", model.dtype),
            ]
        )
    )
    parts.append('<h2 id="card">Model card</h2>')
    parts.append(
        json_block(model.model_card)
        if model.model_card
        else "<p>No model card (the model was not fine-tuned by harness).</p>"
    )
    parts.append('<h2 id="dataset">Dataset</h2>')
    parts.append(
        kv(
            [
                ("name", data.name),
                ("source", data.source),
                ("evaluation split", data.eval_split),
                ("truncated examples", data.n_truncated),
                ("group columns", ", ".join(data.group_columns)),
            ]
            + [(f"split {s.name} (n={s.n})", s.sha256) for s in data.splits]
        )
    )
    parts.append('<h2 id="suites">Suites</h2>')
    for suite in rec.suites:
        parts.append(
            f'<h3>{esc(suite.name)} <span class="meta">v{esc(suite.version)} · {esc(suite.status)} · '
            f"{suite.wall_time_s:.1f} s</span></h3>"
        )
        if suite.error:
            parts.append(f"<p>Error: {esc(suite.error)}</p>")
        parts.append(metrics_table(suite.metrics))
        parts.append(
            "<details><summary>Parameters</summary>" + json_block(suite.params) + "</details>"
        )
        for label, items in (
            ("Warnings", suite.warnings),
            ("Departures from the reference method", suite.departures),
        ):
            if items:
                parts.append(
                    f"<p>{label}:</p><ul>{''.join(f'<li>{esc(i)}</li>' for i in items)}</ul>"
                )
        if suite.resources:
            parts.append(
                "<p>Resources:</p><ul>"
                + "".join(
                    f"<li>{esc(r.name)} — {esc(r.source)} (sha256 {esc(r.sha256 or '–')}, license {esc(r.license or '–')})"
                    f"{' — ' + esc(r.note) if r.note else ''}</li>"
                    for r in suite.resources
                )
                + "</ul>"
            )
    parts.append('<h2 id="provenance">Provenance</h2>')
    parts.append(kv((k, v) for k, v in prov.model_dump().items() if k != "packages"))
    parts.append(
        "<details><summary>Packages</summary>" + kv(sorted(prov.packages.items())) + "</details>"
    )
    parts.append(
        "<details><summary>Run configuration</summary>" + json_block(rec.config) + "</details>"
    )
    return page(model.name, "\n".join(parts), root="../", settings=settings)


def suite_page(
    suite: str,
    benchmarks: Sequence[Benchmark],
    everything: Sequence[Benchmark],
    mwr: dict[str, tuple[float, int]],
    settings: SiteSettings,
) -> str:
    parts = [f"<h1>Suite: {esc(suite)}</h1>"]
    for n, bench in enumerate(benchmarks):
        parts.append(f'<h2 id="{esc(bench.key.slug)}">{esc(suite)} v{esc(bench.key.version)}</h2>')
        parts.append(bench_heading(bench))
        parts.append(bench_table(bench, mwr, root="../", columns=bench.metrics))
        if bench.primary:
            parts.append(
                charts.metric_intervals(
                    f"c-{n}", bench, bench.primary, title=f"{bench.primary} with 95% intervals"
                )
            )
    figures = []
    if suite in ("accuracy", "robustness"):
        figures.append(charts.accuracy_vs_asr(everything, settings))
    if suite in ("accuracy", "latency"):
        figures.append(charts.accuracy_vs_latency(everything, settings))
    if suite == settings.gap_suite:
        figures += charts.group_gaps(benchmarks, settings)
    if any(figures):
        parts.append(
            '<h2 id="charts">Charts</h2><div class="charts">'
            + "".join(f for f in figures if f)
            + "</div>"
        )
    return page(f"Suite {suite}", "\n".join(parts), root="../", settings=settings)
