"""Perturbation invariance: does the prediction survive typos, case, contractions, punctuation,
whitespace and first-name swaps? No search, no TextAttack: one batched prediction per
perturbation. Per perturbation: accuracy, flip rate and mean |Δp(true class)|, with 95% CIs.
Flip rate and Δp are over the examples the perturbation actually changed; the record's
``details.per_example`` tells the gate so (a paired test over those rows).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import Field, field_validator

from harness import registry
from harness.records import ChartSpec, Metric, SuiteCapabilities
from harness.robust.perturb import PERTURBATIONS, perturb
from harness.stats import bootstrap_mean_ci
from harness.suites.base import Suite, SuiteContext, SuiteOutcome, SuiteParams, proportion_metric

if TYPE_CHECKING:
    from harness.data import Dataset
    from harness.models.base import FloatArray, ModelAdapter


class InvarianceParams(SuiteParams):
    perturbations: list[str] = Field(
        default_factory=lambda: list(PERTURBATIONS),
        description=f"Perturbations to apply; known: {', '.join(PERTURBATIONS)}.",
    )
    n_examples: int | None = Field(
        default=None, ge=1, description="Deterministic sample size; null = all."
    )
    seed: int | None = Field(
        default=None, description="Sampling and perturbation seed; null = the run seed."
    )
    n_bootstrap: int = Field(
        default=1000, ge=0, description="Bootstrap resamples for the mean |Δp| interval."
    )

    @field_validator("perturbations")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        from harness.registry import did_you_mean

        for name in value:
            if name not in PERTURBATIONS:
                raise ValueError(
                    f"unknown perturbation {name!r}{did_you_mean(name, list(PERTURBATIONS))}; "
                    f"known: {', '.join(PERTURBATIONS)}"
                )
        if not value:
            raise ValueError("at least one perturbation is required")
        return value


@registry.suites.register
class InvarianceSuite(Suite[InvarianceParams]):
    name: ClassVar[str] = "invariance"
    version: ClassVar[str] = "1.0"
    Params = InvarianceParams
    capabilities = SuiteCapabilities(
        shardable=True,
        shard_param="n_examples",
        headline="flip_rate",
        outcome_kinds=["binary", "continuous"],
        charts=[ChartSpec(kind="invariance")],
    )
    description: ClassVar[str] = (
        "Prediction stability under typos, case, contractions, punctuation, names"
    )
    smoke_params: ClassVar[dict[str, Any]] = {"n_bootstrap": 100}

    def run(self, model: ModelAdapter, data: Dataset, ctx: SuiteContext) -> SuiteOutcome:
        p = self.params
        seed = ctx.seed if p.seed is None else p.seed
        sample = data.sample(p.n_examples, seed)
        labels = np.asarray(sample.labels)
        clean = model.predict_proba(list(sample.texts))
        n = len(sample)
        metrics = [
            proportion_metric(
                "clean.accuracy",
                int(np.sum(clean.argmax(axis=1) == labels)),
                n,
                higher=True,
                description="Accuracy on the unperturbed sample",
            )
        ]
        details: dict[str, Any] = {"n_examples": n, "seed": seed, "perturbations": {}}
        order: list[str] = []
        for step, name in enumerate(p.perturbations):
            texts = [
                perturb(name, t, seed=seed, example_id=i)
                for i, t in zip(sample.ids, sample.texts, strict=True)
            ]
            ids = [f"{name}:{i}" for i in sample.ids]
            order += ids
            done = ctx.examples.done
            if all(i in done for i in ids):
                probs = np.array([done[i]["scores_after"] for i in ids], dtype=np.float64)
            else:
                probs = model.predict_proba(texts)
            result = _Perturbed(name, sample, texts, clean, probs)
            for row in result.rows(ids, done):
                ctx.examples.append(row)
            metrics += result.metrics(p.n_bootstrap, seed)
            details["perturbations"][name] = {
                "n_changed": int(result.changed.sum()),
                "n_flipped": int(result.flipped.sum()),
            }
            ctx.progress(step + 1, len(p.perturbations))
        details["per_example"] = per_example_declarations(p.perturbations)
        warnings = [
            f"{k}: changed no example of the sample"
            for k, v in details["perturbations"].items()
            if v["n_changed"] == 0
        ]
        return SuiteOutcome(
            metrics=metrics,
            warnings=warnings,
            departures=[
                "first-name swaps draw from a fixed list of 30 common given names, "
                "not CheckList's lexicons"
            ],
            details=details,
            example_order=order,
        )


def per_example_declarations(perturbations: list[str]) -> dict[str, dict[str, Any]]:
    """For the gate (``details.per_example``, read by ``harness.gate.inputs``): flip rate and
    mean |Δp| are means of one value per changed example of the perturbation's rows."""
    out: dict[str, dict[str, Any]] = {}
    for name in perturbations:
        where = {"perturbation": name, "changed": True}
        out[f"{name}.flip_rate"] = {"field": "flipped", "where": where}
        out[f"{name}.mean_abs_delta_p_true"] = {"field": "abs_delta_p_true", "where": dict(where)}
    return out


class _Perturbed:
    """One perturbation's predictions against the clean ones: what changed, flipped, moved."""

    def __init__(
        self, name: str, sample: Dataset, texts: list[str], clean: FloatArray, probs: FloatArray
    ) -> None:
        self.name, self.sample, self.texts = name, sample, texts
        self.clean, self.probs = clean, probs
        n = len(sample)
        self.labels = np.asarray(sample.labels)
        self.clean_pred = clean.argmax(axis=1)
        self.pred = probs.argmax(axis=1)
        self.changed = np.array([a != b for a, b in zip(texts, sample.texts, strict=True)])
        self.flipped = (self.pred != self.clean_pred) & self.changed
        self.delta = np.abs(probs[np.arange(n), self.labels] - clean[np.arange(n), self.labels])

    def rows(self, ids: list[str], done: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The per-example rows not ``done`` yet, in sample order."""
        s = self.sample
        return [
            {
                "id": row_id,
                "perturbation": self.name,
                "example_id": s.ids[k],
                "original_text": s.texts[k],
                "perturbed_text": self.texts[k],
                "changed": bool(self.changed[k]),
                "label": int(self.labels[k]),
                "pred_before": int(self.clean_pred[k]),
                "pred_after": int(self.pred[k]),
                "scores_before": [float(x) for x in self.clean[k]],
                "scores_after": [float(x) for x in self.probs[k]],
                "flipped": bool(self.flipped[k]),
                "abs_delta_p_true": float(self.delta[k]),
            }
            for k, row_id in enumerate(ids)
            if row_id not in done
        ]

    def metrics(self, n_bootstrap: int, seed: int) -> list[Metric]:
        """Accuracy, flip rate (over changed examples), mean |Δp(true)| and the changed count."""
        name, n = self.name, len(self.sample)
        changed, delta = self.changed, self.delta
        n_changed = int(changed.sum())
        ci = bootstrap_mean_ci(delta[changed], n_boot=n_bootstrap, seed=seed)
        return [
            proportion_metric(
                f"{name}.accuracy",
                int(np.sum(self.pred == self.labels)),
                n,
                higher=True,
                description=f"Accuracy after the '{name}' perturbation",
            ),
            proportion_metric(
                f"{name}.flip_rate",
                int(self.flipped.sum()),
                n_changed,
                higher=False,
                description="Share of changed examples whose predicted label changed",
            ),
            Metric.with_interval(
                name=f"{name}.mean_abs_delta_p_true",
                value=float(delta[changed].mean()) if n_changed else None,
                higher_is_better=False,
                interval=ci,
                n=n_changed,
                description="Mean |change in the true class's probability| over changed examples",
            ),
            Metric(
                name=f"{name}.n_changed",
                value=float(n_changed),
                higher_is_better=None,
                n=n,
                unit="examples",
                description="Examples the perturbation changed",
            ),
        ]
