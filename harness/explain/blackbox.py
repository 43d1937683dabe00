"""Word attributions and their faithfulness through ``predict_proba`` alone, for model kinds
that give no gradient access (zero-shot, prompted LMs, SetFit): the explain suite's fallback.

Words are the text's whitespace-separated tokens. A word's attribution is its leave-one-out
ablation, ``p(target | x) - p(target | x without the word)`` (occlusion by deletion: with no
token access there is no baseline token to put in its place). Faithfulness (ERASER
comprehensiveness / sufficiency, deletion / insertion curves) is computed by the same code as
for the gradient methods (``faithfulness.faithfulness_for``), on texts rebuilt from the kept
words joined by single spaces. Rows have the gradient path's layout, so the suite's summary
reads both alike.

Each text is a ``TokenizedText`` whose "tokens" are word codes (one per word, unique per
distinct word string), so perturbed sequences are cache keys that map back to one text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.explain.faithfulness import RemovalConfig, faithfulness_for, rank_words
from harness.explain.words import TokenizedText
from harness.records import finite_or_none, json_safe

RANDOM = "random"
DEPARTURE = (
    "explain ran black-box word ablation through predict_proba (the model kind gives no "
    "gradient access): words split on whitespace, each removed by deletion, leave-one-out "
    "attribution p(x) - p(x without the word); removal texts are the kept words joined by spaces"
)


class WordCodes:
    """A word <-> integer code table shared by every text of a run of the suite."""

    def __init__(self) -> None:
        self.code: dict[str, int] = {}
        self.words: list[str] = []

    def encode(self, words: Sequence[str]) -> tuple[int, ...]:
        out = []
        for w in words:
            if w not in self.code:
                self.code[w] = len(self.words)
                self.words.append(w)
            out.append(self.code[w])
        return tuple(out)

    def text(self, codes: Sequence[int]) -> str:
        return " ".join(self.words[c] for c in codes)


def word_items(ids: Sequence[str], texts: Sequence[str], codes: WordCodes) -> list[TokenizedText]:
    items = []
    for ident, text in zip(ids, texts, strict=True):
        words = tuple(text.split())
        items.append(TokenizedText(
            id=str(ident), ids=codes.encode(words), word_of_token=tuple(range(len(words))),
            words=words, truncated=False,
        ))  # fmt: skip
    return items


class TextScorer:
    """``faithfulness.ProbabilityScorer``'s interface over texts: sequences of word codes are
    joined into texts and scored by ``model.predict_proba`` in one call per batch."""

    def __init__(self, model: Any, codes: WordCodes) -> None:
        self.model, self.codes = model, codes
        self.cache: dict[tuple[int, ...], Any] = {}

    def add(self, sequences: Sequence[tuple[int, ...]]) -> None:
        todo = sorted(
            {tuple(s) for s in sequences if tuple(s) not in self.cache}, key=lambda s: (len(s), s)
        )
        if not todo:
            return
        probs = self.model.predict_proba([self.codes.text(s) for s in todo])
        for seq, row in zip(todo, probs, strict=True):
            self.cache[seq] = np.asarray(row, dtype=np.float64)

    def prob(self, sequence: tuple[int, ...], target: int) -> float:
        return float(self.cache[tuple(sequence)][target])


@dataclass(frozen=True)
class BlackBoxConfig:
    target: str  # 'predicted' or 'true'
    removal: RemovalConfig
    label_names: tuple[str, ...]
    seed: int
    random_control: bool


def explain_batch(
    scorer: TextScorer, items: Sequence[TokenizedText], labels: Sequence[int], cfg: BlackBoxConfig,
    random_seed: Any,
) -> list[dict[str, Any]]:  # fmt: skip
    """One row per item: ablation attributions, faithfulness (ablation and random ranking)."""
    without = [
        [tuple(c for j, c in enumerate(it.ids) if j != i) for i in range(it.n_words)]
        for it in items
    ]
    scorer.add([it.ids for it in items] + [s for seqs in without for s in seqs])
    probs = np.stack([scorer.cache[it.ids] for it in items])
    predicted = probs.argmax(axis=1)
    targets = [int(t) for t in (predicted if cfg.target == "predicted" else labels)]
    attributions = [
        [probs[b, targets[b]] - scorer.prob(s, targets[b]) for s in without[b]]
        for b in range(len(items))
    ]
    rankings: list[dict[str, list[int]]] = []
    for it, attrs in zip(items, attributions, strict=True):
        ranks = {"ablation": rank_words(attrs)}
        if cfg.random_control:
            ranks[RANDOM] = [
                int(v) for v in np.random.default_rng(random_seed(it.id)).permutation(it.n_words)
            ]
        rankings.append(ranks)
    faith = faithfulness_for(scorer, items, rankings, targets, cfg.removal)  # type: ignore[arg-type]
    return [_row(it, int(labels[b]), int(predicted[b]), targets[b], probs[b], attributions[b], faith[b], cfg.label_names)
            for b, it in enumerate(items)]  # fmt: skip


def _row(it: TokenizedText, label: int, predicted: int, target: int, probs: Any,
         attributions: list[float], faith: Any, names: tuple[str, ...]) -> dict[str, Any]:  # fmt: skip
    """The per-example row, in the gradient path's layout."""
    return {
        "id": it.id,
        "words": list(it.words),
        "n_tokens": it.n_words,
        "truncated": False,
        "label": label,
        "label_name": names[label],
        "predicted": predicted,
        "predicted_name": names[predicted],
        "probability": finite_or_none(probs[predicted]),
        "target": target,
        "target_name": names[target],
        "target_probability": finite_or_none(probs[target]),
        "attributions": {"ablation": [finite_or_none(v) for v in attributions]},
        "deltas": {},
        "faithfulness": json_safe(faith),
        "robustness": None,
        "sanity": None,
    }
