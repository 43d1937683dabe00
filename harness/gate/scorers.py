"""The accuracy suite's prediction metrics, vectorised over many rearrangements at once.

The gate's randomization test, bootstrap and power bound evaluate one metric on thousands of
rearranged prediction tables; these functions take a (draws, n) array of predictions (and,
for ECE, probabilities) and return one value per draw. Definitions follow scikit-learn with
``zero_division=np.nan``: a per-class precision, recall or F1 that is undefined is NaN, and
macro averages leave NaN classes out. Each use is checked against the value the record holds
before it counts as evidence (``harness.gate.evidence``), so a drift from the suite's definition falls
back to interval overlap instead of testing the wrong statistic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
# Per-draw metric of (labels (draws, n), predictions (draws, n), probabilities (draws, n, k)).
BatchMetric = Callable[[IntArray, IntArray, FloatArray | None], FloatArray]
PER_CLASS = {"precision": 0, "recall": 1, "f1": 2}


def confusions(labels: IntArray, predicted: IntArray, k: int) -> IntArray:
    """(draws, k, k) confusion matrices, rows = true class."""
    draws = predicted.shape[0]
    y = np.broadcast_to(labels, predicted.shape)
    flat = (np.arange(draws)[:, None] * k * k + y * k + predicted).ravel()
    return np.bincount(flat, minlength=draws * k * k).reshape(draws, k, k)


def prf(cm: IntArray) -> FloatArray:
    """(draws, 3, k): precision, recall, F1 per class; NaN where scikit-learn's is undefined."""
    tp = np.diagonal(cm, axis1=1, axis2=2).astype(np.float64)
    pred = cm.sum(axis=1).astype(np.float64)
    true = cm.sum(axis=2).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(pred > 0, tp / pred, np.nan)
        recall = np.where(true > 0, tp / true, np.nan)
        denom = pred + true
        f1 = np.where(denom > 0, 2 * tp / denom, np.nan)
    return np.stack([precision, recall, f1], axis=1)


def _nanmean(values: FloatArray) -> FloatArray:
    counts = np.sum(~np.isnan(values), axis=-1)
    sums = np.nansum(values, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def ece_batch(labels: IntArray, probs: FloatArray, n_bins: int) -> FloatArray:
    """ECE per draw; bins as harness.metrics.classification.calibration_bins."""
    draws, n, _ = probs.shape
    confidence = probs.max(axis=2)
    correct = (probs.argmax(axis=2) == np.broadcast_to(labels, (draws, n))).astype(np.float64)
    index = np.clip(np.ceil(confidence * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    flat = (np.arange(draws)[:, None] * n_bins + index).ravel()
    size = draws * n_bins
    gap = np.bincount(flat, weights=(correct - confidence).ravel(), minlength=size)
    return np.asarray(np.abs(gap.reshape(draws, n_bins)).sum(axis=1) / n, dtype=np.float64)


@dataclass(frozen=True)
class PredictionMetric:
    """One accuracy-suite metric as a batch function, and whether it reads probabilities."""

    name: str
    score: BatchMetric
    needs_probabilities: bool = False
    per_example_bound: Callable[[int], float] | None = None  # |change| one example can make


def prediction_metric(metric: str, labels: list[str], ece_bins: int) -> PredictionMetric | None:
    """The batch form of an accuracy-suite metric that does not decompose per example."""
    k = len(labels)
    head, _, label = metric.partition(".")
    if head in PER_CLASS and label in labels:
        which, c = PER_CLASS[head], labels.index(label)
        return PredictionMetric(
            metric, lambda y, p, _: prf(confusions(y, p, k))[:, which, c]
        )
    base = metric.removesuffix("_macro")
    if metric.endswith("_macro") and base in PER_CLASS:
        which = PER_CLASS[base]
        return PredictionMetric(metric, lambda y, p, _: _nanmean(prf(confusions(y, p, k))[:, which]))
    if metric == "ece":
        return PredictionMetric(
            metric,
            lambda y, p, probs: ece_batch(y, probs if probs is not None else np.empty(0), ece_bins),
            needs_probabilities=True,
            per_example_bound=lambda n: 2.0 / n,
        )
    return None


def single_flip_effect(
    metric: PredictionMetric, labels: IntArray, predicted: IntArray, k: int
) -> float:
    """The largest |change| of a confusion-based metric when one prediction changes class.

    One representative example per (label, prediction) cell is moved to every other class;
    the metric depends on the table only, so that covers every possible single change.
    """
    cells = {(int(y), int(p)): i for i, (y, p) in enumerate(zip(labels, predicted, strict=True))}
    rows = []
    for index in cells.values():
        for q in range(k):
            if q != predicted[index]:
                row = predicted.copy()
                row[index] = q
                rows.append(row)
    if not rows:
        return 0.0
    batch = np.vstack([predicted[None, :], np.asarray(rows)])
    values = metric.score(labels[None, :], batch, None)
    changes = np.abs(values[1:] - values[0])
    finite = changes[np.isfinite(changes)]
    return float(finite.max()) if finite.size else 0.0


def per_example_losses(metric: str, labels: IntArray, probs: FloatArray) -> FloatArray | None:
    """Per-example Brier or log loss: their mean is the suite's brier / nll."""
    n, k = probs.shape
    if metric == "brier":
        onehot = np.eye(k)[labels]
        loss = np.sum((probs - onehot) ** 2, axis=1)
        return np.asarray(loss / 2 if k == 2 else loss, dtype=np.float64)
    if metric in ("nll", "log_loss"):
        eps = np.finfo(np.float64).eps
        clipped = np.clip(probs, eps, 1 - eps)
        clipped = clipped / clipped.sum(axis=1, keepdims=True)
        return np.asarray(-np.log(clipped[np.arange(n), labels]), dtype=np.float64)
    return None
