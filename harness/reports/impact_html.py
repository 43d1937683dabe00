"""Impact ratios in the layout of an NYC Local Law 144 bias-audit summary.

One table per category set (each sensitive column, then their intersection) and per rate
(selection, then scoring): category, number of applicants, number selected (or scoring above
the median), the rate with its interval, the impact ratio with its interval, and the
four-fifths flag. Under each table: the number of people in an unknown category, and the
categories under 2% that were left out of the ratios with the reason (§ 5-301(d)).
"""

from __future__ import annotations

from typing import Any

from harness.records import RunRecord
from harness.render.html import Markup, el
from harness.render.numbers import MISSING, fmt, fmt_ci

SECTION = ("impact-ratios", "Impact ratios (NYC LL144 layout)")
RATE_WORDS = {
    "selection": ("Selection rate", "Number selected"),
    "scoring": ("Scoring rate", "Number above the median score"),
}


def impact_details(record: RunRecord) -> list[tuple[str, dict[str, Any]]]:
    """(suite name, details['impact']) of every finished suite that computed impact ratios."""
    out = []
    for suite in record.suites:
        impact = suite.details.get("impact")
        if suite.status == "ok" and isinstance(impact, dict) and isinstance(impact.get("tables"), list):
            out.append((suite.name, impact))
    return out


def _flag(row: dict[str, Any]) -> Markup | str:
    if row.get("excluded_small"):
        return el("span", "excluded (< 2%)", cls="badge skipped")
    flag = row.get("below_four_fifths")
    if flag is None:
        return MISSING
    return el("span", "below 4/5", cls="badge bad") if flag else el("span", "ok", cls="badge ok")


def _rate_table(table: dict[str, Any], rate: str) -> Markup:
    rate_word, count_word = RATE_WORDS[rate]
    head = el("tr", [
        el("th", c, scope="col")
        for c in ("Category", "Number of applicants", count_word, rate_word, "95% CI",
                  "Impact ratio", "95% CI", "Four-fifths")
    ])  # fmt: skip
    rows = []
    for row in table.get(rate) or []:
        ratio_ci = row.get("ratio_ci") or [None, None]
        rows.append(el(
            "tr",
            el("td", row.get("category"), el("span", " (reference)", cls="desc") if row.get("reference") else None),
            el("td", fmt(row.get("n")), cls="num"),
            el("td", fmt(row.get("selected")), cls="num"),
            el("td", fmt(row.get("rate")), cls="num"),
            el("td", fmt_ci(*(row.get("rate_ci") or [None, None])), cls="num"),
            el("td", fmt(row.get("impact_ratio")), cls="num"),
            el("td", fmt_ci(ratio_ci[0], ratio_ci[1]), cls="num"),
            el("td", _flag(row)),
            cls="flagged" if row.get("below_four_fifths") else None,
        ))  # fmt: skip
    caption = f"{rate_word}s by {' × '.join(str(c) for c in table.get('columns', []))}"
    return el("table", el("caption", caption), el("thead", head), el("tbody", rows), cls="data impact")


def _notes(table: dict[str, Any]) -> Markup:
    items: list[Any] = [
        el("li", f"Assessed: {fmt(table.get('n_assessed'))}; in an unknown category "
                 f"(not in the calculations above): {fmt(table.get('n_unknown'))}."),
        el("li", f"Scoring rate: share scoring above the median score of everyone assessed "
                 f"({fmt(table.get('score_median'))})."),
    ]
    for row in table.get("selection") or []:
        if row.get("excluded_small"):
            items.append(el("li", f"{row.get('category')}: {row.get('exclusion_reason')}"))
    return el("ul", items, cls="desc")


def section_body(record: RunRecord) -> list[Markup]:
    parts: list[Markup] = [
        el(
            "p",
            "Selection: the model predicts the bias suite's positive label. Impact ratio: a "
            "category's rate divided by the rate of the most selected category (reference). "
            "Rates have Wilson intervals, ratios Koopman score intervals; the four-fifths flag "
            "marks a ratio below 0.8, decided on exact counts.",
            cls="muted",
        )
    ]
    for suite_name, impact in impact_details(record):
        for table in impact["tables"]:
            if not isinstance(table, dict):
                continue
            kind = "intersectional categories" if table.get("intersectional") else "categories"
            parts.append(el("h3", f"{suite_name}: {kind} of {' × '.join(map(str, table.get('columns', [])))}"))
            parts += [_rate_table(table, "selection"), _rate_table(table, "scoring"), _notes(table)]
    return parts
