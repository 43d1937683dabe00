"""One batch of examples in, one JSON row per example out.

The rows carry everything the suite's metrics are computed from, so a resumed run aggregates
stored rows and fresh rows alike. Random draws (GradientShap, infidelity, sensitivity, the
random-ranking control) are seeded from the run seed and the batch's ids, never from the
position of the batch, so a batch recomputes to the same numbers on resume.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.explain.attribution import (
    Batch,
    Settings,
    forward_outputs,
    frozen,
    gradient_shap,
    integrated_gradients,
    lig_attribute,
    make_batch,
    seeded,
    subset,
    word_ablation,
)
from harness.explain.faithfulness import (
    ProbabilityScorer,
    RemovalConfig,
    faithfulness_for,
    rank_words,
)
from harness.explain.robustness import robustness_scores
from harness.explain.sanity import randomisation_similarity, randomised_head_copy
from harness.explain.words import TokenizedText, words_from_tokens
from harness.records import finite_or_none as finite
from harness.records import json_safe

RANDOM = "random"


@dataclass(frozen=True)
class ExplainConfig:
    methods: tuple[str, ...]
    target: str  # 'predicted' or 'true'
    settings: Settings
    removal: RemovalConfig
    baseline_id: int
    shap_tokens: tuple[int, ...]
    label_names: tuple[str, ...]
    seed: int = 0
    random_control: bool = True
    robustness_ids: frozenset[str] = field(default_factory=frozenset)
    sanity_ids: frozenset[str] = field(default_factory=frozenset)
    infidelity_samples: int = 10
    sensitivity_samples: int = 5
    sensitivity_radius: float = 0.02


def derived_seed(seed: int, *parts: str) -> int:
    digest = hashlib.sha256("\x1f".join([str(seed), *parts]).encode()).digest()
    return int.from_bytes(digest[:4], "big")


class Explainer:
    """Runs the configured methods and checks on batches of tokenised examples."""

    def __init__(self, *, adapter: Any, config: ExplainConfig) -> None:
        self.adapter = adapter
        self.config = config
        self._random_model: Any = None

    # ------------------------------------------------------------------ attributions
    def word_attributions(
        self, model: Any, batch: Batch, targets: Sequence[int], f_input: Any, *, check: bool
    ) -> tuple[dict[str, list[list[float]]], dict[str, list[dict[str, Any]]]]:
        """Word attributions per method, and per-example completeness records.

        ``check`` runs IG's completeness loop (raising n_steps); without it IG runs once at
        the base n_steps (used for the randomised model).
        """
        cfg, s = self.config, self.config.settings
        words: dict[str, list[list[float]]] = {}
        deltas: dict[str, list[dict[str, Any]]] = {}
        ids = [it.id for it in batch.items]
        for method in cfg.methods:
            if method == "ig" and check:
                res = integrated_gradients(
                    self.adapter, model, batch, targets, f_input, cfg.baseline_id, s
                )
                tokens, how = res.tokens, "sum"
                deltas["ig"] = [
                    {
                        "n_steps": res.n_steps[i],
                        "n_evaluations": res.evaluations[i],
                        **(
                            {"n_panels": res.panels[i], "n_forwards": res.forwards[i]}
                            if res.panels
                            else {}
                        ),
                        "delta": finite(res.delta[i]),
                        "relative_delta": finite(res.relative_delta[i]),
                        "within_tolerance": bool(res.relative_delta[i] <= s.tolerance),
                        "f_input": finite(res.f_input[i]),
                        "f_baseline": finite(res.f_baseline[i]),
                    }
                    for i in range(batch.size)
                ]
            elif method == "ig":
                tokens = lig_attribute(model, batch, targets, s.n_steps, s).cpu().double().numpy()
                how = "sum"
            elif method == "gradient_shap":
                with seeded(derived_seed(cfg.seed, "gradient_shap", *ids)):
                    tokens, f_base = gradient_shap(model, batch, targets, cfg.shap_tokens, s)
                how = "sum"
                gap = tokens.sum(axis=1) - (np.asarray(f_input) - f_base)
                scale = np.maximum(np.abs(np.asarray(f_input) - f_base), s.floor)
                deltas["gradient_shap"] = [
                    {
                        "delta": finite(gap[i]),
                        "relative_delta": finite(abs(gap[i]) / scale[i]),
                        "f_input": finite(f_input[i]),
                        "f_baseline": finite(f_base[i]),
                    }
                    for i in range(batch.size)
                ]
            else:
                tokens, how = word_ablation(model, batch, targets, s), "first"
            words[method] = [
                words_from_tokens(tokens[i], item, how=how) for i, item in enumerate(batch.items)
            ]
        return words, deltas

    # ------------------------------------------------------------------ one batch
    def explain(
        self, items: Sequence[TokenizedText], labels: Sequence[int]
    ) -> list[dict[str, Any]]:
        cfg, s = self.config, self.config.settings
        model = self.adapter.model
        batch = make_batch(self.adapter, items, cfg.baseline_id)
        with frozen(model):
            outputs = forward_outputs(model, batch, s.output)
            probs = outputs if s.output == "probability" else outputs.softmax(-1)
            probs = probs.detach().cpu().double().numpy()
            predicted = probs.argmax(axis=1)
            targets = [int(t) for t in (predicted if cfg.target == "predicted" else labels)]
            f_input = outputs.detach().cpu().double().numpy()[np.arange(batch.size), targets]
            words, deltas = self.word_attributions(model, batch, targets, f_input, check=True)
            faith = self._faithfulness(items, words, targets)
            robust = self._robustness(model, batch, targets)
        sanity = self._sanity(batch, targets, words)
        rows = []
        for i, item in enumerate(items):
            rows.append(
                {
                    "id": item.id,
                    "words": list(item.words),
                    "n_tokens": len(item.ids),
                    "truncated": item.truncated,
                    "label": int(labels[i]),
                    "label_name": cfg.label_names[int(labels[i])],
                    "predicted": int(predicted[i]),
                    "predicted_name": cfg.label_names[int(predicted[i])],
                    "probability": finite(probs[i, predicted[i]]),
                    "target": targets[i],
                    "target_name": cfg.label_names[targets[i]],
                    "target_probability": finite(probs[i, targets[i]]),
                    "attributions": {m: [finite(v) for v in words[m][i]] for m in cfg.methods},
                    "deltas": {m: d[i] for m, d in deltas.items()},
                    "faithfulness": faith[i],
                    "robustness": robust.get(i),
                    "sanity": sanity.get(i),
                }
            )
        return rows

    def _faithfulness(
        self,
        items: Sequence[TokenizedText],
        words: dict[str, list[list[float]]],
        targets: Sequence[int],
    ) -> list[dict[str, dict[str, Any] | None]]:
        cfg = self.config
        rankings: list[dict[str, list[int]]] = []
        for i, item in enumerate(items):
            ranks = {m: rank_words(words[m][i]) for m in cfg.methods}
            if cfg.random_control:
                rng = np.random.default_rng(derived_seed(cfg.seed, RANDOM, item.id))
                ranks[RANDOM] = [int(v) for v in rng.permutation(item.n_words)]
            rankings.append(ranks)
        scorer = ProbabilityScorer(self.adapter, getattr(self.adapter, "batch_size", 32))
        rows = faithfulness_for(scorer, items, rankings, targets, cfg.removal)
        return [{k: json_safe(v) for k, v in row.items()} for row in rows]

    def _robustness(self, model: Any, batch: Batch, targets: Sequence[int]) -> dict[int, Any]:
        cfg = self.config
        chosen = [
            i for i, it in enumerate(batch.items) if it.id in cfg.robustness_ids and it.n_words
        ]
        if not chosen:
            return {}
        sub = subset(self.adapter, batch, chosen, cfg.baseline_id)
        sub_targets = [targets[i] for i in chosen]
        out: dict[int, Any] = {i: {} for i in chosen}
        for method in cfg.methods:
            with seeded(derived_seed(cfg.seed, "robustness", method, *(it.id for it in sub.items))):
                infid, sens = robustness_scores(
                    method,
                    model,
                    sub,
                    sub_targets,
                    cfg.shap_tokens,
                    cfg.settings,
                    n_steps=cfg.settings.n_steps,
                    infidelity_samples=cfg.infidelity_samples,
                    sensitivity_samples=cfg.sensitivity_samples,
                    radius=cfg.sensitivity_radius,
                )
            for row, i in enumerate(chosen):
                out[i][method] = {
                    "infidelity": finite(infid[row]),
                    "sensitivity_max": finite(sens[row]),
                }
        return out

    def random_model(self) -> Any:
        if self._random_model is None:
            self._random_model, _ = randomised_head_copy(
                self.adapter.model, derived_seed(self.config.seed, "randomised-head")
            )
        return self._random_model

    def _sanity(
        self, batch: Batch, targets: Sequence[int], words: dict[str, list[list[float]]]
    ) -> dict[int, Any]:
        cfg = self.config
        chosen = [i for i, it in enumerate(batch.items) if it.id in cfg.sanity_ids and it.n_words]
        if not chosen:
            return {}
        model = self.random_model()
        sub = subset(self.adapter, batch, chosen, cfg.baseline_id)
        sub_targets = [targets[i] for i in chosen]
        with frozen(model):
            outs = forward_outputs(model, sub, cfg.settings.output).detach().cpu().double().numpy()
            f_input = outs[np.arange(sub.size), sub_targets]
            rand_words, _ = self.word_attributions(model, sub, sub_targets, f_input, check=False)
        return {
            i: {m: randomisation_similarity(words[m][i], rand_words[m][row]) for m in cfg.methods}
            for row, i in enumerate(chosen)
        }
