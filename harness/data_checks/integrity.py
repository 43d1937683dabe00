"""Integrity of one evaluation split: what a reader must know before trusting its figures.

Duplicate texts inside the split (by ``normalise.dedup_key``) and groups of them with conflicting
labels; class balance; length distribution in characters, words and (when the model has a
tokenizer) tokens, with the share truncated at ``max_length``; empty and near-empty texts (fewer
than ``near_empty_chars`` letters or digits); and the script mix, from the Unicode name of each
letter (``LATIN``, ``CYRILLIC``, ``CJK``, ``ARABIC`` …): a cheap detector that tells a corpus of
one script from a mixed one, not a language identifier.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.data_checks.normalise import dedup_key, words
from harness.records import Metric, proportion_metric

MIXED_SCRIPT_SHARE = 0.2  # a second script with at least this share of a text's letters
NO_SCRIPT = "(none)"


def script_of(ch: str) -> str | None:
    """The script of a letter, from its Unicode name's first word (None for a non-letter)."""
    if not ch.isalpha():
        return None
    name = unicodedata.name(ch, "")
    if not name:
        return "UNKNOWN"
    first = name.split()[0]
    return "CJK" if first in ("CJK", "HIRAGANA", "KATAKANA") else first


def text_scripts(text: str) -> Counter[str]:
    return Counter(s for s in map(script_of, text) if s is not None)


def _quantiles(values: Sequence[int]) -> dict[str, float]:
    if not values:
        return {}
    arr = np.asarray(values, dtype=np.float64)
    qs = {"min": 0.0, "p05": 0.05, "p50": 0.5, "p95": 0.95, "max": 1.0}
    return {k: float(np.quantile(arr, q)) for k, q in qs.items()} | {"mean": float(arr.mean())}


@dataclass(frozen=True)
class IntegrityResult:
    n: int
    duplicate_groups: list[list[int]]  # indices sharing a key, groups of two or more
    conflicting_groups: list[list[int]]  # duplicate groups whose labels differ
    class_counts: dict[str, int]
    lengths: dict[str, dict[str, float]]
    n_truncated: int | None
    near_empty: list[int]
    dominant_script: list[str]
    mixed_script: list[int]
    warnings: list[str] = field(default_factory=list)

    @property
    def n_duplicate_rows(self) -> int:
        """Rows that repeat an earlier row's text (a group of k counts k - 1)."""
        return sum(len(g) - 1 for g in self.duplicate_groups)

    def metrics(self) -> list[Metric]:
        n = self.n
        counts = [c for c in self.class_counts.values()]
        present = [c for c in counts if c > 0]
        scripts = Counter(self.dominant_script)
        top = scripts.most_common(1)[0][1] if scripts else 0
        out = [
            proportion_metric("integrity.duplicate_share", self.n_duplicate_rows, n, higher=False,
                              description="Rows whose normalised text repeats an earlier row of the split."),
            Metric(name="integrity.conflicting_label_groups", value=float(len(self.conflicting_groups)), higher_is_better=False, n=n,
                   description="Groups of duplicate texts whose labels disagree."),
            proportion_metric("integrity.near_empty_share", len(self.near_empty), n, higher=False,
                              description="Texts with fewer letters or digits than near_empty_chars."),
            Metric(name="integrity.imbalance_ratio", value=max(present) / min(present) if present else None, higher_is_better=None, n=n,
                   description="Largest class count over the smallest non-empty one."),
            Metric(name="integrity.missing_classes", value=float(sum(c == 0 for c in counts)), higher_is_better=False, n=n,
                   description="Classes of the label set without an example in the split."),
            proportion_metric("integrity.minority_script_share", n - top, n, higher=False,
                              description="Texts whose dominant script is not the split's most common one (or that have no letters)."),
            proportion_metric("integrity.mixed_script_share", len(self.mixed_script), n, higher=False,
                              description=f"Texts with a second script holding at least {MIXED_SCRIPT_SHARE:.0%} of their letters."),
        ]  # fmt: skip
        if self.n_truncated is not None:
            out.append(proportion_metric("integrity.truncated_share", self.n_truncated, n, higher=False,
                                         description="Texts longer than the model's max_length (their end is not seen)."))  # fmt: skip
        for name, stats in self.lengths.items():
            if "p50" in stats:
                out.append(Metric(name=f"integrity.length.{name}.median", value=stats["p50"], higher_is_better=None, n=n,
                                  unit=name, description=f"Median text length in {name}."))  # fmt: skip
        return out

    def details(self, ids: Sequence[str], texts: Sequence[str], labels: Sequence[str], limit: int) -> dict[str, Any]:
        def show(group: list[int]) -> dict[str, Any]:
            return {"ids": [ids[i] for i in group], "text": texts[group[0]], "labels": sorted({labels[i] for i in group})}

        return {
            "class_counts": self.class_counts,
            "lengths": self.lengths,
            "scripts": dict(sorted(Counter(self.dominant_script).items())),
            "duplicates": [show(g) for g in self.duplicate_groups[:limit]],
            "conflicting_labels": [show(g) for g in self.conflicting_groups[:limit]],
            "near_empty": [{"id": ids[i], "text": texts[i]} for i in self.near_empty[:limit]],
            "mixed_script": [{"id": ids[i], "text": texts[i], "scripts": dict(text_scripts(texts[i]))} for i in self.mixed_script[:limit]],
        }


def _scripts(texts: Sequence[str]) -> tuple[list[str], list[int]]:
    dominant, mixed = [], []
    for i, text in enumerate(texts):
        counts = text_scripts(text)
        total = sum(counts.values())
        if not total:
            dominant.append(NO_SCRIPT)
            continue
        ranked = counts.most_common()
        dominant.append(ranked[0][0])
        if len(ranked) > 1 and ranked[1][1] / total >= MIXED_SCRIPT_SHARE:
            mixed.append(i)
    return dominant, mixed


def check_integrity(
    texts: Sequence[str],
    labels: Sequence[int],
    label_names: Sequence[str],
    *,
    near_empty_chars: int = 3,
    token_lengths: Sequence[int] | None = None,
    truncated: Sequence[bool] | None = None,
) -> IntegrityResult:
    """Everything in the module docstring, for one split (labels as indices into label_names)."""
    keys = [dedup_key(t) for t in texts]
    by_key: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        if key:
            by_key.setdefault(key, []).append(i)
    groups = [g for g in by_key.values() if len(g) > 1]
    conflicting = [g for g in groups if len({labels[i] for i in g}) > 1]
    counts = Counter(labels)
    class_counts = {name: int(counts.get(k, 0)) for k, name in enumerate(label_names)}
    lengths = {"characters": _quantiles([len(t) for t in texts]), "words": _quantiles([len(words(t)) for t in texts])}
    if token_lengths is not None:
        lengths["tokens"] = _quantiles(list(token_lengths))
    dominant, mixed = _scripts(texts)
    warnings = [f"class {name!r} has no example in the evaluation split" for name, c in class_counts.items() if c == 0]
    if conflicting:
        warnings.append(f"{len(conflicting)} group(s) of duplicate texts carry different labels; see details.conflicting_labels")
    return IntegrityResult(
        n=len(texts), duplicate_groups=groups, conflicting_groups=conflicting, class_counts=class_counts,
        lengths=lengths, n_truncated=None if truncated is None else int(sum(truncated)),
        near_empty=[i for i, k in enumerate(keys) if len(k) < near_empty_chars],
        dominant_script=dominant, mixed_script=mixed, warnings=warnings,
    )  # fmt: skip
