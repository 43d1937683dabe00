"""Per-example outcomes in words, and the keys the report's worst cases are ranked by.

A row of an attack or a perturbation becomes one line a person reads at a glance::

    fresh → rotten, p(fresh) 0.996 → 0.008, 2 of 3 words changed

(the prediction before → after, the probability of the *original* prediction before → after,
and how many of the original words the change touched). Rows come from suites written
independently, so fields are looked up by the few names the built-in suites and TextAttack
use; a row without them reads as what it has.

Ranking (``RankKey``): worst cases are ordered by a stated key, never by file order.
Attacks by the smallest perturbation that flipped the label (fewest words changed, then the
largest confidence drop); meaning-preserving perturbations and swaps by the largest
confidence drop; attributions of misclassified examples by the most confident error.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.render.numbers import is_number

Row = Mapping[str, Any]
BEFORE_KEYS = ("original_pred", "pred_before", "predicted_original")
AFTER_KEYS = ("perturbed_pred", "pred_after", "predicted_swapped")


def _first(row: Row, keys: Sequence[str]) -> Any:
    return next((row[k] for k in keys if row.get(k) is not None), None)


def class_index(value: Any, labels: Sequence[str]) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if not labels or 0 <= value < len(labels) else None
    if isinstance(value, str) and value in labels:
        return list(labels).index(value)
    return None


def class_name(value: Any, labels: Sequence[str]) -> str:
    index = class_index(value, labels)
    if index is not None and index < len(labels):
        return labels[index]
    return str(value)


def _scores(row: Row, key: str) -> list[float] | None:
    value = row.get(key)
    if isinstance(value, list) and value and all(is_number(v) for v in value):
        return [float(v) for v in value]
    return None


def probabilities(row: Row, labels: Sequence[str]) -> tuple[str, float, float] | None:
    """(class, p before, p after) for the class predicted before the change."""
    before, after = _scores(row, "scores_before"), _scores(row, "scores_after")
    c = class_index(_first(row, BEFORE_KEYS), labels)
    if (
        before is not None
        and after is not None
        and c is not None
        and c < min(len(before), len(after))
    ):
        return class_name(c, labels), before[c], after[c]
    return None


def confidence_drop(row: Row, labels: Sequence[str]) -> float | None:
    """How far the probability of the original prediction fell (swaps: the score's |Δ|)."""
    probs = probabilities(row, labels)
    if probs is not None:
        return probs[1] - probs[2]
    for key in ("abs_delta_p", "abs_delta_p_true"):
        if is_number(row.get(key)):
            return float(row[key])
    a, b = row.get("score_original"), row.get("score_swapped")
    if is_number(a) and is_number(b):
        return abs(float(b) - float(a))
    return None


def words_changed(before: str, after: str) -> tuple[int, int]:
    """(words of ``before`` replaced or deleted, plus words inserted between them; words in
    ``before``). A replacement counts the original words it touched ("that's" -> "that is"
    is one word changed), so the count never exceeds what the reader sees struck out, except
    for pure insertions."""
    a, b = before.split(), after.split()
    changed = 0
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op in ("replace", "delete"):
            changed += i2 - i1
        elif op == "insert":
            changed += j2 - j1
    return changed, len(a)


def _p(value: float) -> str:
    return f"{value:.3f}"


def in_words(row: Row, pair: tuple[str, str] | None, labels: Sequence[str]) -> str:
    """``fresh → rotten, p(fresh) 0.996 → 0.008, 2 of 3 words changed`` (what the row has)."""
    parts: list[str] = []
    before, after = _first(row, BEFORE_KEYS), _first(row, AFTER_KEYS)
    if before is not None and after is not None:
        parts.append(f"{class_name(before, labels)} → {class_name(after, labels)}")
    probs = probabilities(row, labels)
    if probs is not None:
        parts.append(f"p({probs[0]}) {_p(probs[1])} → {_p(probs[2])}")
    elif is_number(row.get("score_original")) and is_number(row.get("score_swapped")):
        parts.append(f"score {_p(row['score_original'])} → {_p(row['score_swapped'])}")
    if pair is not None:
        k, n = words_changed(*pair)
        parts.append(f"{k} of {n} word{'s' if n != 1 else ''} changed")
    if is_number(row.get("queries")):
        parts.append(f"{int(row['queries'])} queries")
    return ", ".join(parts)


@dataclass(frozen=True)
class RankKey:
    """A stated order: ``describe`` is printed beside the cases it orders."""

    describe: str
    sort_key: Callable[[Row], tuple[Any, ...]]


def _missing_last(value: float | None, descending: bool) -> tuple[int, float]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return (1, 0.0)
    return (0, -value if descending else value)


def smallest_flip(
    labels: Sequence[str], pair_of: Callable[[Row], tuple[str, str] | None]
) -> RankKey:
    def key(row: Row) -> tuple[Any, ...]:
        pair = pair_of(row)
        share = None
        if pair is not None:
            k, n = words_changed(*pair)
            share = k / n if n else None
        drop = confidence_drop(row, labels)
        return (_missing_last(share, False), _missing_last(drop, True), str(row.get("id", "")))

    return RankKey(
        "smallest perturbation that flipped the label first (share of words changed; "
        "ties: largest drop in the probability of the original prediction)",
        key,
    )


def largest_drop(labels: Sequence[str]) -> RankKey:
    def key(row: Row) -> tuple[Any, ...]:
        return (_missing_last(confidence_drop(row, labels), True), str(row.get("id", "")))

    return RankKey("largest drop in the probability of the original prediction first", key)


def most_confident_error() -> RankKey:
    def key(row: Row) -> tuple[Any, ...]:
        p = row.get("probability")
        return (_missing_last(float(p) if is_number(p) else None, True), str(row.get("id", "")))

    return RankKey("most confident errors first (probability of the wrong prediction)", key)


def least_confident() -> RankKey:
    def key(row: Row) -> tuple[Any, ...]:
        p = row.get("probability")
        return (_missing_last(float(p) if is_number(p) else None, False), str(row.get("id", "")))

    return RankKey("least confident predictions first", key)
