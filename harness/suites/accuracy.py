"""Accuracy suite: accuracy, macro and per-class P/R/F1, confusion matrix, calibration, CIs.

Reads the runner's shared predictions on the evaluation split (no second forward pass).
Undefined figures follow scikit-learn's ``zero_division=np.nan`` and are null in the record,
each with a warning in words: a class never predicted has no precision, a class without examples
no recall, a class that is neither no F1, and such classes are left out of the macro averages;
with nothing scored (every prediction failed) every score is null.

Intervals (95%), chosen by a coverage simulation (``tests.interval_simulation``):
accuracy and per-group accuracy use Wilson's score interval (the percentile bootstrap covers
0.78 at accuracy 0.95 and n = 30); macro-F1 uses the Bayesian posterior interval of
``harness.metrics.classification.f1_macro_interval`` (the bootstrap gives [1, 1] on a perfect sample);
ECE, Brier and NLL keep a seeded percentile bootstrap over examples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from pydantic import Field

from harness import registry
from harness.data import Dataset
from harness.metrics import classification as mc
from harness.models.base import ModelAdapter
from harness.records import ChartSpec, Metric, SuiteCapabilities
from harness.stats import Statistic, bootstrap_ci, wilson_interval
from harness.suites.base import Suite, SuiteContext, SuiteOutcome, SuiteParams, proportion_metric

NOTHING_SCORED = (
    "no example was scored ({errors} prediction(s) failed, none succeeded): accuracy, "
    "macro and per-class precision, recall and F1, ECE, Brier and NLL are undefined (null)"
)
CLASS_UNSEEN = (
    "class {label!r} has no examples in the evaluation split and was never predicted: its "
    "precision, recall and F1 are undefined and excluded from the macro averages"
)
CLASS_ABSENT = (
    "class {label!r} has no examples in the evaluation split but was predicted {predicted} "
    "time(s): its recall is undefined and excluded from recall_macro (its precision and F1 are 0)"
)
CLASS_NEVER_PREDICTED = (
    "class {label!r} has {support} example(s) but was never predicted: its precision is undefined "
    "and excluded from precision_macro (its recall and F1 are 0)"
)
F1_ONE_CLASS = (
    "only class {label!r} occurs in the evaluation split and the predictions: f1_macro is 1 by "
    "definition and has no interval"
)


class AccuracyParams(SuiteParams):
    n_bootstrap: int = Field(default=1000, ge=0, le=100_000, description="Bootstrap resamples for the ECE, Brier and NLL CIs (0: none).")
    n_posterior_draws: int = Field(default=mc.F1_DRAWS, ge=0, le=100_000, description="Posterior draws for the macro-F1 CI (0: none).")
    ece_bins: int = Field(default=mc.ECE_BINS, ge=2, le=100, description="Equal-width bins for ECE.")
    min_group_size: int = Field(default=10, ge=1, description="Smallest group reported in the breakdown.")


@registry.suites.register
class AccuracySuite(Suite[AccuracyParams]):
    name = "accuracy"
    # 1.1: undefined P/R/F1 are null and left out of macro averages (was 0); Wilson accuracy CI
    # and posterior macro-F1 CI (were percentile bootstrap).
    version = "1.1"
    Params = AccuracyParams
    capabilities = SuiteCapabilities(
        headline="accuracy", prediction_metrics=True, charts=[ChartSpec(kind="accuracy")]
    )
    description = "Accuracy, macro/per-class P/R/F1, confusion matrix, ECE/Brier/NLL, CIs, group breakdown"

    def run(self, model: ModelAdapter, data: Dataset, ctx: SuiteContext) -> SuiteOutcome:
        params = self.params
        preds = ctx.predictions()
        y = np.asarray(preds.labels, dtype=np.int64)
        probs = preds.probabilities
        yhat = probs.argmax(axis=1).astype(np.int64)
        k = len(data.label_names)
        cm = mc.confusion(y, yhat, k)
        warnings: list[str] = []
        if preds.errors:
            warnings.append(f"{len(preds.errors)} example(s) had no prediction and are not scored; see predictions.jsonl 'error'")
        if y.size == 0:
            warnings.append(NOTHING_SCORED.format(errors=len(preds.errors)))
        else:
            warnings += undefined_class_warnings(cm, data.label_names)
        metrics = self._headline(y, yhat, probs, cm, ctx.seed, warnings, data.label_names)
        metrics.append(
            Metric(
                name="n_errors", value=float(len(preds.errors)), higher_is_better=False, n=int(y.size) + len(preds.errors),
                description="Examples without a prediction (the model raised or returned non-finite scores); not scored.",
            )
        )
        metrics += class_metrics(cm, data.label_names)
        scored = data.subset([i for i, ident in enumerate(data.ids) if ident not in preds.errors]) if preds.errors else data
        groups = self._group_breakdown(scored, y, yhat, params.min_group_size, warnings, metrics)
        details: dict[str, Any] = {
            "label_names": list(data.label_names),
            "confusion_matrix": cm.tolist(),
            "calibration_bins": mc.calibration_bins(y, probs, params.ece_bins),
            "support": cm.sum(axis=1).tolist(),
            "groups": groups,
        }
        return SuiteOutcome(metrics=metrics, warnings=warnings, details=details)

    def _headline(
        self, y: mc.IntArray, yhat: mc.IntArray, probs: mc.FloatArray, cm: mc.IntArray, seed: int,
        warnings: list[str], label_names: Sequence[str],
    ) -> list[Metric]:
        """Accuracy (Wilson), macro-F1 (posterior interval), calibration (bootstrap)."""
        params = self.params
        n = int(y.size)
        bins = params.ece_bins
        metrics = [proportion_metric("accuracy", int(np.sum(y == yhat)), n, higher=True, description="Share of correct predictions.")]
        f1_ci = mc.f1_macro_interval(cm, draws=params.n_posterior_draws, seed=seed + 1)
        seen = np.flatnonzero(mc.defined_classes(cm))
        if seen.size == 1:
            warnings.append(F1_ONE_CLASS.format(label=label_names[int(seen[0])]))
        metrics.append(
            Metric.with_interval(
                name="f1_macro", value=float(mc.macro_average(mc.precision_recall_f1(cm)[2])), higher_is_better=True,
                interval=f1_ci, n=n, description="Unweighted mean of per-class F1 over the classes where it is defined.",
            )
        )
        calibration: list[tuple[str, Callable[[mc.IntArray, mc.FloatArray], float], str]] = [
            ("ece", lambda a, p: mc.ece(a, p, bins), f"Expected calibration error, {bins} equal-width bins."),
            ("brier", mc.brier, "Brier score (halved for two classes, as scikit-learn)."),
            ("nll", mc.nll, "Mean negative log-likelihood."),
        ]
        for offset, (name, score, desc) in enumerate(calibration, start=2):
            ci = bootstrap_ci(_on_resample(score, y, probs), n, n_boot=params.n_bootstrap, seed=seed + offset)
            metrics.append(Metric.with_interval(name=name, value=score(y, probs), higher_is_better=False, interval=ci, n=n, description=desc))
        return metrics

    @staticmethod
    def _group_breakdown(
        data: Dataset,
        y: Any,
        yhat: Any,
        min_size: int,
        warnings: list[str],
        metrics: list[Metric],
    ) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for column, values in sorted(data.groups.items()):
            rows = []
            arr = np.array([v if v is not None else "(missing)" for v in values], dtype=object)
            for group in sorted(set(arr.tolist())):
                mask = arr == group
                size = int(mask.sum())
                correct = int((y[mask] == yhat[mask]).sum())
                ci = wilson_interval(correct, size)
                rows.append({"group": group, "n": size, "accuracy": correct / size, "ci_low": ci.low, "ci_high": ci.high})
                if size < min_size:
                    warnings.append(f"group {column}={group!r} has {size} examples (< {min_size}); not reported as a metric")
                    continue
                metrics.append(
                    Metric.with_interval(
                        name=f"accuracy.group.{column}.{group}",
                        value=correct / size,
                        higher_is_better=True,
                        interval=ci,
                        n=size,
                    )
                )
            out[column] = rows
        return out


def _on_resample(score: Callable[[mc.IntArray, mc.FloatArray], float], y: mc.IntArray, probs: mc.FloatArray) -> Statistic:
    """``score`` on the examples a bootstrap resample picks (its index array)."""
    return lambda i: score(y[i], probs[i])


def class_metrics(cm: mc.IntArray, label_names: Sequence[str]) -> list[Metric]:
    """Macro and per-class precision, recall and F1 (null where undefined), each with its own n.

    n is the count the figure divides by: predictions of the class for its precision, examples
    of it for its recall, examples that are of it or predicted as it (tp + fp + fn) for its F1.
    """
    precision, recall, f1 = mc.precision_recall_f1(cm)
    n = int(cm.sum())
    metrics = [
        Metric(name="precision_macro", value=float(mc.macro_average(precision)), higher_is_better=True, n=n,
               description="Unweighted mean of per-class precision over the classes ever predicted."),
        Metric(name="recall_macro", value=float(mc.macro_average(recall)), higher_is_better=True, n=n,
               description="Unweighted mean of per-class recall over the classes with examples."),
    ]
    support, predicted, tp = cm.sum(axis=1), cm.sum(axis=0), np.diag(cm)
    for c, label in enumerate(label_names):
        for name, values, count in (
            ("precision", precision, predicted[c]),
            ("recall", recall, support[c]),
            ("f1", f1, support[c] + predicted[c] - tp[c]),
        ):
            metrics.append(Metric(name=f"{name}.{label}", value=float(values[c]), higher_is_better=True, n=int(count)))
    return metrics


def undefined_class_warnings(cm: mc.IntArray, label_names: Sequence[str]) -> list[str]:
    """One sentence per class whose precision, recall or F1 is undefined, saying what is left out."""
    support, predicted = cm.sum(axis=1), cm.sum(axis=0)
    out = []
    for c, label in enumerate(label_names):
        if support[c] == 0 and predicted[c] == 0:
            out.append(CLASS_UNSEEN.format(label=label))
        elif support[c] == 0:
            out.append(CLASS_ABSENT.format(label=label, predicted=int(predicted[c])))
        elif predicted[c] == 0:
            out.append(CLASS_NEVER_PREDICTED.format(label=label, support=int(support[c])))
    return out
