"""The gate's evidence: the right paired test for each kind of metric, its power, its intervals.

Which test a rule gets depends on what the metric is made of (``harness.stats.paired`` has the
tests; each holds its size at every n):

* **0/1 outcomes per example** — accuracy and error rate from ``predictions.jsonl``, and
  declared outcomes such as attack success or a flipped prediction: exact McNemar on the
  discordant pairs, Tango's score interval for the difference, exact McNemar power;
* **continuous values per example** — Brier and log loss (per-example losses), and declared
  values such as |Δp|: sign-flip permutation test, Student-t interval, noncentral-t power;
* **statistics of the whole table** — macro / per-class F1, precision, recall, ECE: paired
  approximate randomization (swap the runs' predictions per example), percentile bootstrap
  interval, power from the spread of the randomization null;
* **distributions of independent samples** — latency quantiles: two-sample permutation test,
  bootstrap interval, power from the permutation null;
* otherwise (no per-example data, or values that do not reproduce the record): whether the two
  records' 95% intervals overlap, with a power estimate from the intervals' widths.

Every result carries the minimum detectable effect (MDE) at the power the policy asks for and
the smallest number of informative examples at which the test can reach its level at all;
the gate turns those into ``inconclusive`` verdicts (``harness.gate.evaluate``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from harness import stats
from harness.errors import RecordError
from harness.gate.inputs import PredictionTable, RunData, declared_values, per_example_spec
from harness.gate.rules import Policy, Rule
from harness.gate.scorers import (
    PredictionMetric,
    per_example_losses,
    prediction_metric,
    single_flip_effect,
)
from harness.records import Metric
from harness.stats import paired

ACCURACY_SUITE = "accuracy"
FloatArray = npt.NDArray[np.float64]
SELF_CHECK_TOLERANCE = 1e-6
BINARY_PREDICTION_METRICS = {"accuracy": True, "error_rate": False}  # metric -> outcome = correct?


@dataclass(frozen=True)
class EvidenceSettings:
    """What the gate asks of one rule's evidence."""

    alpha: float  # the rule's level; p-values are raw here and corrected by the gate
    alpha_power: float  # the level at which power and the minimum n are judged
    power: float
    n_perm: int
    n_boot: int
    seed: int
    equivalence_alpha: float | None = None  # `within` rules: the (1 - 2 alpha) interval


@dataclass(frozen=True)
class TestResult:
    """The evidence for one comparative rule (all differences are candidate − baseline)."""

    method: str
    p_value: float | None  # raw, before correction; None when no test could run
    n: int | None = None  # examples (pairs) or samples behind the test
    diff_low: float | None = None  # 95% interval of the difference
    diff_high: float | None = None
    significant_by_ci: bool | None = None  # fallback decision when there is no p-value
    note: str | None = None
    kind: str = "none"  # binary | continuous | randomization | two-sample | intervals | none
    informative: int | None = None  # examples whose outcome differs between the runs
    min_informative: int | None = None  # fewest informative examples that can reach the level
    estimate: float | None = None  # the difference on the compared examples
    baseline_value: float | None = None  # the metric on the compared examples
    candidate_value: float | None = None
    mde: float | None = None  # smallest |change| detected with the asked power; None: none
    mde_basis: str | None = None
    equivalence_low: float | None = None  # (1 - 2 alpha) interval, for `within` rules
    equivalence_high: float | None = None
    interval_method: str | None = None
    null_sd: float | None = None  # spread of the test's null distribution (for --plan)

    @property
    def too_few(self) -> bool:
        """Below the test's minimum: it could not reach its level whatever the data said."""
        return (
            self.informative is not None
            and self.min_informative is not None
            and self.informative < self.min_informative
        )


def _with_intervals(result: TestResult, ci: stats.Interval, eq: stats.Interval | None) -> TestResult:
    return replace(
        result,
        interval_method=ci.method,
        diff_low=ci.low,
        diff_high=ci.high,
        equivalence_low=None if eq is None else eq.low,
        equivalence_high=None if eq is None else eq.high,
    )


# ------------------------------------------------------------------ one result per kind


def binary_result(a: npt.NDArray[Any], b: npt.NDArray[Any], s: EvidenceSettings) -> TestResult:
    """Paired 0/1 outcomes (the metric is their mean)."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    n = int(a.size)
    up, down = int(np.sum(b & ~a)), int(np.sum(a & ~b))
    mde = paired.mcnemar_mde(n, (up + down) / n, alpha=s.alpha_power, power=s.power)
    result = TestResult(
        "exact McNemar",
        stats.mcnemar_exact(up, down),
        n,
        note=f"{down} example(s) with the outcome only in the baseline, {up} only in the candidate",
        kind="binary",
        informative=up + down,
        min_informative=paired.min_informative(s.alpha_power),
        estimate=(up - down) / n,
        baseline_value=float(a.mean()),
        candidate_value=float(b.mean()),
        mde=mde,
        mde_basis=f"exact McNemar power at the observed discordance {(up + down) / n:.3g}",
    )
    eq = (
        None
        if s.equivalence_alpha is None
        else paired.tango_interval(up, down, n, confidence=1 - 2 * s.equivalence_alpha)
    )
    return _with_intervals(result, paired.tango_interval(up, down, n), eq)


def continuous_result(a: FloatArray, b: FloatArray, s: EvidenceSettings) -> TestResult:
    """Paired real values (the metric is their mean)."""
    d = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    n = int(d.size)
    p, method = paired.sign_flip_test(d, n_perm=s.n_perm, seed=s.seed)
    sd = float(d.std(ddof=1)) if n > 1 else 0.0
    result = TestResult(
        method,
        p,
        n,
        kind="continuous",
        informative=int(np.sum(d != 0)),
        min_informative=paired.min_informative(s.alpha_power),
        estimate=float(d.mean()),
        baseline_value=float(np.mean(a)),
        candidate_value=float(np.mean(b)),
        mde=paired.t_mde(n, sd, alpha=s.alpha_power, power=s.power),
        mde_basis=f"paired t power at the observed spread of the differences (sd {sd:.3g})",
    )
    eq = (
        None
        if s.equivalence_alpha is None
        else paired.t_interval(d, confidence=1 - 2 * s.equivalence_alpha)
    )
    return _with_intervals(result, paired.t_interval(d), eq)


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
    return _with_intervals(result, *_paired_bootstrap(metric, pb, pc, s))


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


def two_sample_result(
    a: FloatArray, b: FloatArray, quantile: float, s: EvidenceSettings
) -> TestResult:
    """Independent samples (latency calls of two runs), compared on one quantile."""

    def stat(x: FloatArray) -> FloatArray:
        return np.asarray(np.quantile(x, quantile, axis=-1), dtype=np.float64)

    p, null, method = paired.two_sample_permutation_test(
        a, b, stat, n_perm=s.n_perm, seed=s.seed
    )
    spread = float(null.std())
    base_value, cand_value = float(stat(a[None, :])[0]), float(stat(b[None, :])[0])
    n = int(min(a.size, b.size))
    note = f"{a.size} baseline and {b.size} candidate samples"
    if n * (1 - quantile) < 1:
        note += f"; with fewer than {math.ceil(1 / (1 - quantile))} samples the q={quantile:g} quantile is the sample maximum"
    result = TestResult(
        f"{method}, q={quantile:g}",
        p,
        n,
        note=note,
        kind="two-sample",
        estimate=cand_value - base_value,
        baseline_value=base_value,
        candidate_value=cand_value,
        mde=paired.normal_mde(spread, alpha=s.alpha_power, power=s.power),
        mde_basis=f"normal approximation to the permutation null (sd {spread:.3g})",
    )
    ci = paired.two_sample_bootstrap_interval(a, b, stat, n_boot=s.n_boot, seed=s.seed)
    eq = (
        None
        if s.equivalence_alpha is None
        else paired.two_sample_bootstrap_interval(
            a, b, stat, n_boot=s.n_boot, seed=s.seed, confidence=1 - 2 * s.equivalence_alpha
        )
    )
    return _with_intervals(result, ci, eq)


def interval_result(mb: Metric, mc: Metric, why: str, s: EvidenceSettings) -> TestResult:
    """No per-example evidence: compare the records' own 95% intervals."""
    ib = stats.Interval(mb.ci_low, mb.ci_high, mb.ci_method or "")
    ic = stats.Interval(mc.ci_low, mc.ci_high, mc.ci_method or "")
    overlap = stats.intervals_overlap(ib, ic)
    if overlap is None:
        return TestResult(
            "none",
            None,
            note=f"{why}, and no confidence intervals: significance and power could not be "
            "assessed",
        )
    from scipy.stats import norm

    z = float(norm.ppf(0.975))
    se = math.hypot(
        (ib.high - ib.low) / (2 * z),  # type: ignore[operator]
        (ic.high - ic.low) / (2 * z),  # type: ignore[operator]
    )
    change = (mc.value or 0.0) - (mb.value or 0.0)
    eq_low = eq_high = None
    if s.equivalence_alpha is not None and se > 0:
        half = float(norm.ppf(1 - s.equivalence_alpha)) * se
        eq_low, eq_high = change - half, change + half
    return TestResult(
        "CI overlap",
        None,
        significant_by_ci=not overlap,
        note=f"{why}: significance judged by whether the 95% intervals overlap "
        "(conservative; not a paired test)",
        kind="intervals",
        estimate=change,
        baseline_value=mb.value,
        candidate_value=mc.value,
        mde=paired.normal_mde(se, alpha=s.alpha_power, power=s.power),
        mde_basis="normal approximation from the two records' 95% intervals (taken as independent)",
        interval_method="normal, from the records' intervals",
        equivalence_low=eq_low,
        equivalence_high=eq_high,
    )


# ------------------------------------------------------------------ per-example values of a run


@dataclass(frozen=True)
class ExampleValues:
    """A metric that is the mean of one value per example id."""

    values: dict[str, float]
    binary: bool  # every value is 0 or 1


@dataclass(frozen=True)
class TableValues:
    """A metric that is a statistic of the whole prediction table (answered rows only)."""

    table: PredictionTable
    metric: PredictionMetric
    k: int


@dataclass(frozen=True)
class SampleValues:
    """A metric that is a quantile of independent samples (latency calls)."""

    samples: FloatArray
    quantile: float


Extracted = ExampleValues | TableValues | SampleValues


class Unusable(Exception):
    """Per-example values that do not reproduce the recorded metric: not evidence."""


def _check_mean(rule: Rule, run: RunData, values: dict[str, float]) -> None:
    metric = _recorded(run, rule)
    if not values:
        raise Unusable(f"the run {run.path} has no per-example values for {rule.metric}")
    if metric is None or metric.value is None:
        return
    mean = float(np.mean(list(values.values())))
    if abs(mean - metric.value) > SELF_CHECK_TOLERANCE * max(1.0, abs(metric.value)):
        raise Unusable(
            f"the per-example values of {rule.metric} in {run.path} do not reproduce the "
            f"recorded value {metric.value:.6g} (they give {mean:.6g})"
        )


def _recorded(run: RunData, rule: Rule) -> Metric | None:
    suite = run.record.suite(rule.metric.suite)
    return None if suite is None else suite.metric(rule.metric.metric)


def _examples(values: dict[str, float]) -> ExampleValues:
    arr = np.asarray(list(values.values()))
    return ExampleValues(values, bool(np.all(np.isin(arr, (0.0, 1.0)))))


def _from_predictions(run: RunData, rule: Rule) -> Extracted | None:
    suite = run.record.suite(rule.metric.suite)
    if rule.metric.suite != ACCURACY_SUITE or suite is None or not run.has_predictions():
        return None
    table = run.predictions().scored()
    name, labels = rule.metric.metric, run.label_names()
    ids = table.ids
    if name in BINARY_PREDICTION_METRICS:
        outcome = (table.predicted == table.labels) == BINARY_PREDICTION_METRICS[name]
        values = dict(zip(ids, outcome.astype(np.float64).tolist(), strict=True))
        _check_mean(rule, run, values)
        return ExampleValues(values, True)
    has_probs = bool(table.probabilities.size)
    losses = per_example_losses(name, table.labels, table.probabilities) if has_probs else None
    if losses is not None:
        values = dict(zip(ids, losses.tolist(), strict=True))
        _check_mean(rule, run, values)
        return ExampleValues(values, False)
    scorer = prediction_metric(name, labels, int(suite.params.get("ece_bins", 15)))
    if scorer is None or (scorer.needs_probabilities and not has_probs) or not ids:
        return None
    extracted = TableValues(table, scorer, len(labels))
    _check_table(rule, run, extracted)
    return extracted


def _check_table(rule: Rule, run: RunData, t: TableValues) -> None:
    metric = _recorded(run, rule)
    if metric is None or metric.value is None:
        return
    probs = t.table.probabilities[None, :, :] if t.metric.needs_probabilities else None
    value = float(t.metric.score(t.table.labels[None, :], t.table.predicted[None, :], probs)[0])
    if not abs(value - metric.value) <= SELF_CHECK_TOLERANCE * max(1.0, abs(metric.value)):
        raise Unusable(
            f"{rule.metric} recomputed from {run.path}'s predictions ({value:.6g}) does not "
            f"reproduce the recorded value {metric.value:.6g}"
        )


def _from_declaration(run: RunData, rule: Rule) -> Extracted | None:
    suite = run.record.suite(rule.metric.suite)
    if suite is None:
        return None
    spec = per_example_spec(suite, rule.metric.metric)
    if spec is None:
        return None
    try:
        values = declared_values(run, suite, spec)
    except RecordError as exc:
        raise Unusable(exc.message) from None
    if not spec.paired:
        metric = _recorded(run, rule)
        arr = np.asarray(list(values.values()), dtype=np.float64)
        if arr.size == 0:
            raise Unusable(f"the run {run.path} has no samples for {rule.metric}")
        value = None if metric is None else metric.value
        if value is not None and not float(arr.min()) - 1e-9 <= value <= float(arr.max()) + 1e-9:
            raise Unusable(
                f"the samples of {rule.metric} in {run.path} do not reproduce the recorded value "
                f"{value:.6g}"
            )
        q = spec.quantile()
        return SampleValues(arr, 0.5 if q is None else q)
    _check_mean(rule, run, values)
    return _examples(values)


def extract(run: RunData, rule: Rule) -> Extracted | None:
    """The per-example evidence one run holds for ``rule``; ``Unusable`` when it is unsound."""
    found = _from_predictions(run, rule)
    return found if found is not None else _from_declaration(run, rule)


# ------------------------------------------------------------------ one pair of runs


def aligned(base: PredictionTable, cand: PredictionTable) -> tuple[PredictionTable, PredictionTable]:
    """Both tables restricted to the ids both runs answered, in the baseline's order."""
    ci = cand.index()
    ok_b, ok_c = base.answered_mask(), cand.answered_mask()
    shared = [i for i, ident in enumerate(base.ids) if ident in ci and ok_b[i] and ok_c[ci[ident]]]
    return base.take(shared), cand.take([ci[base.ids[i]] for i in shared])


def _errors_note(base: RunData, cand: RunData) -> str | None:
    if not (base.has_predictions() and cand.has_predictions()):
        return None
    eb, ec = base.predictions().errors, cand.predictions().errors
    if not eb and not ec:
        return None
    return (
        f"left out: {len(eb)} baseline and {len(ec)} candidate example(s) without a prediction "
        "(see 'error' in predictions.jsonl)"
    )


def _pair_result(xb: Extracted, xc: Extracted, s: EvidenceSettings) -> TestResult:
    if isinstance(xb, SampleValues) and isinstance(xc, SampleValues):
        return two_sample_result(xb.samples, xc.samples, xc.quantile, s)
    if isinstance(xb, TableValues) and isinstance(xc, TableValues):
        pb, pc = aligned(xb.table, xc.table)
        if not pb.ids:
            return TestResult("none", None, 0, note="the runs share no answered example ids")
        return randomization_result(xc.metric, pb, pc, xc.k, s)
    if isinstance(xb, ExampleValues) and isinstance(xc, ExampleValues):
        shared = [k for k in xb.values if k in xc.values]
        if not shared:
            return TestResult("none", None, 0, note="the runs share no per-example ids for this metric")
        a = np.asarray([xb.values[k] for k in shared])
        b = np.asarray([xc.values[k] for k in shared])
        result = binary_result(a, b, s) if xb.binary and xc.binary else continuous_result(a, b, s)
        only = len(xb.values) + len(xc.values) - 2 * len(shared)
        if only:
            extra = f"compared on the {len(shared)} ids both runs have ({only} in one run only)"
            result = replace(result, note="; ".join(x for x in (result.note, extra) if x))
        return result
    raise Unusable("the two runs decompose this metric differently")


def significance_test(
    base: RunData, cand: RunData, rule: Rule, settings: EvidenceSettings
) -> TestResult:
    """The strongest evidence the two runs allow for ``rule`` (see the module docstring)."""
    reason = "no per-example data"
    try:
        xb, xc = extract(base, rule), extract(cand, rule)
        if xb is not None and xc is not None:
            result = _pair_result(xb, xc, settings)
            errors = _errors_note(base, cand)
            if errors and isinstance(xb, (TableValues, ExampleValues)):
                result = replace(result, note="; ".join(x for x in (result.note, errors) if x))
            return result
    except Unusable as exc:
        reason = str(exc)
    mb, mc = _recorded(base, rule), _recorded(cand, rule)
    if mb is None or mc is None:  # _first_pass reports missing metrics before any test
        return TestResult("none", None, note="metric missing")
    return interval_result(mb, mc, reason, settings)


def settings_for(policy: Policy, rule: Rule, family_size: int) -> EvidenceSettings:
    """The levels one rule is judged at: power and minimum n at alpha / m under Holm (the level
    Holm's first step applies), so a rule is not called powerful on a level it may not get."""
    alpha = policy.alpha_for(rule)
    holm = policy.correction == "holm" and rule.significant and family_size > 1
    return EvidenceSettings(
        alpha=alpha,
        alpha_power=alpha / family_size if holm else alpha,
        power=policy.power,
        n_perm=policy.n_perm,
        n_boot=policy.n_boot,
        seed=policy.seed,
        equivalence_alpha=alpha if rule.is_equivalence else None,
    )
