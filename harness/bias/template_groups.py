"""Group figures for the template tests: Fairlearn's ``MetricFrame`` per group, the
per-(template, group) tables the cluster bootstrap resamples, and the gap metrics.

Intervals of gaps and group figures resample templates (a cluster bootstrap through
``harness.stats.bootstrap_ci``): the instances of one template are correlated, so resampling
instances would give intervals that are too narrow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.records import Metric, finite_or_none
from harness.stats import Interval, bootstrap_ci


def _mean_score(y_true: Any, y_pred: Any) -> float:
    """Fairlearn metric: the mean positive-class score (carried in ``y_true``)."""
    return float(np.mean(y_true))


def group_frame(scores: Any, positive: Any, sensitive: Any) -> Any:
    """Fairlearn's ``MetricFrame`` of positive rate and mean score by ``sensitive``."""
    from fairlearn.metrics import MetricFrame, selection_rate

    return MetricFrame(
        metrics={"positive_rate": selection_rate, "mean_score": _mean_score},
        y_true=scores,
        y_pred=positive,
        sensitive_features=sensitive,
    )


@dataclass(frozen=True)
class GroupTables:
    """Per (template, group) instance counts, positive predictions and score sums: the cluster
    bootstrap resamples templates (rows) ``n_boot`` times with ``seed`` and recomputes group
    figures from these sums."""

    count: Any
    positive: Any
    score: Any
    n_boot: int
    seed: int

    @classmethod
    def build(
        cls,
        tmpl: Any,
        codes: Any,
        scores: Any,
        positive: Any,
        n_groups: int,
        *,
        n_boot: int,
        seed: int,
    ) -> GroupTables:
        n_t = int(tmpl.max()) + 1
        shape = (n_t, n_groups)
        count, pos, score = np.zeros(shape), np.zeros(shape), np.zeros(shape)
        np.add.at(count, (tmpl, codes), 1.0)
        np.add.at(pos, (tmpl, codes), positive)
        np.add.at(score, (tmpl, codes), scores)
        return cls(count, pos, score, n_boot, seed)

    def rates(self, idx: Any, which: str) -> Any:
        total = self.count[idx].sum(axis=0)
        num = (self.positive if which == "positive_rate" else self.score)[idx].sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return num / total

    def gap_ci(self, which: str) -> Interval:
        def stat(idx: Any) -> float:
            r = self.rates(idx, which)
            return float(np.max(r) - np.min(r))

        return bootstrap_ci(stat, self.count.shape[0], n_boot=self.n_boot, seed=self.seed)

    def group_ci(self, which: str, k: int) -> Interval:
        return bootstrap_ci(
            lambda idx: float(self.rates(idx, which)[k]),
            self.count.shape[0],
            n_boot=self.n_boot,
            seed=self.seed,
        )


def gap_metrics(prefix: str, mf: Any, tables: GroupTables, n: int, n_groups: int) -> list[Metric]:
    """DP difference and mean-score gap (max − min over groups), CI by resampling templates."""
    out = []
    for metric, name, what in (
        ("positive_rate", "demographic_parity_difference", "positive-prediction rate"),
        ("mean_score", "score_gap", "mean positive-class score"),
    ):
        if n_groups < 2:
            out.append(
                Metric(
                    name=f"{prefix}.{name}",
                    value=None,
                    higher_is_better=False,
                    n=n,
                    description=f"Undefined: fewer than two groups to compare ({what}).",
                )
            )
            continue
        ci = tables.gap_ci(metric)
        out.append(
            Metric(
                name=f"{prefix}.{name}",
                value=finite_or_none(mf.difference()[metric]),
                higher_is_better=False,
                ci_low=ci.low,
                ci_high=ci.high,
                ci_method=f"{ci.method}, resampling templates" if ci.low is not None else None,
                n=n,
                description=f"Largest difference between groups in {what} (Fairlearn MetricFrame).",
            )
        )
    return out
