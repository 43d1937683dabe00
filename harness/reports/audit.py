"""The audit report: one self-contained, byte-reproducible HTML document per run folder.

Self-contained: CSS is inlined, charts are inline SVG, fonts are the system's, the one script
(the example explorer's, ``reports.explorer``) is allowed by its sha256 alone, and a
Content-Security-Policy meta tag forbids every fetch, so opening the file makes no request. Reproducible: nothing depends on the time of rendering or on dict order; the same run
folder (and harness version) renders to the same bytes.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from harness import __version__
from harness.render.html import Markup, el, join, raw
from harness.reports import addenda, appendix, findings, sections, suite_charts, sweep_link, worst
from harness.reports.view import RunView, load_view
from harness.store import atomic_write_text

# 'default-src none' forbids scripts, fonts, frames and fetches; the explorer's one inline script
# is allowed by its hash; images only from data: URIs; styles only inline. form-action/base-uri
# are not covered by default-src.
CSP = (
    f"default-src 'none'; script-src {addenda.script_hash()}; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'"
)
REPORT_SUFFIX = ".report.html"


def stylesheet() -> str:
    return files("harness.reports").joinpath("report.css").read_text(encoding="utf-8")


def suites_section(view: RunView) -> Markup:
    parts: list[Any] = []
    for index, suite in enumerate(view.record.suites):
        rows = view.examples[index]
        parts.append(
            el(
                "article",
                el("h3", suite.name),
                sections.suite_header(suite),
                suite_charts.charts_for(suite, rows),
                findings.metrics_folded(suite, sections.suite_anchor(view.record, index)),
                sections.params_block(suite),
                None
                if suite_charts.draws_details(suite) or not suite.details
                else el(
                    "details",
                    el("summary", "Details (as recorded)"),
                    sections.value_html(suite.details),
                ),
                id=sections.suite_anchor(view.record, index),
                cls="suite",
            )
        )
    if not parts:
        parts.append(el("p", "The record has no suites.", cls="muted"))
    return sections.section("suites", "Results by suite", *parts)


def worst_section(view: RunView) -> Markup:
    parts: list[Any] = []
    labels = view.record.model.label_names or view.record.dataset.label_names
    for index, suite in enumerate(view.record.suites):
        cases = worst.worst_cases(suite, view.examples[index], labels)
        if cases:
            parts += [el("h3", suite.name), *cases]
    if not parts:
        parts.append(
            el(
                "p",
                "No per-example rows with adversarial, counterfactual or attribution "
                "cases were recorded in this run.",
                cls="muted",
            )
        )
    intro = el(
        "p",
        "The worst examples of each suite's per-example file (examples/<suite>.jsonl), at "
        "most a few per recipe, perturbation or template, each table ranked by the key its "
        "caption states.",
        cls="muted",
    )
    return sections.section("worst-cases", "Worst cases", intro, *parts)


TOC = (
    ("findings", "Findings"),
    ("summary", "Summary verdict"),
    ("model-card", "Model card"),
    ("suites", "Results by suite"),
    ("worst-cases", "Worst cases"),
    ("limitations", "Limitations and departures"),
    ("provenance", "Provenance appendix"),
)


def render(
    view: RunView, options: addenda.ReportOptions | None = None, *, output: Path | None = None
) -> str:
    """The page; ``output`` is where it will be written (relative links start there; default
    ``default_output``). The sweep line depends on whether the sweep report exists yet."""
    record = view.record
    part_of = sweep_link.banner(record, view.run_dir, output or default_output(view.run_dir))
    extra = addenda.sections(view, options)
    title = f"Audit report — {record.model.name} — {record.run_id}"
    head = el(
        "head",
        el("meta", charset="utf-8"),
        el("meta", http_equiv="Content-Security-Policy", content=CSP),
        el("meta", name="referrer", content="no-referrer"),
        el("meta", name="viewport", content="width=device-width, initial-scale=1"),
        el("meta", name="generator", content=f"harness {__version__}"),
        el("title", title),
        el("style", raw(stylesheet() + addenda.stylesheet())),
    )
    body = el(
        "body",
        el(
            "main",
            el(
                "header",
                el("h1", "Model audit report"),
                el("p", f"{record.model.name} on {record.dataset.name} — run {record.run_id}"),
                part_of,
                extra.banner,
                cls="top",
            ),
            el(
                "nav",
                el("ol", [el("li", el("a", text, href=f"#{ident}")) for ident, text in extra.toc_with(TOC)]),
                cls="toc",
            ),
            findings.section(view.record, findings.anchors(view.record)),
            sections.summary(view),
            sections.model_card(view),
            suites_section(view),
            worst_section(view),
            *extra.html(),
            appendix.limitations(view),
            appendix.provenance(view),
            el(
                "footer",
                f"Rendered by harness {__version__} from record.json sha256 {view.record_sha256}. "
                "Every figure is read from the run folder; see the provenance appendix.",
            ),
        ),
    )
    return "<!DOCTYPE html>\n" + join([el("html", head, body, lang="en")]) + "\n"


def build_report(
    run_dir: Path, options: addenda.ReportOptions | None = None, *, output: Path | None = None
) -> str:
    """Render the report of a run folder (or record.json path) to an HTML string."""
    return render(load_view(run_dir), options, output=output)


def default_output(run_dir: Path) -> Path:
    """``<run folder>.report.html`` beside the run folder, never inside it: the folder is the
    evidence its manifest covers, and ``harness verify`` flags any file the manifest lacks."""
    folder = run_dir.parent if run_dir.is_file() else run_dir
    return folder.with_name(folder.name + REPORT_SUFFIX)


def write_report(
    run_dir: Path, out: Path | None = None, options: addenda.ReportOptions | None = None
) -> Path:
    """Render and write atomically (default: ``default_output(run_dir)``)."""
    target = out or default_output(run_dir)
    atomic_write_text(target, build_report(run_dir, options, output=target))
    return target
