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
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt

from harness import stats
from harness.gate.extract import (
    ExampleValues,
    Extracted,
    SampleValues,
    TableValues,
    Unusable,
    aligned,
    extract,
    recorded,
)
from harness.gate.inputs import RunData
from harness.gate.randomization import randomization_result
from harness.gate.result import EvidenceSettings, TestResult, with_intervals
from harness.gate.rules import Rule
from harness.records import Metric
from harness.stats import paired

FloatArray = npt.NDArray[np.float64]


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
    return with_intervals(result, paired.tango_interval(up, down, n), eq)


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
    return with_intervals(result, paired.t_interval(d), eq)


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
    return with_intervals(result, ci, eq)


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


# ------------------------------------------------------------------ one pair of runs


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
    mb, mc = recorded(base, rule), recorded(cand, rule)
    if mb is None or mc is None:  # _first_pass reports missing metrics before any test
        return TestResult("none", None, note="metric missing")
    return interval_result(mb, mc, reason, settings)
