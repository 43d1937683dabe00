"""Sanity checks: model randomisation (Adebayo et al. 2018) and agreement between methods.

Model randomisation: a copy of the model gets a freshly initialised classification head (the
parameters outside ``model.base_model``; weights ~ N(0, initializer_range), biases 0, a
LayerNorm's scale 1, drawn from a seeded generator). Explanations that barely change when the
head is random do not explain the model. We report the Spearman rank correlation between the original and the randomised
model's word attributions (signed, and of absolute values as Adebayo et al. also do): lower is
better.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any


def randomised_head_copy(model: Any, seed: int) -> tuple[Any, list[str]]:
    """A deep copy of ``model`` whose classifier head is re-initialised; and the names changed."""
    import torch

    clone = copy.deepcopy(model)
    base = getattr(clone, "base_model", None)
    base_ids = {id(p) for p in base.parameters()} if base is not None and base is not clone else set()
    head = [(n, p) for n, p in clone.named_parameters() if id(p) not in base_ids]
    if not head or len(head) == len(list(clone.parameters())):
        # No separable base model: fall back to the last linear layer.
        last = [m for m in clone.modules() if isinstance(m, torch.nn.Linear)][-1]
        head = [(n, p) for n, p in clone.named_parameters() if any(p is q for q in last.parameters())]
    std = float(getattr(getattr(clone, "config", None), "initializer_range", 0.02) or 0.02)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    # A norm's scale is re-initialised to 1, as transformers initialises it: zeroed, it would
    # flatten a head with a LayerNorm (a masked LM's transform) to constant logits.
    norm_scales = {
        id(m.weight)
        for m in clone.modules()
        if isinstance(m, torch.nn.LayerNorm) and m.weight is not None
    }
    with torch.no_grad():
        for _, param in head:
            if param.dim() >= 2:
                fresh = torch.randn(param.shape, generator=gen) * std
            elif id(param) in norm_scales:
                fresh = torch.ones(param.shape)
            else:
                fresh = torch.zeros(param.shape)
            param.copy_(fresh.to(param.device, param.dtype))
    clone.eval()
    return clone, [n for n, _ in head]


def rank_correlations(a: Sequence[float], b: Sequence[float]) -> tuple[float | None, float | None]:
    """Spearman and Kendall (tau-b) rank correlations; None when undefined (<2 words, constant)."""
    if len(a) != len(b) or len(a) < 2:
        return None, None
    if len(set(a)) < 2 or len(set(b)) < 2:
        return None, None
    from scipy.stats import kendalltau, spearmanr

    rho = float(spearmanr(a, b).statistic)
    tau = float(kendalltau(a, b).statistic)
    return (rho if math.isfinite(rho) else None), (tau if math.isfinite(tau) else None)


def randomisation_similarity(
    original: Sequence[float], randomised: Sequence[float]
) -> dict[str, float | None]:
    rho, _ = rank_correlations(original, randomised)
    rho_abs, _ = rank_correlations([abs(v) for v in original], [abs(v) for v in randomised])
    return {"spearman": rho, "spearman_abs": rho_abs}
