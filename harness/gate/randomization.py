"""Evidence for statistics of the whole prediction table (macro-F1, per-class precision or
recall, ECE): the paired approximate randomization test (swap the two runs' outputs per
example; exact when few examples differ), its power, and a paired percentile bootstrap interval.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from harness import stats
from harness.gate.inputs import PredictionTable
from harness.gate.result import EvidenceSettings, TestResult, with_intervals
from harness.gate.scorers import PredictionMetric, single_flip_effect
from harness.stats import paired

FloatArray = npt.NDArray[np.float64]


def randomization_result(
    metric: PredictionMetric, pb: PredictionTable, pc: PredictionTable, k: int, s: EvidenceSettings
) -> TestResult:
    """A statistic of the whole prediction table, compared by swapping predictions per example."""
    y = pb.labels
    probs_b = pb.probabilities if metric.needs_probabilities else None
    probs_c = pc.probabilities if metric.needs_probabilities else None
    differs = pb.predicted != pc.predicted
    if probs_b is not None and probs_c is not None:
        differs = differs | np.any(probs_b != probs_c, axis=1)
    informative = np.flatnonzero(differs)

    def diff(mask: npt.NDArray[np.bool_]) -> FloatArray:
        first = np.where(mask, pc.predicted, pb.predicted)
        second = np.where(mask, pb.predicted, pc.predicted)
        pf = ps = None
        if probs_b is not None and probs_c is not None:
            pf = np.where(mask[:, :, None], probs_c, probs_b)
            ps = np.where(mask[:, :, None], probs_b, probs_c)
        return metric.score(y, second, ps) - metric.score(y, first, pf)

    n = len(pb.ids)
    p, null, method = paired.swap_test(diff, informative, n, n_perm=s.n_perm, seed=s.seed)
    base_value = float(metric.score(y[None, :], pb.predicted[None, :], _batch(probs_b))[0])
    cand_value = float(metric.score(y[None, :], pc.predicted[None, :], _batch(probs_c))[0])
    mde, basis = _randomization_mde(metric, null, pb, k, s)
    result = TestResult(
        method,
        p,
        n,
        note=f"the runs' outputs differ on {informative.size} of {n} shared examples",
        kind="randomization",
        informative=int(informative.size),
        min_informative=paired.min_informative(s.alpha_power),
        estimate=cand_value - base_value,
        baseline_value=base_value,
        candidate_value=cand_value,
        mde=mde,
        mde_basis=basis,
        null_sd=float(null[np.isfinite(null)].std()) if np.isfinite(null).sum() > 1 else 0.0,
    )
    return with_intervals(result, *_paired_bootstrap(metric, pb, pc, s))


def _batch(probs: FloatArray | None) -> FloatArray | None:
    return None if probs is None else probs[None, :, :]


def _randomization_mde(
    metric: PredictionMetric, null: FloatArray, table: PredictionTable, k: int, s: EvidenceSettings
) -> tuple[float | None, str]:
    finite = null[np.isfinite(null)]
    spread = float(finite.std()) if finite.size > 1 else 0.0
    if spread > 0:
        mde = paired.normal_mde(spread, alpha=s.alpha_power, power=s.power)
        return mde, f"normal approximation to the randomization null (sd {spread:.3g})"
    # Identical outputs: the null has no spread. A change must alter at least `changes`
    # predictions to be detected (exact McNemar with no discordance observed); bound what so
    # many changed predictions can do to the metric.
    n = len(table.ids)
    share = paired.mcnemar_mde(n, 0.0, alpha=s.alpha_power, power=s.power)
    if share is None:
        return None, "no change is detectable at this n"
    changes = math.ceil(share * n)
    if metric.per_example_bound is not None:
        each = metric.per_example_bound(n)
    else:
        each = single_flip_effect(metric, table.labels, table.predicted, k)
    return changes * each, (
        f"the runs agree on every example: a change must alter ≥ {changes} prediction(s) to be "
        f"detected, and each moves the metric by at most {each:.3g} (a bound)"
    )


def _paired_bootstrap(
    metric: PredictionMetric, pb: PredictionTable, pc: PredictionTable, s: EvidenceSettings
) -> tuple[stats.Interval, stats.Interval | None]:
    n = len(pb.ids)
    rng = np.random.default_rng(s.seed)
    probs = metric.needs_probabilities
    chunks = []
    for start in range(0, s.n_boot, paired.PERMUTATION_CHUNK):
        idx = rng.integers(0, n, size=(min(paired.PERMUTATION_CHUNK, s.n_boot - start), n))
        chunks.append(
            metric.score(pc.labels[idx], pc.predicted[idx], pc.probabilities[idx] if probs else None)
            - metric.score(pb.labels[idx], pb.predicted[idx], pb.probabilities[idx] if probs else None)
        )
    draws = np.concatenate(chunks)
    draws = draws[np.isfinite(draws)]
    method = f"paired percentile bootstrap (n_boot={s.n_boot})"
    if draws.size < s.n_boot / 2:
        return stats.Interval(None, None, method), None

    def interval(confidence: float) -> stats.Interval:
        tail = (1 - confidence) / 2
        low, high = np.quantile(draws, [tail, 1 - tail])
        return stats.Interval(float(low), float(high), method)

    eq = None if s.equivalence_alpha is None else interval(1 - 2 * s.equivalence_alpha)
    return interval(0.95), eq


