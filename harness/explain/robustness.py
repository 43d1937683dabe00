"""Captum's ``infidelity`` and ``sensitivity_max`` for word attributions.

Both run in word-embedding space through ``EmbedsForward`` (special tokens and padding pinned).

- infidelity (Yeh et al. 2019): the perturbation removes a random subset of words, each word
  independently with probability 1/2, by moving its embeddings to the baseline:
  x' = x - u*(x - b), u in {0, 1} per word. The perturbation handed to Captum is u itself, so
  attribution . perturbation = sum of the removed words' attributions, to be compared with
  F(x) - F(x'). ``normalize=True`` (Captum) rescales attributions optimally first, so the
  figure measures shape, not scale. For word ablation, whose value is one number per word,
  the number is spread evenly over the word's embedding entries.
- sensitivity_max: the largest relative change (Frobenius norm) of the **word** attributions
  under uniform noise of radius r on the embeddings (Captum's default perturbation).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from harness.explain.attribution import (
    Batch,
    Settings,
    embedding_explainer,
    embeds_inputs,
    feature_mask,
)
from harness.explain.words import word_matrix


def robustness_scores(
    method: str,
    model: Any,
    batch: Batch,
    targets: Sequence[int],
    token_ids: Sequence[int],
    s: Settings,
    *,
    n_steps: int,
    infidelity_samples: int,
    sensitivity_samples: int,
    radius: float,
) -> tuple[list[float], list[float]]:
    """Per-example infidelity and sensitivity_max of ``method`` on ``batch``."""
    import torch

    explain = embedding_explainer(method, model, token_ids, s, n_steps)
    embeds, (mask, keep, orig, types) = embeds_inputs(model, batch)
    with torch.no_grad():
        base = model.get_input_embeddings()(batch.baseline_ids).detach()
    groups = feature_mask(batch)
    args = (mask, keep, orig, types, base, groups)
    target = list(targets)
    attr = explain(embeds, additional_forward_args=args, target=target).detach()
    if method == "ablation":
        attr = attr / _elements_per_word(groups, attr.shape[-1]).unsqueeze(-1)
    infid = _infidelity(model, s, batch, embeds, attr, args, target, infidelity_samples)
    sens = _sensitivity(method, explain, batch, embeds, args, target, sensitivity_samples, radius)
    return _floats(infid), _floats(sens)


def _infidelity(
    model: Any,
    s: Settings,
    batch: Batch,
    embeds: Any,
    attr: Any,
    args: tuple[Any, ...],
    target: list[int],
    n_samples: int,
) -> Any:
    """Captum's infidelity when a random half of the words is removed (module docstring).

    ``args`` are the explainer's forward arguments: (mask, keep, orig, types, baseline
    embeddings, word groups); the model's forward takes the first four."""
    import torch
    from captum.metrics import infidelity

    from harness.explain.attribution import EmbedsForward

    *forward_args, base, groups = args
    n_words = int(groups.max().item())

    def remove_words(inputs: Any, baselines: Any) -> tuple[Any, Any]:
        reps = inputs.shape[0] // batch.size
        g = groups.repeat_interleave(reps, dim=0)
        draw = torch.bernoulli(torch.full((inputs.shape[0], n_words + 1), 0.5)).to(inputs.device)
        draw[:, n_words] = 0.0  # the special-token group never moves
        u = torch.gather(draw, 1, g).unsqueeze(-1).expand_as(inputs)
        return u, inputs - u * (inputs - baselines)

    return infidelity(
        EmbedsForward(model, s.output),
        remove_words,
        embeds,
        attr,
        baselines=base,
        additional_forward_args=tuple(forward_args),
        target=target,
        n_perturb_samples=n_samples,
        normalize=True,
    )


def _sensitivity(
    method: str,
    explain: Any,
    batch: Batch,
    embeds: Any,
    args: tuple[Any, ...],
    target: list[int],
    n_samples: int,
    radius: float,
) -> Any:
    """Captum's sensitivity_max of the word attributions under noise of ``radius``."""
    import torch
    from captum.metrics import sensitivity_max

    how = "mean" if method == "ablation" else "sum"
    words_of = word_matrix(batch.items, batch.seq_len, how=how).to(embeds.device)

    def explain_words(inputs: Any, additional_forward_args: tuple[Any, ...], target: Any) -> Any:
        *rest, matrix = additional_forward_args
        full = explain(inputs, additional_forward_args=tuple(rest), target=target)
        tokens = full[..., 0] if method == "ablation" else full.sum(-1)
        # A tuple: sensitivity_max iterates over the unperturbed explanation's tensors.
        return (torch.bmm(matrix, tokens.unsqueeze(-1)).squeeze(-1),)

    return sensitivity_max(
        explain_words,
        embeds,
        perturb_radius=radius,
        n_perturb_samples=n_samples,
        additional_forward_args=(*args, words_of),
        target=target,
    )


def _elements_per_word(groups: Any, hidden: int) -> Any:
    import torch

    counts = torch.zeros(groups.shape[0], int(groups.max().item()) + 1, device=groups.device)
    counts.scatter_add_(1, groups, torch.ones_like(groups, dtype=counts.dtype))
    return torch.gather(counts, 1, groups) * hidden


def _floats(t: Any) -> list[float]:
    return [float(v) for v in np.asarray(t.detach().cpu().double().numpy()).reshape(-1)]
