"""Worst cases from the per-example rows: adversarial and counterfactual pairs with the changed
words marked and the outcome in words, template gaps, and attribution heat-maps of
misclassified examples. Each view is ranked by a key it states (``reports.outcomes``).

Rows come from suites written independently, so fields are looked up by a few known names and
rows without them are passed over. Every text is escaped by ``el``.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

from harness.records import SuiteRecord
from harness.render.html import Markup, el
from harness.render.numbers import fmt, fmt_svg, is_number
from harness.reports import outcomes

Row = dict[str, Any]
PER_GROUP = 5  # examples shown per recipe / perturbation / method
MAX_WORDS = 120  # heat-maps of very long texts are cut (the JSONL has the rest)
EXTREMES = 3  # highest- and lowest-scored fillers shown per template

PAIR_KEYS = (
    ("original_text", "perturbed_text"),
    ("original_text", "counterfactual_text"),
    ("text", "perturbed_text"),
    ("text", "counterfactual_text"),
    ("original", "perturbed"),
    ("original", "swapped"),
)
GROUP_KEYS = ("recipe", "perturbation", "swap", "kind", "group")
SUCCESS = ("succeeded", "successful", "success")


def word_diff(before: str, after: str) -> tuple[Markup, Markup]:
    """Both texts with the words that differ wrapped in <del> (before) and <ins> (after)."""
    a, b = before.split(), after.split()
    left: list[Markup] = []
    right: list[Markup] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            left.append(el("span", " ".join(a[i1:i2])))
            right.append(el("span", " ".join(b[j1:j2])))
            continue
        if i2 > i1:
            left.append(el("del", " ".join(a[i1:i2])))
        if j2 > j1:
            right.append(el("ins", " ".join(b[j1:j2])))
    return Markup(" ".join(left)), Markup(" ".join(right))


def _pair(row: Mapping[str, Any]) -> tuple[str, str] | None:
    for first, second in PAIR_KEYS:
        if isinstance(row.get(first), str) and isinstance(row.get(second), str):
            return row[first], row[second]
    return None


def _is_bad(row: Mapping[str, Any]) -> bool:
    """A successful attack, or a prediction that flipped under a meaning-preserving change."""
    result = row.get("result", row.get("result_type"))
    if isinstance(result, str):
        return result.lower() in SUCCESS
    if isinstance(row.get("flipped"), bool):
        return bool(row["flipped"])
    before = row.get("pred_before", row.get("original_pred"))
    after = row.get("pred_after", row.get("perturbed_pred"))
    return before is not None and after is not None and before != after


def _is_attack(rows: Sequence[Row]) -> bool:
    """Attack rows (TextAttack results) are ranked by the smallest flip; others by the drop."""
    return any("result" in r or "result_type" in r for r in rows)


def pair_cases(rows: Sequence[Row], labels: Sequence[str] = ()) -> list[Markup]:
    """Changed texts grouped by recipe or perturbation, ranked by a stated key (attacks: the
    smallest perturbation that flipped the label; perturbations and swaps: the largest drop in
    the probability of the original prediction), at most PER_GROUP each."""
    groups: dict[str, list[Row]] = {}
    n_pairs = 0
    for row in rows:
        pair = _pair(row)
        # An attack that failed has no pair; a perturbation that changed nothing does not count.
        n_pairs += (pair is not None and row.get("changed") is not False) or "result" in row
        if pair is None or not _is_bad(row):
            continue
        key = str(next((row[k] for k in GROUP_KEYS if k in row), "examples"))
        groups.setdefault(key, []).append(row)
    out = []
    if n_pairs and not groups:
        # Say so: an empty section would read as "not tested" rather than "held up".
        out.append(
            el(
                "p",
                f"{n_pairs} examples were attacked or perturbed; no attack succeeded "
                "and no prediction flipped.",
                cls="muted",
            )
        )
    head = el("tr", [el("th", c, scope="col") for c in ("id", "original", "changed", "outcome")])
    for key in sorted(groups):
        members = groups[key]
        rank = (
            outcomes.smallest_flip(labels, _pair)
            if _is_attack(members)
            else outcomes.largest_drop(labels)
        )
        ranked = sorted(members, key=rank.sort_key)[:PER_GROUP]
        body = []
        for row in ranked:
            pair = _pair(row)
            assert pair is not None  # only rows with a pair are grouped
            before, after = word_diff(*pair)
            body.append(
                el(
                    "tr",
                    el("td", el("code", str(row.get("id", "")))),
                    el("td", before, cls="text"),
                    el("td", after, cls="text"),
                    el("td", outcomes.in_words(row, pair, labels), cls="small outcome"),
                )
            )
        what = "successful attacks" if _is_attack(members) else "flipped predictions"
        caption = f"{key} — {len(ranked)} of {len(members)} {what}, ranked by: {rank.describe}"
        out.append(
            el(
                "table",
                el("caption", caption),
                el("thead", head),
                el("tbody", body),
                cls="data cases",
            )
        )
    return out


def template_gaps(rows: Sequence[Row]) -> list[Markup]:
    """Templates whose fillers moved the score most (counterfactual token fairness cases).

    Instances are grouped by (category, template) so names and identity terms are not mixed;
    each table shows the highest- and lowest-scored fillers of the template.
    """
    by_template: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        if isinstance(row.get("template"), str) and is_number(row.get("score")):
            key = (str(row.get("category", "")), row["template"])
            by_template.setdefault(key, []).append(row)
    gaps = sorted(
        (
            (max(r["score"] for r in rs) - min(r["score"] for r in rs), key)
            for key, rs in by_template.items()
            if len(rs) >= 2
        ),
        key=lambda g: (-g[0], g[1]),
    )
    out = []
    head = el("tr", [el("th", c, scope="col") for c in ("group", "filler", "text", "score")])
    for gap, key in gaps[:PER_GROUP]:
        members = sorted(by_template[key], key=lambda r: (-r["score"], str(r.get("filler"))))
        if len(members) > 2 * EXTREMES:
            members = members[:EXTREMES] + members[-EXTREMES:]
        body = [
            el(
                "tr",
                el("td", str(r.get("group", ""))),
                el("td", str(r.get("filler", ""))),
                el("td", str(r.get("text", ""))),
                el("td", fmt(r["score"]), cls="num"),
            )
            for r in members
        ]
        category, template = key
        title = f"{category}: {template}" if category else template
        caption = el("caption", f"{title} — largest score gap {fmt(gap)}")
        out.append(el("table", caption, el("thead", head), el("tbody", body), cls="data cases"))
    return out


VALUE_KEYS = ("attributions", "scores", "values", "word_attributions")


def _attribution_sets(row: Mapping[str, Any]) -> list[tuple[str, list[float]]]:
    """(method, one value per word) pairs; a method may map to a list or to a mapping that
    holds the list under a common key (with its own deltas beside it)."""
    attributions = row.get("attributions")
    words = row.get("words")
    if not isinstance(words, list):
        return []
    if isinstance(attributions, Mapping):
        found = [(str(k), v) for k, v in sorted(attributions.items())]
    elif isinstance(attributions, list):
        found = [("attribution", attributions)]
    else:
        return []
    out = []
    for name, values in found:
        if isinstance(values, Mapping):
            values = next((values[k] for k in VALUE_KEYS if isinstance(values.get(k), list)), None)
        if isinstance(values, list) and len(values) == len(words):
            out.append((name, [float(x) if is_number(x) else 0.0 for x in values]))
    return out


def heatmap(words: Sequence[str], values: Sequence[float]) -> Markup:
    """Words shaded by attribution: red toward the explained class, blue against it."""
    top = max((abs(v) for v in values), default=0.0) or 1.0
    spans = []
    for word, value in list(zip(words, values, strict=False))[:MAX_WORDS]:
        alpha = fmt_svg(0.85 * abs(value) / top)
        colour = "192,57,43" if value >= 0 else "43,108,176"
        spans.append(
            el(
                "span",
                str(word),
                cls="w",
                style=f"background-color:rgba({colour},{alpha})",
                title=fmt(value),
            )
        )
    cut = (
        el("span", f" … ({len(words) - MAX_WORDS} more words)", cls="muted")
        if len(words) > MAX_WORDS
        else None
    )
    return Markup(" ".join(spans) + (cut or ""))


def attribution_cases(rows: Sequence[Row]) -> list[Markup]:
    """Heat-maps of misclassified examples, the most confident errors first; the least
    confident correct ones if none is wrong."""
    usable = [r for r in rows if _attribution_sets(r)]
    wrong = [
        r
        for r in usable
        if r.get("predicted") is not None
        and r.get("label") is not None
        and r.get("predicted") != r.get("label")
    ]
    rank = outcomes.most_confident_error() if wrong else outcomes.least_confident()
    note = (
        None
        if wrong
        else "No misclassified example in the sample; the least confident predictions are shown."
    )
    chosen = sorted(wrong or usable, key=rank.sort_key)
    items = []
    for row in chosen[: PER_GROUP + 1]:
        facts = "; ".join(
            f"{k}: {row[k] if isinstance(row[k], str) else fmt(row[k])}"
            for k in ("id", "label", "predicted", "probability", "target")
            if row.get(k) is not None
        )
        lines = [
            el("div", el("span", name, cls="method"), heatmap(row["words"], values), cls="heat")
            for name, values in _attribution_sets(row)
        ]
        items.append(el("div", el("p", facts, cls="small"), lines, cls="case"))
    if not items:
        return []
    ranked_by = el("p", f"Ranked by: {rank.describe}.", cls="muted rank")
    return [el("p", note, cls="muted") if note else None, ranked_by, *items]  # type: ignore[list-item]


def worst_cases(
    suite: SuiteRecord, rows: Sequence[Row], labels: Sequence[str] = ()
) -> list[Markup]:
    """All worst-case views that this suite's rows support, each ranked by a stated key;
    ``labels`` (the record's label names, in index order) name the classes in the outcomes."""
    name = suite.base_name
    out: list[Markup] = []
    if name == "explain" or any("attributions" in r for r in rows[:5]):
        out += attribution_cases(rows)
    out += pair_cases(rows, labels)
    out += template_gaps(rows)
    return [m for m in out if m is not None]
