"""The gate's evidence: significance tests on per-example outcomes of two runs.

* accuracy / error rate: exact McNemar on the discordant pairs of predictions.jsonl;
* F1 / precision / recall (macro or per class), ECE, Brier, NLL: paired bootstrap over
  predictions.jsonl, with the accuracy suite's own metric definitions;
* metrics a suite decomposes per example (declared, or built in for the current suites): paired
  bootstrap of the mean over shared ids; quantiles (latency): two-sample bootstrap;
* otherwise, or when the per-example values do not reproduce the recorded metric: whether the
  two records' 95% intervals overlap, with a note saying why no per-example test was used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness import stats
from harness.errors import RecordError
from harness.gate_data import PredictionTable, RunData, declared_values, per_example_spec
from harness.gate_rules import Policy, Rule
from harness.records import Metric, SuiteRecord

ACCURACY_SUITE = "accuracy"


@dataclass(frozen=True)
class TestResult:
    """The significance evidence for one regression rule."""

    method: str
    p_value: float | None  # raw, before correction; None for the CI-overlap fallback
    n: int | None = None
    diff_low: float | None = None  # 95% interval of candidate − baseline
    diff_high: float | None = None
    significant_by_ci: bool | None = None  # fallback decision when there is no p-value
    note: str | None = None


def _aligned(
    base: PredictionTable, cand: PredictionTable
) -> tuple[PredictionTable, PredictionTable]:
    """Both tables restricted to the shared ids, in the baseline's order."""
    ci = cand.index()
    shared = [i for i, ident in enumerate(base.ids) if ident in ci]
    cidx = [ci[base.ids[i]] for i in shared]

    def take(t: PredictionTable, idx: list[int]) -> PredictionTable:
        return PredictionTable(
            ids=tuple(t.ids[i] for i in idx),
            labels=t.labels[idx],
            predicted=t.predicted[idx],
            probabilities=t.probabilities[idx] if t.probabilities.size else t.probabilities,
        )

    return take(base, shared), take(cand, cidx)


Scorer = Callable[[PredictionTable, Any], float]


def _prediction_scorer(metric: str, suite: SuiteRecord, labels: list[str]) -> Scorer | None:
    """A function scoring a prediction table on an index array, for the accuracy suite's metrics.

    The definitions are the accuracy suite's own (harness.metrics_classification), so the
    bootstrap resamples the very statistic the record reports.
    """
    from harness import metrics_classification as mc

    k = len(labels)
    n_bins = int(suite.params.get("ece_bins", mc.ECE_BINS))
    per_class = {"precision": 0, "recall": 1, "f1": 2}
    head, _, label = metric.partition(".")
    if head in per_class and label in labels:
        which, c = per_class[head], labels.index(label)
        return lambda t, i: float(
            mc.precision_recall_f1(mc.confusion(t.labels[i], t.predicted[i], k))[which][c]
        )
    if metric in ("f1_macro", "precision_macro", "recall_macro"):
        which = per_class[metric.removesuffix("_macro")]
        return lambda t, i: float(
            mc.precision_recall_f1(mc.confusion(t.labels[i], t.predicted[i], k))[which].mean()
        )
    by_probability: dict[str, Callable[[Any, Any], float]] = {
        "ece": lambda y, p: mc.ece(y, p, n_bins),
        "brier": mc.brier,
        "nll": mc.nll,
    }
    if metric in by_probability:
        score = by_probability[metric]
        return lambda t, i: score(t.labels[i], t.probabilities[i])
    return None


def _prediction_test(base: RunData, cand: RunData, rule: Rule, policy: Policy) -> TestResult | None:
    suite = cand.record.suite(rule.metric.suite)
    if rule.metric.suite != ACCURACY_SUITE or suite is None:
        return None
    if not (base.has_predictions() and cand.has_predictions()):
        return None
    pb, pc = _aligned(base.predictions(), cand.predictions())
    n = len(pb.ids)
    if n == 0:
        return TestResult("none", None, 0, note="the runs share no example ids")
    metric = rule.metric.metric
    if metric in ("accuracy", "error_rate"):
        right_b = pb.predicted == pb.labels
        right_c = pc.predicted == pc.labels
        b = int(np.sum(right_b & ~right_c))
        c = int(np.sum(~right_b & right_c))
        return TestResult(
            "exact McNemar",
            stats.mcnemar_exact(b, c),
            n,
            note=f"{b} examples right only in the baseline, {c} only in the candidate",
        )
    scorer = _prediction_scorer(metric, suite, base.label_names())
    if scorer is None or (
        metric in ("ece", "brier", "nll", "log_loss") and pb.probabilities.size == 0
    ):
        return None
    p, ci = stats.paired_bootstrap_pvalue(
        lambda i: scorer(pc, i) - scorer(pb, i), n, n_boot=policy.n_boot, seed=policy.seed
    )
    return TestResult("paired bootstrap", p, n, ci.low, ci.high)


class _Unusable(Exception):
    """Per-example values that do not reproduce the recorded metric: not evidence."""


def _self_check(
    rule: Rule, role: str, suite: SuiteRecord, values: dict[str, float], mean: bool
) -> None:
    metric = suite.metric(rule.metric.metric)
    if not values:
        raise _Unusable(f"the {role} run has no per-example values for {rule.metric}")
    if metric is None or metric.value is None:
        return
    arr = np.asarray(list(values.values()))
    if mean:
        ok = abs(float(arr.mean()) - metric.value) <= 1e-6 * max(1.0, abs(metric.value))
    else:  # quantile estimators differ in interpolation; the value must at least be in range
        ok = float(arr.min()) - 1e-9 <= metric.value <= float(arr.max()) + 1e-9
    if not ok:
        raise _Unusable(
            f"the {role} per-example values of {rule.metric} do not reproduce the recorded value "
            f"{metric.value:.6g}"
        )


def _declared_test(base: RunData, cand: RunData, rule: Rule, policy: Policy) -> TestResult | None:
    sb, sc = base.record.suite(rule.metric.suite), cand.record.suite(rule.metric.suite)
    if sb is None or sc is None:
        return None
    spec_b = per_example_spec(sb, rule.metric.metric)
    spec_c = per_example_spec(sc, rule.metric.metric)
    if spec_b is None or spec_c is None:
        return None
    try:
        vb, vc = declared_values(base, sb, spec_b), declared_values(cand, sc, spec_c)
    except RecordError as exc:
        raise _Unusable(exc.message) from None
    _self_check(rule, "baseline", sb, vb, spec_b.paired)
    _self_check(rule, "candidate", sc, vc, spec_c.paired)
    q = spec_c.quantile()
    if spec_c.paired and spec_b.paired:
        shared = [k for k in vb if k in vc]
        if not shared:
            return TestResult(
                "none", None, 0, note="the runs share no per-example ids for this metric"
            )
        a = np.asarray([vb[k] for k in shared])
        b = np.asarray([vc[k] for k in shared])
        p, ci = stats.paired_bootstrap_pvalue(
            lambda i: float(b[i].mean() - a[i].mean()),
            len(shared),
            n_boot=policy.n_boot,
            seed=policy.seed,
        )
        return TestResult("paired bootstrap", p, len(shared), ci.low, ci.high)
    quant = 0.5 if q is None else q
    p, ci = stats.two_sample_bootstrap_pvalue(
        list(vb.values()),
        list(vc.values()),
        lambda x: float(np.quantile(x, quant)),
        n_boot=policy.n_boot,
        seed=policy.seed,
    )
    return TestResult(
        f"two-sample bootstrap (q={quant:g})",
        p,
        min(len(vb), len(vc)),
        ci.low,
        ci.high,
        note=f"{len(vb)} baseline and {len(vc)} candidate samples",
    )


def _ci_fallback(mb: Metric, mc: Metric, why: str) -> TestResult:
    ib = stats.Interval(mb.ci_low, mb.ci_high, mb.ci_method or "")
    ic = stats.Interval(mc.ci_low, mc.ci_high, mc.ci_method or "")
    overlap = stats.intervals_overlap(ib, ic)
    if overlap is None:
        return TestResult(
            "none",
            None,
            significant_by_ci=None,
            note=f"{why}, and no confidence intervals: significance could not be tested; "
            "the regression counts as significant",
        )
    return TestResult(
        "CI overlap",
        None,
        significant_by_ci=not overlap,
        note=f"{why}: significance judged by whether the 95% intervals overlap "
        "(conservative; not a paired test)",
    )


def significance_test(base: RunData, cand: RunData, rule: Rule, policy: Policy) -> TestResult:
    reason = None
    for attempt in (_prediction_test, _declared_test):
        try:
            result = attempt(base, cand, rule, policy)
        except _Unusable as exc:
            reason = str(exc)
            break
        if result is not None:
            return result
    sb, sc = base.record.suite(rule.metric.suite), cand.record.suite(rule.metric.suite)
    mb = None if sb is None else sb.metric(rule.metric.metric)
    mc = None if sc is None else sc.metric(rule.metric.metric)
    if mb is None or mc is None:  # _first_pass reports missing metrics before any test
        return TestResult("none", None, note="metric missing")
    return _ci_fallback(mb, mc, reason or "no per-example data")
