"""Writers for a gate verdict: terminal table, markdown summary, JUnit XML and JSON.

Each rule is one JUnit test case (``classname`` = the metric's suite), so CI systems show a
failed rule as a failed test. Text from records (metric names, paths) is escaped by the XML
library, never pasted into markup by hand; markdown cells escape ``|`` and newlines.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from harness.gate.verdict import GateVerdict, RuleVerdict
from harness.records import canonical_json
from harness.store import atomic_write_bytes, atomic_write_text

STATUS_MARK = {
    "pass": "✅ pass",
    "fail": "❌ FAIL",
    "inconclusive": "❔ inconclusive",
    "error": "⚠️ error",
}
HEADLINE = {
    "pass": "✅ passed",
    "fail": "❌ failed",
    "error": "⚠️ could not decide",
}
INCONCLUSIVE_HEADLINE = {
    "warn": "❔ passed, but some rules could not tell (inconclusive)",
    "pass": "✅ passed (inconclusive rules counted as passing)",
    "fail": "❌ failed: some rules could not tell (inconclusive, and the policy fails on that)",
}


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def _p(verdict: RuleVerdict) -> str:
    if verdict.p_adjusted is not None:
        return f"{verdict.p_adjusted:.3g}"
    if verdict.test is not None:
        return verdict.test.method
    return "—"


def rows(verdict: GateVerdict) -> list[list[str]]:
    """The table both the terminal and markdown show: one row per rule."""
    return [
        [
            STATUS_MARK[r.status],
            r.rule.name,
            _fmt(r.baseline),
            _fmt(r.candidate),
            "—" if r.change is None else f"{r.change:+.4g}",
            _p(r),
            r.message,
        ]
        for r in verdict.rules
    ]


HEADERS = ["status", "rule", "baseline", "candidate", "change", "p (adj.)", "detail"]


def print_table(verdict: GateVerdict, console: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = console or Console()
    table = Table(title=f"harness gate: {headline(verdict)}", show_lines=False)
    for h in HEADERS:
        table.add_column(h, overflow="fold")
    for row in rows(verdict):
        # rich.Text: record-derived strings are shown literally, never parsed as markup.
        table.add_row(*(Text(cell) for cell in row))
    console.print(table)
    for note in verdict.notes:
        console.print(Text(f"note: {note}"))


def print_plan(rows: list[Any], console: Any = None) -> None:
    """The --plan table: per comparative rule, the n its test needs."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = console or Console()
    table = Table(title="harness gate --plan: examples needed to detect each tolerance")
    for h in ("rule", "detect", "test", "n needed", "now", "based on"):
        table.add_column(h, overflow="fold")
    for r in rows:
        needed = "not reachable" if r.n_required is None else f"{r.n_required:,} {r.unit}"
        table.add_row(
            *(
                Text(c)
                for c in (
                    r.rule,
                    _fmt(r.effect),
                    r.test,
                    needed,
                    "—" if r.current_n is None else f"{r.current_n:,}",
                    r.basis,
                )
            )
        )
    console.print(table)


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")


def headline(verdict: GateVerdict) -> str:
    if verdict.status == "inconclusive":
        return INCONCLUSIVE_HEADLINE[verdict.on_inconclusive]
    return HEADLINE[verdict.status]


def markdown(verdict: GateVerdict) -> str:
    head = headline(verdict)
    lines = [
        f"## harness gate {head}",
        "",
        f"Baseline `{_md_cell(verdict.baseline)}` → candidate `{_md_cell(verdict.candidate)}`, "
        f"policy `{_md_cell(verdict.policy)}`, correction: {verdict.correction}.",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "|".join("---" for _ in HEADERS) + "|",
    ]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows(verdict)]
    unsure = [r for r in verdict.rules if r.status == "inconclusive"]
    if unsure:
        lines += ["", f"**{len(unsure)} rule(s) could not tell**", ""]
        lines += [f"- `{_md_cell(r.rule.name)}`: {_md_cell(r.message)}" for r in unsure]
    if verdict.notes:
        lines += ["", "**Notes**", ""] + [f"- {_md_cell(n)}" for n in verdict.notes]
    return "\n".join(lines) + "\n"


def junit_xml(verdict: GateVerdict) -> bytes:
    """One test case per rule; an inconclusive rule is skipped with its message (a failure when
    the policy fails on inconclusive verdicts)."""
    fail_unsure = verdict.on_inconclusive == "fail"
    unsure = sum(r.status == "inconclusive" for r in verdict.rules)
    failures = sum(r.status == "fail" for r in verdict.rules) + (unsure if fail_unsure else 0)
    errors = sum(r.status == "error" for r in verdict.rules)
    skipped = 0 if fail_unsure else unsure
    counts = {
        "tests": str(len(verdict.rules)),
        "failures": str(failures),
        "errors": str(errors),
    }
    suites = ET.Element("testsuites", {"name": "harness gate", **counts})
    suite = ET.SubElement(
        suites, "testsuite", {"name": "harness gate", **counts, "skipped": str(skipped), "time": "0"}
    )
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("baseline", verdict.baseline),
        ("candidate", verdict.candidate),
        ("policy", verdict.policy),
        ("correction", verdict.correction),
        ("on_inconclusive", verdict.on_inconclusive),
    ):
        ET.SubElement(props, "property", name=name, value=value)
    for r in verdict.rules:
        case = ET.SubElement(
            suite, "testcase", classname=f"gate.{r.rule.metric.suite}", name=r.rule.name, time="0"
        )
        if r.status == "fail" or (r.status == "inconclusive" and fail_unsure):
            kind = "regression" if r.status == "fail" else "inconclusive"
            ET.SubElement(case, "failure", message=r.message, type=kind).text = r.message
        elif r.status == "inconclusive":
            ET.SubElement(case, "skipped", message=r.message)
        elif r.status == "error":
            ET.SubElement(case, "error", message=r.message, type="error").text = r.message
        else:
            ET.SubElement(case, "system-out").text = r.message
    ET.indent(suites)
    return bytes(ET.tostring(suites, encoding="utf-8", xml_declaration=True))


def write_outputs(
    verdict: GateVerdict,
    *,
    junit: Path | None = None,
    markdown_file: Path | None = None,
    json_file: Path | None = None,
) -> None:
    """Write the requested files; append the markdown to $GITHUB_STEP_SUMMARY when it is set."""
    if junit is not None:
        atomic_write_bytes(junit, junit_xml(verdict))
    md = markdown(verdict)
    if markdown_file is not None:
        atomic_write_text(markdown_file, md)
    if json_file is not None:
        atomic_write_text(json_file, canonical_json(verdict.to_json()))
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with Path(summary).open("a", encoding="utf-8") as handle:
            handle.write(md)
