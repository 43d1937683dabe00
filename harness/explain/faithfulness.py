"""Faithfulness by removing words: ERASER comprehensiveness/sufficiency and their AOPC
(DeYoung et al. 2020), and deletion/insertion curves (Petsiuk et al. 2018).

Words are ranked by attribution toward the target class, highest first (ties: earlier word
first). Removing a word deletes its tokens from the sequence, as ERASER does (special tokens
stay), rather than replacing them by a baseline token, so the scores do not share the
baseline's own bias with the attribution methods.

- comprehensiveness@k = p(x) - p(x without the top k% words): high when the top words matter;
- sufficiency@k = p(x) - p(only the top k% words): low when the top words suffice;
- k% of W words is ceil(k/100 * W) words, at least 1; AOPC is the mean over the k bins
  (ERASER's formula divides by |bins|+1, counting an empty k=0 bin: multiply ours by
  |bins|/(|bins|+1) to compare);
- deletion curve: p after deleting the top round(f*W) words, f = 0, 1/(P-1), ..., 1; insertion
  curve: p keeping only those words. Areas by the trapezoid rule over f in [0, 1]: low deletion
  and high insertion areas mean a faithful ranking.

All probabilities are softmax probabilities of the target class, computed through the
adapter's batched, length-bucketed forward (``ProbabilityScorer``), deduplicated across
methods and examples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.explain.words import TokenizedText


@dataclass(frozen=True)
class RemovalConfig:
    ks: tuple[float, ...] = (1.0, 5.0, 10.0, 20.0, 50.0)
    curve_points: int = 11


def k_key(k: float) -> str:
    """JSON key of a k bin: 1.0 -> '1', 2.5 -> '2.5'."""
    return f"{k:g}"


def n_top(k: float, n_words: int) -> int:
    if n_words == 0:
        return 0
    return min(n_words, max(1, math.ceil(k / 100.0 * n_words)))


def rank_words(scores: Sequence[float]) -> list[int]:
    """Word indices from most to least supportive of the target (stable on ties)."""
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))


def curve_counts(n_words: int, points: int) -> list[int]:
    return [round(j / (points - 1) * n_words) for j in range(points)]


def removal_sequences(
    item: TokenizedText, order: Sequence[int], cfg: RemovalConfig
) -> dict[str, tuple[int, ...]]:
    """All perturbed token sequences one ranking needs, keyed 'comp:k', 'suff:k', 'del:j', 'ins:j'."""
    out: dict[str, tuple[int, ...]] = {}
    for k in cfg.ks:
        top = set(order[: n_top(k, item.n_words)])
        out[f"comp:{k_key(k)}"] = tuple(item.ids_without(top))
        out[f"suff:{k_key(k)}"] = tuple(item.ids_keeping(top))
    for j, n in enumerate(curve_counts(item.n_words, cfg.curve_points)):
        top = set(order[:n])
        out[f"del:{j}"] = tuple(item.ids_without(top))
        out[f"ins:{j}"] = tuple(item.ids_keeping(top))
    return out


def trapezoid_area(values: Sequence[float]) -> float:
    """Area under equally spaced points on [0, 1]."""
    v = np.asarray(values, dtype=np.float64)
    if v.size < 2:
        return float(v.mean()) if v.size else float("nan")
    return float(((v[1:] + v[:-1]) / 2).sum() / (v.size - 1))


def scores_from(
    p_full: float, probs: dict[str, float], cfg: RemovalConfig
) -> dict[str, Any]:
    """The faithfulness entry of a per-example row from the perturbed probabilities."""
    comp = {k_key(k): p_full - probs[f"comp:{k_key(k)}"] for k in cfg.ks}
    suff = {k_key(k): p_full - probs[f"suff:{k_key(k)}"] for k in cfg.ks}
    deletion = [probs[f"del:{j}"] for j in range(cfg.curve_points)]
    insertion = [probs[f"ins:{j}"] for j in range(cfg.curve_points)]
    return {
        "comprehensiveness": comp,
        "sufficiency": suff,
        "aopc_comprehensiveness": float(np.mean(list(comp.values()))),
        "aopc_sufficiency": float(np.mean(list(suff.values()))),
        "deletion_curve": deletion,
        "insertion_curve": insertion,
        "deletion_auc": trapezoid_area(deletion),
        "insertion_auc": trapezoid_area(insertion),
    }


class ProbabilityScorer:
    """Softmax probabilities of token sequences through the adapter, cached by sequence.

    Sequences are sorted by length and batched ``batch_size`` at a time, each batch padded to
    its own longest sequence (``adapter.collate``), under ``torch.inference_mode``.
    """

    def __init__(self, adapter: Any, batch_size: int) -> None:
        self.adapter = adapter
        self.batch_size = max(1, batch_size)
        self.cache: dict[tuple[int, ...], np.ndarray[Any, np.dtype[np.float64]]] = {}

    def add(self, sequences: Sequence[tuple[int, ...]]) -> None:
        import torch

        todo = sorted({s for s in sequences if s not in self.cache}, key=lambda s: (len(s), s))
        with torch.inference_mode():
            for start in range(0, len(todo), self.batch_size):
                chunk = todo[start : start + self.batch_size]
                enc = self.adapter.collate([list(s) for s in chunk])
                probs = torch.softmax(self.adapter.logits(enc), dim=-1).cpu().double().numpy()
                for seq, row in zip(chunk, probs, strict=True):
                    self.cache[seq] = row

    def prob(self, sequence: tuple[int, ...], target: int) -> float:
        return float(self.cache[sequence][target])


def faithfulness_for(
    scorer: ProbabilityScorer,
    items: Sequence[TokenizedText],
    rankings: Sequence[dict[str, list[int]]],
    targets: Sequence[int],
    cfg: RemovalConfig,
) -> list[dict[str, dict[str, Any] | None]]:
    """Per example, per ranking name: the faithfulness scores (None for an example without words).

    All perturbed sequences of the batch go through the scorer in one length-sorted sweep.
    """
    plans: list[dict[str, dict[str, tuple[int, ...]]]] = []
    wanted: list[tuple[int, ...]] = []
    for item, ranks in zip(items, rankings, strict=True):
        plan = {name: removal_sequences(item, order, cfg) for name, order in ranks.items()}
        plans.append(plan)
        wanted.append(item.ids)
        for seqs in plan.values():
            wanted.extend(seqs.values())
    scorer.add(wanted)
    out: list[dict[str, dict[str, Any] | None]] = []
    for item, plan, target in zip(items, plans, targets, strict=True):
        p_full = scorer.prob(item.ids, target)
        row: dict[str, dict[str, Any] | None] = {}
        for name, seqs in plan.items():
            if item.n_words == 0:
                row[name] = None
                continue
            probs = {key: scorer.prob(seq, target) for key, seq in seqs.items()}
            row[name] = scores_from(p_full, probs, cfg)
        out.append(row)
    return out
