"""The robustness section's adversarial examples: the successes the validity checks rejected,
with why, and how to review the rest by hand (``harness review export``)."""

from __future__ import annotations

from typing import Any

from harness.render.html import Markup, el
from harness.render.numbers import fmt

SHOWN = 20
REVIEW_NOTE = (
    "Every successful attack can be judged by people: `harness review export RUN` writes a "
    "sheet, `harness review import RUN SHEET` adds the human-validated success rate and the "
    "checks' agreement with the reviewers to this record."
)


def _reason(name: str, check: dict[str, Any]) -> str:
    if name == "similarity":
        return f"similarity {fmt(check.get('value'))} < {fmt(check.get('threshold'))}"
    if name == "pos":
        return "part of speech changed: " + "; ".join(map(str, check.get("mismatches") or []))
    if name == "char_edits":
        return (
            f"{check.get('edits')} character edits (budget {check.get('budget')}; at most "
            f"{check.get('per_word_budget')} in a word, found {check.get('max_edits_in_a_word')})"
        )
    if name == "judge":
        return (
            f"judge ({check.get('kind')}) {fmt(check.get('value'))} < {fmt(check.get('threshold'))}"
        )
    return name


def rejected_examples(rows: list[dict[str, Any]]) -> list[Markup]:
    """A table of the first rejected successes (recipe, texts, reasons), and the review note."""
    rejected = [
        r
        for r in rows
        if r.get("valid_result") == "rejected" and isinstance(r.get("validity"), dict)
    ]
    if not any("valid_result" in r for r in rows):
        return []
    body = [
        el(
            "tr",
            el("td", str(r.get("recipe", ""))),
            el("td", str(r.get("original_text", ""))),
            el("td", str(r.get("perturbed_text", ""))),
            el(
                "td",
                "; ".join(
                    _reason(n, r["validity"]["checks"].get(n) or {})
                    for n in r["validity"].get("rejected_by", [])
                ),
            ),
        )
        for r in rejected[:SHOWN]
    ]
    caption = (
        f"Successful attacks rejected by the validity checks ({len(rejected)}; first {min(SHOWN, len(rejected))} shown)"
        if rejected
        else "No successful attack was rejected by the validity checks"
    )
    head = el(
        "tr",
        *(
            el("th", h, scope="col")
            for h in ("recipe", "original", "adversarial", "rejected because")
        ),
    )
    return [
        el("table", el("caption", caption), el("thead", head), el("tbody", body), cls="data"),
        el("p", REVIEW_NOTE),
    ]
