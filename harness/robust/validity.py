"""Validity of successful adversarial examples (Morris et al. 2020, "Reevaluating Adversarial
Examples in Natural Language"): a success counts as *valid* only if the perturbed text still
reads as the original with the same label.

Checks, each applied where it means something (by what changed, not by recipe name):

- ``similarity``: angular sentence-encoder similarity (multilingual USE, offline) at least the
  recipe's own threshold, or TextFooler's 0.8408 for recipes without one;
- ``pos``: every swapped word keeps its part of speech (universal tags of the tagged
  sentences, strict equality; Morris et al.'s grammaticality check); for word-level recipes
  every one-for-one substitution, for mixed ones (TextBugger) dictionary word for dictionary word;
- ``char_edits``: character edits (optimal string alignment distance: a transposition is one
  edit, a homoglyph one substitution) of character-level changes within a budget per word and
  overall (character and mixed recipes only);
- ``judge``: an independent label-preservation judge, when configured (``judge.py``): an NLI
  model must find the perturbed text entailed by the original, or an independent classifier
  must still give the true label.

A check that does not apply (no word swap, no character change, judge wrong on the original
already) passes as "not applicable" (``passed: null``) and does not reject.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from harness.records import StrictModel

CHECKS = ("similarity", "pos", "char_edits", "judge")
_WORD = re.compile(r"\w+(?:['’]\w+)*", re.UNICODE)


class JudgeParams(StrictModel):
    """An independent label-preservation judge (a local Hugging Face model folder)."""

    path: str = Field(description="Folder of a sequence-classification model (safetensors).")
    kind: Literal["nli", "classifier"] = Field(
        default="nli",
        description="nli: premise = original, hypothesis = perturbed, entailment needed; "
        "classifier: an independent model of the same labels must keep the true label.",
    )
    threshold: float = Field(
        default=0.5, ge=0.0, le=1.0,
        description="nli: minimum entailment probability; classifier: minimum probability of "
        "the true label.",
    )  # fmt: skip
    max_length: int = Field(default=256, ge=8, description="Truncation length of the judge.")
    batch_size: int = Field(default=16, ge=1)


class ValidityParams(StrictModel):
    """Which validity checks run on successful attacks, and their bars."""

    similarity_threshold: float | None = Field(
        default=None, gt=-1.0, le=1.0,
        description="Minimum angular USE similarity; null = the recipe's own (else 0.8408).",
    )  # fmt: skip
    pos: bool = Field(default=True, description="Swapped dictionary words keep their POS.")
    max_char_edits_per_word: int = Field(
        default=2, ge=0, description="Character edits allowed in one changed word."
    )
    max_char_edit_ratio: float = Field(
        default=0.1, ge=0.0, le=1.0,
        description="Character edits allowed over the whole text, as a share of its characters.",
    )  # fmt: skip
    judge: JudgeParams | None = Field(default=None, description="Label-preservation judge.")


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def osa_distance(a: str, b: str) -> int:
    """Optimal string alignment distance (Levenshtein plus adjacent transpositions)."""
    if a == b:
        return 0
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


@dataclass(frozen=True)
class Changes:
    """What changed between two texts: word swaps (position in each, both dictionary words)
    and character-level changes (original span, perturbed span)."""

    original: list[str]
    perturbed: list[str]
    swaps: list[tuple[int, int]]
    char_changes: list[tuple[str, str]]


def changes(
    original: str, perturbed: str, lexicon: frozenset[str], *, level: str = "char+word"
) -> Changes:
    """Align the two word sequences and sort every difference into a swap or a char change.

    ``level`` is the recipe's (``RecipeSpec.level``): a word-level recipe only substitutes
    words, so every one-for-one replacement is a swap even when the substitute (a rare WordNet
    synonym such as 'sapience') is outside the dictionary, and nothing is a character edit; a
    character-level recipe only edits characters, so nothing is a swap; a mixed recipe
    (TextBugger) is sorted by the dictionary: both words in it = a swap, else a char change."""
    a, b = words(original), words(perturbed)
    swaps: list[tuple[int, int]] = []
    chars: list[tuple[str, str]] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        if op == "replace" and i2 - i1 == j2 - j1:
            for i, j in zip(range(i1, i2), range(j1, j2), strict=True):
                if _is_swap(a[i], b[j], lexicon, level):
                    swaps.append((i, j))
                else:
                    chars.append((a[i], b[j]))
        elif level != "word":  # words split, merged, inserted or deleted by character edits
            chars.append((" ".join(a[i1:i2]), " ".join(b[j1:j2])))
        # a word-level recipe's multi-word substitute ('cliff-hanging', 'piece of work') has no
        # one-to-one alignment to tag: the similarity check alone judges it
    return Changes(a, b, swaps, chars)


def _is_swap(before: str, after: str, lexicon: frozenset[str], level: str) -> bool:
    if level == "word":
        return True
    if level == "char":
        return False
    return before.lower() in lexicon and after.lower() in lexicon


def read_lexicon(tagger_dir: Path) -> frozenset[str]:
    """The words of the tagger's lexicon (Brill's, ~94,000 entries): 'a dictionary word'."""
    out = set()
    for line in (tagger_dir / "en-lexicon.txt").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith(";;;"):
            out.add(line.split(" ", 1)[0].lower())
    return frozenset(out)


class ValidityChecker:
    """Runs the checks on one successful attack at a time (the suite's row writer calls it)."""

    def __init__(
        self,
        params: ValidityParams,
        *,
        encoder: Any,
        tagger: Any,
        lexicon: frozenset[str],
        judge: Any = None,
    ) -> None:
        self.params, self.encoder, self.tagger, self.lexicon, self.judge = (
            params, encoder, tagger, lexicon, judge,
        )  # fmt: skip

    def check(
        self,
        original: str,
        perturbed: str,
        label: int,
        *,
        similarity: float | None,
        recipe_threshold: float,
        level: str = "char+word",
    ) -> dict[str, Any]:
        """``{"valid", "rejected_by", "checks": {name: {"passed", ...}}}`` for one success
        (``level``: the recipe's, see ``changes``)."""
        found = changes(original, perturbed, self.lexicon, level=level)
        threshold = self.params.similarity_threshold
        bar = recipe_threshold if threshold is None else threshold
        checks: dict[str, dict[str, Any]] = {
            "similarity": {
                "passed": None if similarity is None else bool(similarity >= bar),
                "value": similarity, "threshold": bar,
            },
            "pos": self._pos(found),
            "char_edits": self._char_edits(found, original),
        }  # fmt: skip
        if self.judge is not None:
            checks["judge"] = self.judge.check(original, perturbed, label)
        rejected = [name for name, c in checks.items() if c["passed"] is False]
        return {"valid": not rejected, "rejected_by": rejected, "checks": checks}

    def _pos(self, found: Changes) -> dict[str, Any]:
        if not self.params.pos or not found.swaps:
            return {"passed": None, "swaps": len(found.swaps)}
        before = self.tagger.tag(found.original)
        after = self.tagger.tag(found.perturbed)
        broken = [
            f"{found.original[i]}/{before[i]} -> {found.perturbed[j]}/{after[j]}"
            for i, j in found.swaps
            if before[i] != after[j]
        ]
        return {"passed": not broken, "swaps": len(found.swaps), "mismatches": broken}

    def _char_edits(self, found: Changes, original: str) -> dict[str, Any]:
        if not found.char_changes:
            return {"passed": None, "edits": 0}
        per_word = [osa_distance(a, b) for a, b in found.char_changes]
        total = sum(per_word)
        budget = self.params.max_char_edit_ratio * max(len(original), 1)
        worst = max(per_word)
        passed = worst <= self.params.max_char_edits_per_word and total <= budget
        return {
            "passed": passed, "edits": total, "max_edits_in_a_word": worst,
            "budget": round(budget, 3), "per_word_budget": self.params.max_char_edits_per_word,
        }  # fmt: skip


def valid_result(result: str, validity: dict[str, Any] | None) -> str:
    """The row's outcome once validity is known: a success that failed a check is 'rejected'."""
    if result == "succeeded" and validity is not None and not validity["valid"]:
        return "rejected"
    return result


def check_names(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The checks that appear in the rows, in ``CHECKS`` order."""
    seen = {name for r in rows for name in ((r.get("validity") or {}).get("checks") or {})}
    return [c for c in CHECKS if c in seen]
