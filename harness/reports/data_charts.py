"""The ``data`` chart kind: the data suite's findings, drawn from its recorded ``details``.

Confirmed weak slices (accuracy on held-out examples, with intervals, beside the rest), class
balance, the script mix, and tables of contaminated examples (with the matched training id),
probable label errors, duplicates and label conflicts. Like every chart renderer it reads shapes
defensively: a missing key draws nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.records import ChartSpec, SuiteRecord
from harness.render.charts import Bar, bar_chart
from harness.render.html import Markup, el
from harness.render.numbers import fmt, fmt_ci
from harness.reports.suite_charts import CI_CAPTION, Rows, chart_kind, figure

MAX_ROWS = 50


def _table(title: str, rows: Any, columns: Sequence[tuple[str, str]]) -> Markup | None:
    """A captioned table of ``rows`` (a list of mappings) with the given (key, heading) columns."""
    if not isinstance(rows, list) or not rows:
        return None
    head = el("tr", [el("th", heading, scope="col") for _, heading in columns])
    body = []
    for row in rows[:MAX_ROWS]:
        if isinstance(row, Mapping):
            cells = [row.get(key) for key, _ in columns]
            body.append(el("tr", [el("td", fmt(v) if not isinstance(v, (str, list)) else _text(v)) for v in cells]))
    return el("table", el("caption", title), el("thead", head), el("tbody", body), cls="data")


def _add(out: list[Markup], item: Markup | None) -> None:
    if item is not None:
        out.append(item)


def _text(value: str | list[Any]) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else value


def _slices(details: Mapping[str, Any]) -> list[Markup]:
    info = details.get("slices")
    if not isinstance(info, Mapping):
        return []
    confirmed = info.get("confirmed") or []
    out: list[Markup] = []
    if confirmed:
        bars = []
        for s in confirmed:
            bars.append(Bar(f"{s['slug']} (n={s.get('n_confirm')})", s.get("accuracy"), s.get("ci_low"), s.get("ci_high")))
            bars.append(Bar(f"rest of the half ({s['slug']})", s.get("rest_accuracy")))
        out.append(figure(bar_chart(bars, title="Confirmed weak slices: accuracy on the confirmation half", unit_interval=True), CI_CAPTION))
        shown = [{**s, "ci": fmt_ci(s.get("ci_low"), s.get("ci_high")), "gap_ci": fmt_ci(s.get("gap_ci_low"), s.get("gap_ci_high"))} for s in confirmed]
        table = _table("Confirmed weak slices (figures from the held-out half; q: Benjamini–Hochberg)", shown, [
            ("slug", "Slice"), ("description", "Description"), ("n", "n (split)"), ("n_confirm", "n (held out)"),
            ("accuracy", "Accuracy"), ("ci", "95% CI"), ("rest_accuracy", "Rest"), ("gap", "Gap"), ("gap_ci", "Gap 95% CI"),
            ("q", "q"), ("failing_ids", "Misclassified (ids)"),
        ])  # fmt: skip
        _add(out, table)
    else:
        out.append(el("p", f"No weak slice confirmed on held-out data ({len(info.get('tested') or [])} of "
                           f"{info.get('n_candidates')} candidates tested; FDR {info.get('fdr')}).", cls="muted"))  # fmt: skip
    return out


def _integrity(details: Mapping[str, Any]) -> list[Markup]:
    info = details.get("integrity")
    if not isinstance(info, Mapping):
        return []
    out: list[Markup] = []
    for key, title in (("class_counts", "Class balance (examples per label)"), ("scripts", "Dominant script of each text")):
        counts = info.get(key)
        if isinstance(counts, Mapping) and counts:
            bars = [Bar(str(k), float(v)) for k, v in counts.items() if isinstance(v, (int, float))]
            out.append(figure(bar_chart(bars, title=title)))
    for key, title in (("duplicates", "Duplicate texts inside the split"), ("conflicting_labels", "Duplicates with conflicting labels")):
        table = _table(title, info.get(key), [("ids", "Ids"), ("text", "Text"), ("labels", "Labels")])
        _add(out, table)
    table = _table("Near-empty texts", info.get("near_empty"), [("id", "Id"), ("text", "Text")])
    _add(out, table)
    return out


def _summary(suite: SuiteRecord) -> list[Markup]:
    """One sentence each for contamination (and where the clean figures are) and the shift test."""
    m = {x.name: x for x in suite.metrics}
    out: list[Markup] = []
    share = m.get("contamination.share")
    if share is not None and share.value is not None:
        text = f"Contaminated share: {fmt(share.value)} {fmt_ci(share.ci_low, share.ci_high)} of {share.n} examples."
        if share.value > 0:
            text += (" Every suite scored on predictions also reports its figures on the clean subset"
                     " (subset.clean.*) and the gap to the full split (subset.clean.gap.*).")
        out.append(el("p", text))
    p = m.get("shift.p_value")
    shift = suite.details.get("shift")
    if p is not None and p.value is not None and isinstance(shift, Mapping):
        out.append(el("p", f"Shift against {shift.get('reference')}: MMD² {fmt(m['shift.mmd2'].value if 'shift.mmd2' in m else None)}, "
                           f"permutation p = {fmt(p.value)} ({shift.get('n_reference')} vs {shift.get('n_evaluation')} examples; "
                           f"embedding: {shift.get('embedding')}); OOV share {fmt(m['shift.oov_share'].value if 'shift.oov_share' in m else None)} "
                           f"against {fmt(m['shift.oov_share_baseline'].value if 'shift.oov_share_baseline' in m else None)} within the reference."))  # fmt: skip
    return out


@chart_kind("data", reads_details=True)
def data_charts(suite: SuiteRecord, spec: ChartSpec, rows: Rows) -> list[Markup]:
    details = suite.details
    out: list[Markup] = _summary(suite)
    seen = details.get("seen")
    if isinstance(seen, Mapping):
        sets = ", ".join(f"{s.get('name')} ({s.get('n')})" for s in seen.get("sets") or [] if isinstance(s, Mapping))
        out.append(el("p", f"Seen data checked for contamination: {seen.get('how')}: {sets or 'none'}."))
    contamination = details.get("contamination")
    if isinstance(contamination, Mapping):
        table = _table("Contaminated examples (strongest match in the seen data)", contamination.get("examples"), [
            ("id", "Id"), ("text", "Text"), ("kind", "Kind"), ("similarity", "Similarity"),
            ("matched_split", "Seen in"), ("matched_id", "Matched id"), ("matched_text", "Matched text"),
        ])  # fmt: skip
        _add(out, table)
    issues = details.get("label_issues")
    if isinstance(issues, Mapping):
        table = _table("Probable label errors (cleanlab)", issues.get("examples"), [
            ("id", "Id"), ("text", "Text"), ("given", "Given"), ("suggested", "Suggested"), ("p_given", "p(given)"),
        ])  # fmt: skip
        _add(out, table)
    out += _slices(details)
    out += _integrity(details)
    return out
