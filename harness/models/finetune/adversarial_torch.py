"""The torch side of adversarial fine-tuning: a Trainer whose loss perturbs the input
embeddings (FGM, PGD, FreeLB) and the callback that refills the attack slots each epoch.

Imports torch and transformers; ``adversarial`` imports it only when such a fine-tune starts.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import TrainerCallback

from harness.config import AdversarialConfig

IGNORE_LABEL = -100


def _per_example_l2(x: torch.Tensor) -> torch.Tensor:
    """L2 norm of each example's perturbation over (tokens, dims), shape (batch, 1, 1)."""
    norms: torch.Tensor = x.flatten(1).norm(dim=1).clamp_min(1e-12)
    return norms.view(-1, 1, 1)


def project(delta: torch.Tensor, epsilon: float) -> torch.Tensor:
    """``delta`` scaled back onto the L2 ball of radius ``epsilon``, example by example."""
    norms = _per_example_l2(delta)
    return delta * torch.clamp(epsilon / norms, max=1.0)


def ascent_step(grad: torch.Tensor, mask: torch.Tensor, size: float) -> torch.Tensor:
    """A step of L2 length ``size`` per example along ``grad``, on real (unpadded) tokens."""
    g = grad * mask
    return size * g / _per_example_l2(g)


def _loss(model: Any, embeds: torch.Tensor, rest: dict[str, Any]) -> torch.Tensor:
    out: torch.Tensor = model(inputs_embeds=embeds, **rest).loss
    return out


def embedding_adversarial_loss(model: Any, inputs: dict[str, Any], adv: AdversarialConfig) -> Any:
    """The training loss of one batch under ``adv.method`` (fgm, pgd or freelb).

    Perturbations live on the word-embedding output (before position/type embeddings are
    added), are zero on padding and are bounded per example in L2 over all its tokens."""
    from transformers.modeling_utils import unwrap_model

    unwrapped: Any = unwrap_model(model)
    embedding = unwrapped.get_input_embeddings()
    rest = {k: v for k, v in inputs.items() if k != "input_ids"}
    embeds = embedding(inputs["input_ids"])
    if not embeds.requires_grad:  # frozen embeddings (head-only): differentiate w.r.t. them
        embeds = embeds.detach().requires_grad_(True)
    mask = inputs["attention_mask"].unsqueeze(-1).to(embeds.dtype)
    if adv.method == "freelb":
        return _freelb(model, embeds, mask, rest, adv)
    clean = _loss(model, embeds, rest)
    if adv.method == "fgm":
        (grad,) = torch.autograd.grad(clean, embeds, retain_graph=True)
        delta = ascent_step(grad, mask, adv.epsilon)
    else:  # pgd: inner ascent on a detached copy, so only the last forward trains the model
        base = embeds.detach()
        delta = torch.zeros_like(base)
        for _ in range(adv.steps):
            delta.requires_grad_(True)
            (grad,) = torch.autograd.grad(_loss(model, base + delta, rest), delta)
            delta = project(delta.detach() + ascent_step(grad, mask, adv.alpha), adv.epsilon)
    adversarial = _loss(model, embeds + delta.detach(), rest)
    return clean + adv.adv_weight * adversarial


def _freelb(
    model: Any,
    embeds: torch.Tensor,
    mask: torch.Tensor,
    rest: dict[str, Any],
    adv: AdversarialConfig,
) -> torch.Tensor:
    """FreeLB: the mean of the losses at K successive ascent points (the parameter gradient of
    that mean is FreeLB's gradient accumulated over its K backward passes)."""
    noise = torch.empty_like(embeds).uniform_(-1.0, 1.0) * mask
    delta = project(noise * (adv.alpha / _per_example_l2(noise)), adv.epsilon).detach()
    total = embeds.new_zeros(())
    for step in range(adv.steps):
        delta.requires_grad_(True)
        loss = _loss(model, embeds + delta, rest)
        total = total + loss / adv.steps
        if step + 1 < adv.steps:
            (grad,) = torch.autograd.grad(loss, delta, retain_graph=True)
            delta = project(delta.detach() + ascent_step(grad, mask, adv.alpha), adv.epsilon)
    return total


def adversarial_trainer(base: type, adv: AdversarialConfig) -> type:
    """``base`` (the seeded Trainer) with the adversarial loss in training, and batches whose
    every label is ignored (attack slots without an adversarial example) costing nothing."""

    class AdversarialTrainer(base):  # type: ignore[valid-type,misc]
        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            labels = inputs.get("labels")
            if labels is not None and bool((labels == IGNORE_LABEL).all()):
                outputs = model(**{k: v for k, v in inputs.items() if k != "labels"})
                loss = outputs.logits.sum() * 0.0  # a mean over no example would be NaN
                return (loss, outputs) if return_outputs else loss
            if adv.method == "attack" or not model.training or return_outputs:
                return super().compute_loss(
                    model, inputs, return_outputs=return_outputs,
                    num_items_in_batch=num_items_in_batch,
                )  # fmt: skip
            return embedding_adversarial_loss(model, inputs, adv)

    AdversarialTrainer.__name__ = f"Adversarial{base.__name__}"
    return AdversarialTrainer


def attack_callback(slots: Any) -> Any:
    """A callback that refills the attack slots when an epoch begins (``SlotFiller.fill``)."""

    class AttackSlots(TrainerCallback):  # type: ignore[misc]
        def on_epoch_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            model = kw.get("model")
            if model is None:
                return
            epoch = int(state.epoch + 1e-6) if state.epoch else 0
            was_training = model.training
            model.eval()
            try:
                with torch.no_grad():
                    slots.fill(epoch, model)
            finally:
                model.train(was_training)

    return AttackSlots()
