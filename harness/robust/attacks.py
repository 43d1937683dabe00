"""Build TextAttack attacks from recipes and run them on one example at a time.

An attack is TextAttack's own recipe class built with offline resources; each example is
attacked from a clean state (caches cleared, RNG seeded, a time budget) and its result turned
into plain data. Also here: TextAttack's own ``Attacker`` on one example and the two peer
victims the tests and benchmarks compare against. TextAttack itself is reached only through
``textattack_adapter`` (``load_textattack`` / ``loaded``), which contains its import.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Sequence
from typing import Any

from harness.errors import ConfigError
from harness.robust.recipes import RECIPES
from harness.robust.resources import AttackResources
from harness.robust.textattack_adapter import (
    load_textattack,
    loaded,
    offline_nltk,
    quiet_loggers,
    rng_scope,
    substitutes,
)
from harness.robust.victim import AttackTimeout, VictimWrapper

RESULT_TYPES = {
    "SuccessfulAttackResult": "succeeded",
    "FailedAttackResult": "failed",
    "SkippedAttackResult": "skipped",
    "MaximizedAttackResult": "succeeded",
}


def build_attack(
    recipe: str, victim: VictimWrapper, resources: AttackResources, *, query_budget: int | None
) -> Any:
    """A TextAttack ``Attack`` for ``recipe`` with offline resources."""
    spec = RECIPES.get(recipe)
    if spec is None or spec.unavailable:
        raise ConfigError(
            f"robustness: recipe {recipe!r} cannot run here: "
            f"{spec.unavailable if spec else 'unknown recipe'}"
        )
    ta = load_textattack(resources)
    recipe_cls = getattr(ta.attack_recipes, spec.textattack_class)
    module = __import__(recipe_cls.__module__, fromlist=["_"])
    with (
        offline_nltk(resources),
        substitutes(module, victim, resources, embedding_kind=spec.embedding),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        attack = recipe_cls.build(victim)
    if query_budget:
        attack.goal_function.query_budget = query_budget
    quiet_loggers()
    return attack


def first_queries(attack: Any, text: str) -> list[str]:
    """The texts ``attack`` will query first on ``text``: for the greedy word-importance search
    (PWWS, DeepWordBug, TextFooler …) every modifiable word replaced by [UNK] in turn, built the
    way the search builds them. Recipes that share the search share these texts, so one
    bucketed pass over all examples answers them before any search starts. [] for other
    searches."""
    ta = loaded()
    search = attack.search_method
    if not isinstance(search, ta.search_methods.GreedyWordSwapWIR):
        return []
    if search.wir_method not in ("unk", "weighted-saliency"):
        return []
    initial = ta.shared.AttackedText(text)
    _, indices = attack.get_indices_to_order(initial)
    if search.truncate_words_to is not None:
        indices = sorted(indices)[: search.truncate_words_to]
    return [str(initial.replace_word_at_index(i, search.unk_token).text) for i in indices]


def words_perturbed_pct(result: Any) -> float | None:
    """Share of words changed, in percent (TextAttack's own 'perturbed word %' definition)."""
    if type(result).__name__ not in ("SuccessfulAttackResult", "MaximizedAttackResult"):
        return None
    original = result.original_result.attacked_text
    changed = len(original.all_words_diff(result.perturbed_result.attacked_text))
    return 100.0 * changed / max(len(original.words), 1)


def result_fields(result: Any) -> dict[str, Any]:
    """Plain-data view of a TextAttack ``AttackResult``."""
    original, perturbed = result.original_result, result.perturbed_result
    kind = RESULT_TYPES.get(type(result).__name__, type(result).__name__)
    return {
        "result": kind,
        "original_text": original.attacked_text.text,
        "perturbed_text": perturbed.attacked_text.text if kind == "succeeded" else None,
        "original_pred": int(original.output),
        "perturbed_pred": int(perturbed.output),
        "scores_before": [float(x) for x in original.raw_output.tolist()],
        "scores_after": [float(x) for x in perturbed.raw_output.tolist()],
        "queries": int(perturbed.num_queries),
        "words_perturbed_pct": words_perturbed_pct(result),
    }


def attack_example(
    attack: Any,
    victim: VictimWrapper,
    text: str,
    label: int,
    *,
    seed: int,
    time_budget_s: float | None,
) -> dict[str, Any]:
    """Attack one example from a clean state (caches cleared, RNG seeded) within its budget."""
    attack.clear_cache()  # transformation caches would replay earlier random candidates
    start = time.perf_counter()
    with rng_scope(seed):
        victim.set_deadline(time_budget_s)
        try:
            fields = result_fields(attack.attack(text, int(label)))
        except AttackTimeout:
            fields = {
                "result": "timed_out",
                "original_text": text,
                "perturbed_text": None,
                "original_pred": None,
                "perturbed_pred": None,
                "scores_before": None,
                "scores_after": None,
                "queries": int(attack.goal_function.num_queries),
                "words_perturbed_pct": None,
            }
        finally:
            victim.set_deadline(None)
    fields["seconds"] = time.perf_counter() - start
    return fields


def attacker_run(
    attack: Any, text: str, label: int, *, seed: int, query_budget: int | None
) -> dict[str, Any]:
    """TextAttack's own ``Attacker`` on one example (the reference the suite is checked against)."""
    ta = loaded()
    dataset = ta.datasets.Dataset([(text, int(label))])
    args = ta.AttackArgs(
        num_examples=1,
        random_seed=seed,
        silent=True,
        disable_stdout=True,
        query_budget=query_budget,
    )
    with (
        rng_scope(None),
        open(os.devnull, "w") as sink,
        contextlib.redirect_stderr(sink),
        contextlib.redirect_stdout(sink),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")  # its summary table warns on empty slices
        results = ta.Attacker(attack, dataset, args).attack_dataset()
    quiet_loggers()
    return result_fields(results[0])


def stock_hf_wrapper(model: Any, tokenizer: Any) -> Any:
    """TextAttack's stock wrapper (pads every batch to ``model_max_length``), for benchmarks."""
    return loaded().models.wrappers.HuggingFaceModelWrapper(model, tokenizer)


class PadToLongestWrapper:
    """The stock wrapper's behaviour with padding to the longest item: no caching, no bucketing."""

    def __init__(self, model: Any, tokenizer: Any, max_length: int) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length

    def __call__(self, text_list: Sequence[str]) -> Any:
        import torch

        enc = self.tokenizer(
            list(text_list),
            padding="longest",
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        with torch.inference_mode():
            return self.model(**enc).logits
