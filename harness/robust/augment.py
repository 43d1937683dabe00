"""Attacks for adversarial fine-tuning: the fine-tuning stage (``models/finetune/adversarial``)
hands this engine the model being trained and a list of training examples, and gets one plain
row per example back, the same rows the robustness suite writes (same recipes, same offline
resources, same clean-state, seeded, time-budgeted attack per example).

Registered in ``registry.adversarial_augmenters`` because ``harness.models`` sits below
``harness.robust`` and may not import it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from harness import registry
from harness.models.base import ModelAdapter
from harness.robust.recipes import RECIPES, available_recipes

KEPT = (
    "result",
    "perturbed_text",
    "original_pred",
    "perturbed_pred",
    "queries",
    "words_perturbed_pct",
)


@registry.adversarial_augmenters.register("textattack")
class TextAttackAugmenter:
    """TextAttack recipes (through ``robust.attacks``) as an augmentation engine."""

    def recipe_problem(self, recipe: str) -> str | None:
        """Why ``recipe`` cannot be used here (unknown, or unavailable), else None."""
        spec = RECIPES.get(recipe)
        if spec is None:
            hint = registry.did_you_mean(recipe, sorted(RECIPES))
            return (
                f"unknown recipe {recipe!r}{hint}; available here: {', '.join(available_recipes())}"
            )
        if spec.unavailable:
            return f"recipe {recipe!r} cannot run here: {spec.unavailable}"
        return None

    def attack(
        self,
        model: ModelAdapter,
        examples: Sequence[tuple[str, str, int]],
        *,
        recipe: str,
        seed: int,
        query_budget: int | None,
        time_budget_s: float | None,
        workers: int,
        on_row: Callable[[dict[str, Any]], None],
    ) -> None:
        """Attack each (id, text, label); ``on_row`` gets ``{"id", "label", result fields}``
        as each finishes (in this process)."""
        from harness.robust.attacks import build_attack
        from harness.robust.engine import Job, example_seed, run_jobs
        from harness.robust.resources import AttackResources
        from harness.robust.textattack_adapter import load_textattack
        from harness.robust.victim import VictimWrapper

        resources = AttackResources.fetch()
        load_textattack(resources)
        victim = VictimWrapper(model)
        victim.warm([text for _, text, _ in examples])
        attack = build_attack(recipe, victim, resources, query_budget=query_budget)
        jobs = [
            Job(recipe, eid, text, label, example_seed(seed, recipe, eid))
            for eid, text, label in examples
        ]

        def record(job: Job, fields: dict[str, Any]) -> None:
            on_row({"id": job.example_id, "label": job.label, **{k: fields.get(k) for k in KEPT}})

        run_jobs(
            jobs, attacks={recipe: attack}, victim=victim, time_budget_s=time_budget_s,
            workers=workers, on_result=record,
        )  # fmt: skip
