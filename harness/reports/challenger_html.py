"""The challenger section: both runs side by side with the gate's paired statistics."""

from __future__ import annotations

from typing import Any

from harness.render.html import Markup, el
from harness.render.numbers import MISSING, fmt, fmt_ci
from harness.reports.challenger import ChallengerComparison, MetricPair

SECTION = ("challenger", "Challenger comparison")
BETTER_WORDS = {
    "champion": ("champion", "badge ok"),
    "challenger": ("challenger", "badge bad"),
    "neither": ("no significant difference", "badge"),
    "untested": ("not tested", "badge skipped"),
}


def _test_words(pair: MetricPair) -> str:
    """The gate's test, or why there is none (the gate's own note when it could not test)."""
    test = pair.verdict.test if pair.verdict else None
    if test is None:
        return pair.why_untested or MISSING
    if test.kind == "none":
        return f"none: {test.note}" if test.note else "none"
    return test.method


def _row(pair: MetricPair) -> Markup:
    v = pair.verdict
    test = v.test if v else None
    word, cls = BETTER_WORDS[pair.better]
    a, b = pair.champion, pair.challenger
    return el(
        "tr",
        el("td", el("code", f"{pair.suite}.{pair.metric}")),
        el("td", fmt(a.value), el("div", fmt_ci(a.ci_low, a.ci_high), cls="desc"), cls="num"),
        el("td", fmt(b.value), el("div", fmt_ci(b.ci_low, b.ci_high), cls="desc"), cls="num"),
        el("td", fmt(v.change) if v and v.change is not None else MISSING, cls="num"),
        el("td", fmt_ci(test.diff_low, test.diff_high) if test else MISSING, cls="num"),
        el("td", _test_words(pair)),
        el("td", fmt(test.n) if test else MISSING, cls="num"),
        el("td", fmt(test.p_value) if test else MISSING, cls="num"),
        el("td", fmt(v.p_adjusted) if v else MISSING, cls="num"),
        el("td", el("span", word, cls=cls)),
        el("td", v.status if v else MISSING),
        cls=f"better-{pair.better}",
    )


def _table(pairs: list[MetricPair]) -> Markup:
    head = el("tr", [
        el("th", h, scope="col")
        for h in ("Metric", "Champion", "Challenger", "Change", "95% CI of change", "Test", "n",
                  "p", "p (Holm)", "Better", "Gate")
    ])  # fmt: skip
    return el("table", el("thead", head), el("tbody", [_row(p) for p in pairs]), cls="data challenger")


def section_body(c: ChallengerComparison) -> list[Any]:
    a, b = c.champion_record, c.challenger_record
    tested = len(c.pairs) - c.count("untested")
    with_p = sum(1 for p in c.pairs if p.verdict and p.verdict.p_adjusted is not None)
    summary = el(
        "ul",
        el("li", f"Champion: {a.model.name} (run {a.run_id}); challenger: {b.model.name} (run {b.run_id})."),
        el("li", f"{len(c.pairs)} shared metrics; {tested} tested as the gate tests them "
                 f"({with_p} by a p-value, Holm-adjusted together; {tested - with_p} by interval "
                 f"overlap): the champion is better on {c.count('champion')}, "
                 f"the challenger on {c.count('challenger')}, no significant difference on "
                 f"{c.count('neither')}; {c.count('untested')} not tested (reason in the Test column)."),
        el("li", f"Metrics in one run only: {c.only_champion} in the champion, {c.only_challenger} in the challenger."),
    )
    parts: list[Any] = [
        el("p", "Change is challenger − champion on the examples both runs scored. Better: the "
                "run whose value is significantly better at α = 0.05 after Holm (paired tests "
                "of harness gate; without per-example data, non-overlapping intervals).", cls="muted"),
        summary,
    ]
    timed = [s.name for s in a.suites if s.caps().measures_machine and any(p.suite == s.name for p in c.pairs)]
    if timed:
        parts.append(el("p", f"{', '.join(timed)}: these figures measure the machine at the time of "
                             "each run as much as the model; compare them only between runs made "
                             "on the same, quiet machine.", cls="notice"))
    for side in ("champion", "challenger"):
        better = [p for p in c.pairs if p.better == side]
        parts.append(el("h3", f"Where the {side} is better ({len(better)})"))
        parts.append(_table(better) if better else el("p", "Nowhere, significantly.", cls="muted"))
    suites = list(dict.fromkeys(p.suite for p in c.pairs))
    for suite in suites:
        rows = [p for p in c.pairs if p.suite == suite]
        parts.append(el("details", el("summary", f"Every shared metric of {suite} ({len(rows)})"), _table(rows)))
    notes = c.verdict.notes if c.verdict else ()
    if notes:
        parts.append(el("details", el("summary", f"Notes of the gate ({len(notes)})"),
                        el("ul", [el("li", n) for n in notes], cls="desc")))
    parts.append(el("details", el("summary", "The gate policy that reproduces this comparison"),
                    el("pre", c.policy_yaml())))
    return parts
