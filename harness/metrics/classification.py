"""Classification and calibration metrics on (labels, probabilities), numpy only.

Implemented here rather than calling scikit-learn on every resample (10-50x faster); tests
assert equality with scikit-learn on the same predictions.

Undefined values follow scikit-learn's ``zero_division=np.nan`` (scikit-learn >= 1.4): a class
never predicted has an undefined (NaN) precision, a class with no examples an undefined recall,
and a class that is neither has an undefined F1 (F1 is ``2 tp / (support + predicted)``, so it
is 0, not NaN, for a class with only one of the two). Macro averages leave NaN classes out and
are NaN only when no class is defined (nothing scored). The record turns NaN into null.

The macro-F1 interval is a Bayesian posterior interval (``f1_macro_interval``): the confusion
matrix's cell probabilities get a Dirichlet posterior and each draw's population macro-F1 is
computed, the multiclass form of Goutte & Gaussier (2005), "A probabilistic interpretation of
precision, recall and F-score, with implication for evaluation", ECIR, LNCS 3408, 345-359.
Why not the percentile bootstrap: when every example is right (probability 0.21 at accuracy
0.95 and n = 30, 0.37 at 0.99 and n = 100) every resample is perfect and the interval is the
zero-width [1, 1], so it covers the population F1 at 0.61-0.80 where 0.95 is promised.
The prior is chosen per class, not per cell: F1_c = 2 J_c / (1 + J_c) with J_c the class's
Jaccard index tp / (tp + fp + fn), and under the prior ``JACCARD_JEFFREYS`` (1/2 on the class's
diagonal cell, 1/2 spread over the 2(k-1) off-diagonal cells of its row and column) each J_c
has the marginal posterior Beta(tp + 1/2, fp + fn + 1/2): the Jeffreys posterior of a binomial
proportion with tp + fp + fn trials, whose intervals have near-nominal frequentist coverage
(Brown, Cai & DasGupta 2001, Statistical Science 16(2)). A flat per-cell prior (1 or 1/2 per
cell) pulls every class toward F1 = 1/k and under-covers badly with three classes near
accuracy 1 (0.51-0.65). The seeded simulation in ``tests.interval_simulation`` is the check:
coverage 0.941-0.973 on binary and 3-class tasks at (accuracy, n) = (0.5, 30), (0.85, 200),
(0.95, 30), (0.99, 100), except 0.981 for a balanced binary task at (0.99, 100), where no
interval can do better (coverage jumps from P(<= 2 errors) = 0.92 to P(<= 3 errors) = 0.98).
Known limit: with five classes and about ten examples per class it under-covers (0.90-0.93):
the per-class shrinkage adds up across classes while the noise averages out.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from harness.stats import Interval

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

ECE_BINS = 15
PROB_FLOOR = 1e-15  # scikit-learn's log_loss clips to the dtype's eps; we clip the same way
F1_DRAWS = 4000
JACCARD_JEFFREYS = 0.5  # prior mass per class on its Jaccard's "hit" and "miss" sides
F1_INTERVAL_METHOD = (
    "Bayesian posterior (Dirichlet over confusion cells, Jeffreys prior on each class's Jaccard; "
    "Goutte & Gaussier 2005)"
)


def confusion(labels: IntArray, predicted: IntArray, k: int) -> IntArray:
    """Confusion matrix, rows = true class, columns = predicted class."""
    return np.bincount(labels * k + predicted, minlength=k * k).reshape(k, k).astype(np.int64)


def precision_recall_f1(cm: IntArray | FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per-class precision, recall, F1 of a (..., k, k) matrix; NaN where undefined.

    scikit-learn's ``precision_recall_fscore_support(..., zero_division=np.nan)``: precision is
    NaN for a class never predicted, recall for a class without examples, F1 (``2 tp / (support
    + predicted)``) only for a class that is neither. Also accepts cell probabilities, so the
    posterior draws of ``f1_macro_interval`` use the same definition.
    """
    tp = np.diagonal(cm, axis1=-2, axis2=-1).astype(np.float64)
    pred = cm.sum(axis=-2).astype(np.float64)
    true = cm.sum(axis=-1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(pred > 0, tp / pred, np.nan)
        recall = np.where(true > 0, tp / true, np.nan)
        f1 = np.where(pred + true > 0, 2 * tp / (pred + true), np.nan)
    return precision, recall, f1


def macro_average(values: FloatArray) -> FloatArray:
    """Mean over the last axis leaving NaN classes out; NaN where no class is defined.

    scikit-learn's macro average under ``zero_division=np.nan`` (its ``_nanaverage``), without
    numpy's "mean of empty slice" warning. A plain ``.mean()`` would make the whole average NaN
    as soon as one class is undefined.
    """
    defined = ~np.isnan(values)
    count = defined.sum(axis=-1)
    total = np.where(defined, values, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.where(count > 0, total / np.maximum(count, 1), np.nan), dtype=np.float64)


def accuracy(labels: IntArray, predicted: IntArray) -> float:
    return float(np.mean(labels == predicted)) if labels.size else float("nan")


def f1_macro(labels: IntArray, predicted: IntArray, k: int) -> float:
    """Macro-F1 over the classes where F1 is defined; NaN when nothing is scored."""
    return float(macro_average(precision_recall_f1(confusion(labels, predicted, k))[2]))


def defined_classes(cm: IntArray) -> BoolArray:
    """(..., k): whether the class has an example or a prediction (its F1 is defined)."""
    return np.asarray((cm.sum(axis=-1) + cm.sum(axis=-2)) > 0)


def jaccard_jeffreys_prior(cm: IntArray) -> FloatArray:
    """The Dirichlet prior of ``f1_macro_interval`` for (..., k, k) confusion matrices.

    Over the classes defined in each matrix (k' of them): 1/2 on each diagonal cell and
    1/(4(k'-1)) on each off-diagonal cell, so every class's Jaccard index has the prior
    Beta(1/2, 1/2). Rows and columns of undefined classes get 0: the estimand, as the point
    estimate's, is the macro-F1 over the classes seen in the evaluation (as label or prediction).
    """
    defined = defined_classes(cm)
    seen = defined.sum(axis=-1)
    off = JACCARD_JEFFREYS / (2 * np.maximum(seen - 1, 1))
    both = defined[..., :, None] & defined[..., None, :]
    prior = np.where(both, np.asarray(off, dtype=np.float64)[..., None, None], 0.0)
    eye = np.eye(cm.shape[-1], dtype=bool)
    return np.asarray(np.where(eye, np.where(defined, JACCARD_JEFFREYS, 0.0)[..., None, :], prior))


def posterior_cells(cm: IntArray, *, draws: int, rng: np.random.Generator) -> FloatArray:
    """(..., draws, k, k) unnormalised posterior draws of the cell probabilities.

    Cell probabilities ~ Dirichlet(counts + ``jaccard_jeffreys_prior``), drawn as independent
    gamma variates; left unnormalised because every F1 is a ratio of cell sums, where the
    Dirichlet's normalisation cancels. Cells of undefined classes (shape 0) draw 0.
    """
    shape = cm.astype(np.float64) + jaccard_jeffreys_prior(cm)
    full = (*shape.shape[:-2], draws, *shape.shape[-2:])
    return np.asarray(rng.standard_gamma(np.broadcast_to(shape[..., None, :, :], full)))


def f1_macro_posterior(cm: IntArray, *, draws: int, rng: np.random.Generator) -> FloatArray:
    """(..., draws) posterior draws of the macro-F1 of (..., k, k) confusion matrices."""
    return macro_average(precision_recall_f1(posterior_cells(cm, draws=draws, rng=rng))[2])


def f1_macro_intervals(
    cm: IntArray, *, draws: int, rng: np.random.Generator, confidence: float = 0.95
) -> FloatArray:
    """(..., 2) equal-tailed posterior intervals of macro-F1, batched (the simulation's form).

    Each interval is widened to hold its own point estimate (at a perfect sample the point is 1
    while every draw is below it). NaN where no interval exists: nothing scored, or fewer than
    two classes seen (macro-F1 over one class is 1 by definition, not an estimate).
    """
    alpha = (1 - confidence) / 2
    values = f1_macro_posterior(cm, draws=draws, rng=rng)
    bounds = np.moveaxis(np.quantile(values, [alpha, 1 - alpha], axis=-1), 0, -1)
    point = macro_average(precision_recall_f1(cm)[2])[..., None]
    bounds = np.stack(
        [np.fmin(bounds[..., 0], point[..., 0]), np.fmax(bounds[..., 1], point[..., 0])], axis=-1
    )
    usable = (defined_classes(cm).sum(axis=-1) >= 2)[..., None]
    return np.asarray(np.where(usable, bounds, np.nan))


def f1_macro_interval(
    cm: IntArray, *, draws: int = F1_DRAWS, seed: int = 0, confidence: float = 0.95
) -> Interval:
    """Seeded 95% posterior interval of macro-F1 from one confusion matrix (see module notes)."""
    method = f"{F1_INTERVAL_METHOD}, {draws} draws, seed={seed}"
    if draws <= 0:
        return Interval(None, None, method)
    low, high = f1_macro_intervals(cm, draws=draws, rng=np.random.default_rng(seed), confidence=confidence)
    if not (np.isfinite(low) and np.isfinite(high)):
        return Interval(None, None, method)
    return Interval(float(low), float(high), method)


def brier(labels: IntArray, probs: FloatArray) -> float:
    """Multiclass Brier score; halved for two classes, as scikit-learn's ``brier_score_loss``."""
    if labels.size == 0:
        return float("nan")
    k = probs.shape[1]
    onehot = np.eye(k)[labels]
    score = float(np.mean(np.sum((probs - onehot) ** 2, axis=1)))
    return score / 2 if k == 2 else score


def nll(labels: IntArray, probs: FloatArray) -> float:
    """Mean negative log-likelihood (scikit-learn's ``log_loss``, rows renormalised)."""
    if labels.size == 0:
        return float("nan")
    eps = np.finfo(probs.dtype).eps
    clipped = np.clip(probs, eps, 1 - eps)
    clipped = clipped / clipped.sum(axis=1, keepdims=True)
    return float(-np.mean(np.log(clipped[np.arange(labels.size), labels])))


def calibration_bins(labels: IntArray, probs: FloatArray, n_bins: int = ECE_BINS) -> list[dict[str, float | int | None]]:
    """Equal-width confidence bins over the top-class probability."""
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    # Bin i holds (i/n, (i+1)/n]; confidence 0 goes to bin 0.
    index = np.clip(np.ceil(confidence * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    bins: list[dict[str, float | int | None]] = []
    for b in range(n_bins):
        mask = index == b
        count = int(mask.sum())
        bins.append(
            {
                "bin_low": b / n_bins,
                "bin_high": (b + 1) / n_bins,
                "count": count,
                "mean_confidence": float(confidence[mask].mean()) if count else None,
                "accuracy": float(correct[mask].mean()) if count else None,
            }
        )
    return bins


def ece(labels: IntArray, probs: FloatArray, n_bins: int = ECE_BINS) -> float:
    """Expected calibration error: sum over bins of |accuracy − confidence| weighted by bin share."""
    n = labels.size
    if n == 0:
        return float("nan")
    total = 0.0
    for b in calibration_bins(labels, probs, n_bins):
        if b["count"]:
            total += int(b["count"]) / n * abs(float(b["accuracy"]) - float(b["mean_confidence"]))  # type: ignore[arg-type]
    return total
