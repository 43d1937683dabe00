"""Accuracy suite: accuracy, macro and per-class P/R/F1, confusion matrix, calibration, CIs.

Reads the runner's shared predictions on the evaluation split (no second forward pass).
Headline metrics carry seeded percentile-bootstrap 95% intervals over examples; when the dataset
has group columns, accuracy is broken down per group.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from harness import metrics_classification as mc
from harness import registry
from harness.data import Dataset
from harness.models.base import ModelAdapter
from harness.records import Metric
from harness.stats import bootstrap_ci, wilson_interval
from harness.suites.base import Suite, SuiteContext, SuiteOutcome, SuiteParams


class AccuracyParams(SuiteParams):
    n_bootstrap: int = Field(default=1000, ge=0, le=100_000, description="Bootstrap resamples for CIs (0: none).")
    ece_bins: int = Field(default=mc.ECE_BINS, ge=2, le=100, description="Equal-width bins for ECE.")
    min_group_size: int = Field(default=10, ge=1, description="Smallest group reported in the breakdown.")


@registry.suites.register("accuracy")
class AccuracySuite(Suite):
    name = "accuracy"
    version = "1.0"
    Params = AccuracyParams
    description = "Accuracy, macro/per-class P/R/F1, confusion matrix, ECE/Brier/NLL, bootstrap CIs, group breakdown"

    def run(self, model: ModelAdapter, data: Dataset, ctx: SuiteContext) -> SuiteOutcome:
        params = self.params
        assert isinstance(params, AccuracyParams)
        preds = ctx.predictions()
        y = np.asarray(preds.labels, dtype=np.int64)
        probs = preds.probabilities
        yhat = probs.argmax(axis=1).astype(np.int64)
        k = len(data.label_names)
        n = int(y.size)
        cm = mc.confusion(y, yhat, k)
        precision, recall, f1 = mc.precision_recall_f1(cm)

        def boot(stat: Any, seed_offset: int) -> tuple[float | None, float | None, str]:
            ci = bootstrap_ci(stat, n, n_boot=params.n_bootstrap, seed=ctx.seed + seed_offset)
            return ci.low, ci.high, ci.method

        headline = [
            ("accuracy", mc.accuracy(y, yhat), True, lambda i: mc.accuracy(y[i], yhat[i]), "Share of correct predictions."),
            ("f1_macro", float(f1.mean()), True, lambda i: mc.f1_macro(y[i], yhat[i], k), "Unweighted mean of per-class F1."),
            ("ece", mc.ece(y, probs, params.ece_bins), False, lambda i: mc.ece(y[i], probs[i], params.ece_bins), f"Expected calibration error, {params.ece_bins} equal-width bins."),
            ("brier", mc.brier(y, probs), False, lambda i: mc.brier(y[i], probs[i]), "Brier score (halved for two classes, as scikit-learn)."),
            ("nll", mc.nll(y, probs), False, lambda i: mc.nll(y[i], probs[i]), "Mean negative log-likelihood."),
        ]
        metrics: list[Metric] = []
        for offset, (name, value, hib, stat, desc) in enumerate(headline):
            low, high, method = boot(stat, offset)
            metrics.append(Metric(name=name, value=value, higher_is_better=hib, ci_low=low, ci_high=high, ci_method=method, n=n, description=desc))
        metrics.append(
            Metric(
                name="n_errors", value=float(len(preds.errors)), higher_is_better=False, n=n + len(preds.errors),
                description="Examples without a prediction (the model raised or returned non-finite scores); not scored.",
            )
        )
        metrics.append(Metric(name="precision_macro", value=float(precision.mean()), higher_is_better=True, n=n))
        metrics.append(Metric(name="recall_macro", value=float(recall.mean()), higher_is_better=True, n=n))
        support = cm.sum(axis=1)
        for c, label in enumerate(data.label_names):
            for mname, values in (("precision", precision), ("recall", recall), ("f1", f1)):
                metrics.append(Metric(name=f"{mname}.{label}", value=float(values[c]), higher_is_better=True, n=int(support[c])))
        warnings: list[str] = []
        if preds.errors:
            warnings.append(f"{len(preds.errors)} example(s) had no prediction and are not scored; see predictions.jsonl 'error'")
        scored = data.subset([i for i, ident in enumerate(data.ids) if ident not in preds.errors]) if preds.errors else data
        groups = self._group_breakdown(scored, y, yhat, params.min_group_size, warnings, metrics)
        details: dict[str, Any] = {
            "label_names": list(data.label_names),
            "confusion_matrix": cm.tolist(),
            "calibration_bins": mc.calibration_bins(y, probs, params.ece_bins),
            "support": support.tolist(),
            "groups": groups,
        }
        return SuiteOutcome(metrics=metrics, warnings=warnings, details=details)

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
