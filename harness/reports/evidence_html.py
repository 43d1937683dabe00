"""The evidence map section: one table per framework, one row per clause (``evidence``)."""

from __future__ import annotations

from typing import Any

from harness.frameworks import Framework
from harness.render.html import Markup, el
from harness.render.numbers import MISSING, fmt, fmt_ci, is_number
from harness.reports.evidence import ClauseResult, Evidence

SECTION = ("evidence-map", "Evidence map")


def _value(ev: Evidence) -> Any:
    if is_number(ev.value):
        return el("span", fmt(ev.value), cls="num")
    text = "" if ev.value is None else str(ev.value)
    if ev.kind == "provenance" and len(text) == 64:  # a sha256: shortened, in full on hover
        return el("code", text[:16] + "…", title=text)
    return text


def _evidence_table(items: tuple[Evidence, ...]) -> Markup:
    head = el("tr", [el("th", c, scope="col") for c in ("Evidence", "Value", "95% CI", "n", "Source (sha256)")])
    rows = [
        el(
            "tr",
            el("td", el("span", ev.kind, cls="badge"), " ", ev.label,
               el("div", ev.note, cls="desc") if ev.note else None),
            el("td", _value(ev)),
            el("td", fmt_ci(*ev.ci) if ev.ci else MISSING, cls="num"),
            el("td", fmt(ev.n), cls="num"),
            el("td", el("code", ev.path),
               el("div", el("code", ev.sha256[:16] + "…"), cls="desc", title=ev.sha256)
               if ev.sha256 else None),
        )
        for ev in items
    ]
    return el("table", el("thead", head), el("tbody", rows), cls="data evidence")


def _clause_row(result: ClauseResult) -> Markup:
    clause = result.clause
    if result.measured:
        status = el("span", "evidence", cls="badge ok")
        body: Any = [_evidence_table(result.evidence)]
        if result.reasons:
            body.append(el("ul", [el("li", "in part not measured — ", r) for r in result.reasons], cls="why"))
        if result.declared:
            body.append(el("p", f"Also declared not measured: {result.declared}", cls="desc"))
    else:
        status = el("span", "not measured", cls="badge skipped")
        body = el("ul", [el("li", "not measured — ", reason) for reason in result.reasons], cls="why")
    return el(
        "tr",
        el("td", el("code", clause.id), id=f"clause-{result.framework.id}-{clause.id}"),
        el("td", el("strong", clause.title), el("div", clause.text, cls="desc") if clause.text else None),
        el("td", status),
        el("td", body),
        cls="clause measured" if result.measured else "clause unmeasured",
    )


def framework_block(framework: Framework, results: list[ClauseResult]) -> Markup:
    measured = sum(r.measured for r in results)
    head = el("tr", [el("th", c, scope="col") for c in ("Clause", "Requirement", "Status", "Evidence, or why not measured")])
    return el(
        "article",
        el("h3", framework.title),
        el("p", framework.reference, cls="desc") if framework.reference else None,
        el("p", f"{measured} of {len(results)} clauses with evidence from this run; "
                f"{len(results) - measured} not measured, each with the reason."),
        el("p", "Scope: ", framework.scope, cls="desc") if framework.scope else None,
        el("table", el("thead", head), el("tbody", [_clause_row(r) for r in results]), cls="data clauses"),
        cls="framework",
        id=f"framework-{framework.id}",
    )


def section_body(mapped: list[tuple[Framework, list[ClauseResult]]]) -> list[Markup]:
    intro = el(
        "p",
        "Each clause of the frameworks named in the run file's audit section, with the evidence "
        "this run folder holds for it (the figure, its interval and n, the file and JSON "
        "pointer it comes from and that file's sha256 as the manifest lists it), or why it is "
        "not measured: declared in the run file (audit.not_measured), or derived from the run.",
        cls="muted",
    )
    return [intro, *[framework_block(f, results) for f, results in mapped]]
