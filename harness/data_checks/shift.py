"""Shift between the data a model was trained on and the evaluation split.

The test: the unbiased squared maximum mean discrepancy (MMD², Gretton et al. 2012) between
sentence embeddings of a reference sample and of the evaluation sample, with a Gaussian kernel
whose bandwidth is the median pairwise distance of the pooled sample, and a permutation p-value
``(1 + #{permuted MMD² >= observed}) / (1 + n_permutations)``. Everything the statistic depends
on (pooled bandwidth, embeddings that read no labels) is invariant to relabelling the pooled
sample, so under "same distribution" the p-value is uniform up to its resolution (simulated in
tests/test_data_shift.py). Per-feature shifts say where a shift lies: word-length distribution
(two-sample Kolmogorov–Smirnov), label distribution (chi-square), vocabulary coverage and the
out-of-vocabulary share of evaluation tokens beside the same share for a held-out part of the
reference (what "no shift" looks like for this vocabulary).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.data_checks.normalise import words
from harness.records import Metric

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class MMDResult:
    mmd2: float | None
    p_value: float | None
    bandwidth: float | None
    n_x: int
    n_y: int
    n_permutations: int


def _mmd2(k: FloatArray, a: FloatArray, total: float, colsum: FloatArray) -> FloatArray:
    """Unbiased MMD² for each 0/1 assignment column of ``a`` (1 = first sample), from the kernel
    matrix's sums: sum over X pairs is aKa minus its diagonal (1 per point for a Gaussian kernel)."""
    nx = a[:, 0].sum()
    ny = a.shape[0] - nx
    ka = k @ a
    aka = np.einsum("ij,ij->j", a, ka)
    cross = colsum @ a - aka
    bkb = total - 2 * (colsum @ a) + aka
    return np.asarray((aka - nx) / (nx * (nx - 1)) + (bkb - ny) / (ny * (ny - 1)) - 2 * cross / (nx * ny), dtype=np.float64)


def mmd_test(x: FloatArray, y: FloatArray, *, n_permutations: int = 500, seed: int = 0) -> MMDResult:
    """MMD² of samples ``x`` and ``y`` (rows are points) with its permutation p-value."""
    nx, ny = len(x), len(y)
    if nx < 2 or ny < 2:
        return MMDResult(None, None, None, nx, ny, n_permutations)
    z = np.vstack([x, y]).astype(np.float64)
    sq = np.einsum("ij,ij->i", z, z)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * z @ z.T, 0.0)
    upper = d2[np.triu_indices(len(z), 1)]
    median = float(np.median(np.sqrt(upper)))
    bandwidth = median if median > 0 else 1.0
    k = np.exp(-d2 / (2 * bandwidth**2))
    np.fill_diagonal(k, 1.0)
    total, colsum = float(k.sum()), k.sum(axis=0)
    rng = np.random.default_rng(seed)
    observed = np.zeros((nx + ny, 1))
    observed[:nx] = 1.0
    stat = float(_mmd2(k, observed, total, colsum)[0])
    exceed = 0
    for start in range(0, n_permutations, 100):  # permutations in blocks of 100 columns
        m = min(100, n_permutations - start)
        a = np.zeros((nx + ny, m))
        for j in range(m):
            a[rng.permutation(nx + ny)[:nx], j] = 1.0
        exceed += int(np.sum(_mmd2(k, a, total, colsum) >= stat - 1e-12))
    return MMDResult(stat, (1 + exceed) / (1 + n_permutations), bandwidth, nx, ny, n_permutations)


@dataclass(frozen=True)
class FeatureShift:
    length_ks: float | None
    length_p: float | None
    label_p: float | None
    vocab_coverage: float | None  # share of evaluation word types seen in the reference
    oov_share: float | None  # share of evaluation word tokens unseen in the reference
    oov_share_baseline: float | None  # the same for a held-out part of the reference
    mean_words: tuple[float | None, float | None]  # reference, evaluation


def _oov(reference: Sequence[list[str]], target: Sequence[list[str]]) -> tuple[float | None, float | None]:
    vocab = {w for ws in reference for w in ws}
    tokens = [w for ws in target for w in ws]
    types = set(tokens)
    if not tokens:
        return None, None
    return len(types & vocab) / len(types), sum(w not in vocab for w in tokens) / len(tokens)


def feature_shift(
    ref_texts: Sequence[str], ref_labels: Sequence[int], eval_texts: Sequence[str], eval_labels: Sequence[int], k: int, seed: int = 0
) -> FeatureShift:
    """Per-feature shifts (module docstring) of the evaluation split against the reference."""
    from scipy.stats import chi2_contingency, ks_2samp

    ref_words, eval_words = [words(t) for t in ref_texts], [words(t) for t in eval_texts]
    lr, le = [len(w) for w in ref_words], [len(w) for w in eval_words]
    ks = ks_2samp(lr, le) if lr and le else None
    table = np.array([[Counter(ref_labels).get(c, 0) for c in range(k)], [Counter(eval_labels).get(c, 0) for c in range(k)]])
    table = table[:, table.sum(axis=0) > 0]
    label_p = float(chi2_contingency(table)[1]) if table.shape[1] > 1 and len(ref_labels) and len(eval_labels) else None
    coverage, oov = _oov(ref_words, eval_words)
    rng = np.random.default_rng(seed)
    held = rng.permutation(len(ref_words))
    cut = min(len(eval_words), len(ref_words) // 2)
    baseline = _oov([ref_words[i] for i in held[cut:]], [ref_words[i] for i in held[:cut]])[1] if cut else None
    return FeatureShift(
        length_ks=None if ks is None else float(ks.statistic), length_p=None if ks is None else float(ks.pvalue),
        label_p=label_p, vocab_coverage=coverage, oov_share=oov, oov_share_baseline=baseline,
        mean_words=(float(np.mean(lr)) if lr else None, float(np.mean(le)) if le else None),
    )  # fmt: skip


def shift_metrics(mmd: MMDResult, features: FeatureShift, reference: str) -> list[Metric]:
    def m(name: str, value: float | None, desc: str, n: int | None = None) -> Metric:
        return Metric(name=f"shift.{name}", value=value, higher_is_better=None, n=n, description=desc)

    n = mmd.n_x + mmd.n_y
    return [
        m("mmd2", mmd.mmd2, f"Unbiased MMD² between embeddings of {reference} and of the evaluation split.", n),
        m("p_value", mmd.p_value, f"Permutation p-value of the MMD² ({mmd.n_permutations} permutations); small = shifted.", n),
        m("length_ks", features.length_ks, "Kolmogorov–Smirnov statistic of words per text."),
        m("length_p", features.length_p, "Its p-value."),
        m("label_p", features.label_p, "Chi-square p-value of the label distribution (reference vs evaluation)."),
        m("vocab_coverage", features.vocab_coverage, f"Share of evaluation word types that occur in {reference}."),
        m("oov_share", features.oov_share, f"Share of evaluation word tokens that never occur in {reference}."),
        m("oov_share_baseline", features.oov_share_baseline, f"The same share for a held-out part of {reference} (no shift)."),
    ]


def shift_details(mmd: MMDResult, features: FeatureShift, reference: str, how: str) -> dict[str, Any]:
    return {
        "reference": reference, "embedding": how, "bandwidth": mmd.bandwidth, "n_reference": mmd.n_x,
        "n_evaluation": mmd.n_y, "mean_words_reference": features.mean_words[0], "mean_words_evaluation": features.mean_words[1],
    }  # fmt: skip
