"""HTML for the three kinds of page: overview, model, suite.

Each page is a list of blocks, one per line of the page source, inside ``layout.page``. Tables
come from ``tables``, charts from ``charts``; every string from a record is escaped by ``el``.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.leaderboard import charts, curves
from harness.leaderboard.entries import Entry, SiteSettings
from harness.leaderboard.layout import CSP, lines, page, rank_note
from harness.leaderboard.ranking import Benchmark, Row
from harness.leaderboard.tables import (
    MwR,
    bench_heading,
    bench_table,
    json_block,
    kv,
    metrics_table,
    rank_text,
    suite_href,
    summary_table,
)
from harness.records import Provenance, RunRecord, SuiteRecord
from harness.render.html import Child, Markup, el, join
from harness.render.numbers import SITE_MISSING, fmt_fixed

__all__ = ["CSP", "model_page", "overview", "suite_page"]

TESTS_NOTE = (
    "Tests: paired exact McNemar on per-example correctness where both entries carry "
    "predictions, otherwise a z-test from the two 95% intervals; Holm across the pairs of "
    "each table (family-wise alpha {alpha:g})."
)


def _charts(figures: Sequence[Markup]) -> Markup:
    return join([el("h2", "Charts", id="charts"), el("div", list(figures), cls="charts")])


def overview(
    benchmarks: Sequence[Benchmark], entries: Sequence[Entry], mwr: MwR, settings: SiteSettings
) -> str:
    """The front page: the summary table, one table per benchmark, and the charts."""
    parts: list[Child] = [el("h1", settings.title)]
    if settings.description:
        parts.append(el("p", settings.description))
    parts.append(
        el(
            "p",
            f"{len(entries)} verified entries · {len(benchmarks)} benchmarks. "
            f"{rank_note(settings)} Highlighted rows have a rank range. "
            + TESTS_NOTE.format(alpha=settings.alpha),
            cls="meta",
        )
    )
    parts.append(el("h2", "Mean win rate across suites", id="summary"))
    parts.append(summary_table(benchmarks, entries, mwr))
    for bench in benchmarks:
        link = el("a", bench.key.suite, href=suite_href(bench.key.suite, ""))
        parts += [el("h2", link, id=bench.key.slug), bench_heading(bench)]
        parts.append(bench_table(bench, mwr, root="", columns=bench.columns))
    pair_charts = (
        charts.accuracy_vs_asr(benchmarks, settings),
        charts.accuracy_vs_latency(benchmarks, settings),
    )
    figures = [c for c in pair_charts if c] + charts.group_gaps(benchmarks, settings)
    figures += [c for c in (curves.learning_curve(benchmarks),) if c]  # shots x methods
    if figures:
        parts.append(_charts(figures))
    return page("Overview", lines(parts), root="", settings=settings)


def suite_page(
    suite: str,
    benchmarks: Sequence[Benchmark],
    everything: Sequence[Benchmark],
    mwr: MwR,
    settings: SiteSettings,
) -> str:
    """Every benchmark of one suite name with all its metrics, and the charts that involve it."""
    parts: list[Child] = [el("h1", f"Suite: {suite}")]
    for n, bench in enumerate(benchmarks):
        parts.append(el("h2", f"{suite} v{bench.key.version}", id=bench.key.slug))
        parts.append(bench_heading(bench))
        parts.append(bench_table(bench, mwr, root="../", columns=bench.metrics))
        if bench.primary:
            title = f"{bench.primary} with 95% intervals"
            parts.append(charts.metric_intervals(f"c-{n}", bench, bench.primary, title=title))
    figures = []
    if suite in ("accuracy", "robustness"):
        figures.append(charts.accuracy_vs_asr(everything, settings))
    if suite in ("accuracy", "latency"):
        figures.append(charts.accuracy_vs_latency(everything, settings))
    if suite == "accuracy":
        figures.append(curves.learning_curve(benchmarks))
    if suite == settings.gap_suite:
        figures += charts.group_gaps(benchmarks, settings)
    if any(figures):
        parts.append(_charts([f for f in figures if f]))
    return page(f"Suite {suite}", lines(parts), root="../", settings=settings)


# ------------------------------------------------------------------ model page


def _standings(entry: Entry, standings: Sequence[tuple[Benchmark, Row]], mwr: MwR) -> Markup:
    rate = mwr.get(entry.entry_id)
    shown = f"{fmt_fixed(rate[0], 3)} over {rate[1]}" if rate else SITE_MISSING
    items = [
        el(
            "li",
            el("a", bench.key.suite, href=suite_href(bench.key.suite, "../")),
            f" (v{bench.key.version}): rank {rank_text(row)} of {len(bench.rows)}",
        )
        for bench, row in standings
    ]
    return join([el("p", f"Mean win rate across suites: {shown}", cls="meta"), el("ul", items)])


def _downloads(entry: Entry) -> Markup:
    record = el("a", "record.json", href=f"../records/{entry.entry_id}.json", download=True)
    return join(
        [
            el("h2", "Downloads", id="downloads"),
            el(
                "ul",
                el("li", record, " (the verified run record)"),
                el(
                    "li",
                    el("a", "full table (JSON)", href="../data/leaderboard.json", download=True),
                ),
                el(
                    "li", el("a", "full table (CSV)", href="../data/leaderboard.csv", download=True)
                ),
            ),
        ]
    )


def _model_and_data(entry: Entry) -> list[Child]:
    """The model's identity and card, and the evaluation data's splits."""
    rec = entry.record
    model, data = rec.model, rec.dataset
    facts = [
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
    data_facts = [
        ("name", data.name),
        ("source", data.source),
        ("evaluation split", data.eval_split),
        ("truncated examples", data.n_truncated),
        ("group columns", ", ".join(data.group_columns)),
    ] + [(f"split {s.name} (n={s.n})", s.sha256) for s in data.splits]
    no_card = el("p", "No model card (the model was not fine-tuned by harness).")
    return [
        el("h2", "Model", id="model"),
        kv(facts),
        el("h2", "Model card", id="card"),
        json_block(model.model_card) if model.model_card else no_card,
        el("h2", "Dataset", id="dataset"),
        kv(data_facts),
    ]


def _details(summary: str, content: Markup) -> Markup:
    return el("details", el("summary", summary), content)


def _suite_blocks(suite: SuiteRecord) -> list[Child]:
    """One suite's heading, error, metrics, parameters, warnings, departures and resources."""
    meta = el(
        "span",
        f"v{suite.version} · {suite.status} · {fmt_fixed(suite.wall_time_s, 1)} s",
        cls="meta",
    )
    parts: list[Child] = [el("h3", suite.name, " ", meta)]
    if suite.error:
        parts.append(el("p", f"Error: {suite.error}"))
    parts.append(metrics_table(suite.metrics))
    parts.append(_details("Parameters", json_block(suite.params)))
    for label, items in (
        ("Warnings", suite.warnings),
        ("Departures from the reference method", suite.departures),
    ):
        if items:
            parts.append(join([el("p", f"{label}:"), el("ul", [el("li", i) for i in items])]))
    if suite.resources:
        used = [
            el(
                "li",
                f"{r.name} — {r.source} (sha256 {r.sha256 or SITE_MISSING}, "
                f"license {r.license or SITE_MISSING})" + (f" — {r.note}" if r.note else ""),
            )
            for r in suite.resources
        ]
        parts.append(join([el("p", "Resources:"), el("ul", used)]))
    return parts


def _provenance(prov: Provenance, rec: RunRecord) -> list[Child]:
    return [
        el("h2", "Provenance", id="provenance"),
        kv((k, v) for k, v in prov.model_dump().items() if k != "packages"),
        _details("Packages", kv(sorted(prov.packages.items()))),
        _details("Run configuration", json_block(rec.config)),
    ]


def model_page(
    entry: Entry, standings: Sequence[tuple[Benchmark, Row]], mwr: MwR, settings: SiteSettings
) -> str:
    """Every suite, provenance, model card and downloads of one entry; ``standings`` are its
    rows in each benchmark (passed in so N pages do not each scan N rows)."""
    rec = entry.record
    parts: list[Child] = [el("h1", rec.model.name), _standings(entry, standings, mwr)]
    parts.append(_downloads(entry))
    parts += _model_and_data(entry)
    parts.append(el("h2", "Suites", id="suites"))
    for suite in rec.suites:
        parts += _suite_blocks(suite)
    parts += _provenance(rec.provenance, rec)
    return page(rec.model.name, lines(parts), root="../", settings=settings)
