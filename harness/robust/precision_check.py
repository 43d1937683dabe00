"""Attack outcomes under reduced precision compared with fp32, per example, on a sample.

A robustness run whose model computes in bf16, fp16 or int8 (``model.precision``) answers every
attack query in that precision; a search is a chain of argmax decisions, so a tiny change of
probability can send it down another path. To say how far the outcomes are from an fp32 run,
a seeded sub-sample of the attacked examples (``fp32_check_examples``) is attacked again with
the model's fp32 reference (same recipes, same per-example seeds, a fresh cache) and each
(recipe, example) outcome — succeeded, failed, skipped, timed out — is compared with the run's.
The share that agree goes into the record with the pairs that do not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

REDUCED = ("bf16", "fp16", "int8")


def outcome_agreement(
    model: Any,
    sample: Any,
    recipes: Sequence[str],
    done: Mapping[str, Mapping[str, Any]],
    *,
    n: int,
    seed: int,
    resources: Any,
    query_budget: int | None,
    time_budget_s: float | None,
    workers: int,
) -> dict[str, Any] | None:
    """Per-example outcome agreement with fp32 on ``n`` of the attacked examples; None when the
    model runs in fp32 (or has no fp32 reference) or ``n`` is 0."""
    from harness.robust.attacks import build_attack
    from harness.robust.engine import Job, example_seed, run_jobs
    from harness.robust.victim import VictimWrapper

    precision = getattr(model, "precision", "fp32")
    reference = getattr(model, "fp32_reference", None)
    if n <= 0 or precision not in REDUCED or reference is None:
        return None
    sub = sample.sample(n, seed + 3)
    jobs = [
        Job(recipe, eid, text, label, example_seed(seed, recipe, eid))
        for recipe in recipes
        for eid, text, label in zip(sub.ids, sub.texts, sub.labels, strict=True)
        if f"{recipe}:{eid}" in done
    ]
    victim = VictimWrapper(reference())
    victim.warm(list(sub.texts))
    attacks = {r: build_attack(r, victim, resources, query_budget=query_budget) for r in recipes}
    outcomes: dict[str, str] = {}

    def keep(job: Job, fields: dict[str, Any]) -> None:
        outcomes[job.row_id] = str(fields["result"])

    run_jobs(jobs, attacks=attacks, victim=victim, time_budget_s=time_budget_s, workers=workers, on_result=keep)
    keys = sorted(outcomes)
    differ = [
        {"id": k, precision: done[k].get("result"), "fp32": outcomes[k]}
        for k in keys
        if done[k].get("result") != outcomes[k]
    ]
    return {
        "precision": precision,
        "n_examples": len(sub),
        "n_pairs": len(keys),
        "agreement": (1.0 - len(differ) / len(keys)) if keys else None,
        "disagreements": differ,
        "seed": seed + 3,
    }
