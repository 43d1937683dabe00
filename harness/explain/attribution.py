"""Captum attributions for a Hugging Face classifier, batched across examples.

Three methods, one per family:

- ``ig``: ``LayerIntegratedGradients`` on ``model.get_input_embeddings()`` — the **word**
  embedding table only, not the full embeddings module. The baseline replaces each word token by
  the pad (or mask) token and keeps [CLS]/[SEP]/padding, so position and segment embeddings are
  identical at both ends of the path and need no attribution; the path also stays linear in the
  space the table outputs (the full module ends in LayerNorm, which would bend it). The adaptive
  schedule (``panels.py``) integrates the same path piecewise with ``IntegratedGradients`` on
  those word embeddings fed as ``inputs_embeds`` (one panel [0, 1] gives the same numbers).
- ``gradient_shap``: ``GradientShap`` on the same word embeddings (fed as ``inputs_embeds``),
  baselines drawn from the uninformative-token sequences (pad, mask, unk where they exist).
- ``ablation``: ``FeatureAblation`` over whole words: every token of a word is replaced by the
  baseline token at once; the value is F(x) - F(x without the word).

Speed: examples are sorted by length and batched, each batch padded to its own longest item;
Captum's internal batching then runs several examples x integration steps per forward/backward
pass. Model parameters are frozen while attributing (no weight gradients are needed, which
saves about a third of each backward pass); attributions are unchanged by that.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.explain.words import NO_WORD, TokenizedText

FloatArray = npt.NDArray[np.float64]
METHODS = ("ig", "gradient_shap", "ablation")


@dataclass(frozen=True)
class Settings:
    """How attributions are computed (copied from the suite's parameters)."""

    output: str = "probability"  # 'probability' (softmax) or 'logit' of the target class
    n_steps: int = 50
    max_n_steps: int = 400
    tolerance: float = 0.05  # relative IG completeness gap above which n_steps is doubled
    # Adaptive IG: start at this many Gauss-Legendre nodes and double per example until the
    # completeness gap is within tolerance (None: start at n_steps, the fixed schedule).
    start_steps: int | None = None
    panel_nodes: int = 4  # adaptive IG: Gauss-Legendre nodes on each part of a split panel
    start_panels: int = 3  # adaptive IG: equal panels of start_steps nodes in the first round
    floor: float = 1e-3  # |F(x) - F(baseline)| below this counts as this (avoids 0/0)
    internal_batch_size: int | None = None  # sequences per forward/backward; None: from tokens
    tokens_per_pass: int = 4096
    shap_samples: int = 20
    shap_stdevs: float = 0.0

    def sequences_per_pass(self, n_examples: int, seq_len: int) -> int:
        wanted = self.internal_batch_size or max(1, self.tokens_per_pass // max(seq_len, 1))
        return max(n_examples, wanted)


def forward_length(model: Any, seq_len: int) -> int:
    """Tokens the model's forward runs for one text of ``seq_len`` tokens: ``seq_len``, or what
    the model says (a prompted / NLI model splices its pattern in, K rows per text), so
    ``tokens_per_pass`` bounds what one pass really computes."""
    tokens = getattr(model, "forward_tokens", None)
    return int(tokens(seq_len)) if callable(tokens) else seq_len


@dataclass(frozen=True)
class Batch:
    """A length-bucketed batch on the model's device, padded to its longest item."""

    items: tuple[TokenizedText, ...]
    input_ids: Any
    attention_mask: Any
    token_type_ids: Any | None
    keep: Any  # bool (B, L): tokens that belong to a word
    baseline_ids: Any  # word tokens replaced by the baseline token

    @property
    def size(self) -> int:
        return len(self.items)

    @property
    def seq_len(self) -> int:
        return int(self.input_ids.shape[1])

    def args(self) -> tuple[Any, ...]:
        return (self.attention_mask, self.token_type_ids)


def make_batch(adapter: Any, items: Sequence[TokenizedText], baseline_id: int) -> Batch:
    """Collate with the adapter (pad to longest) and build the baseline ids."""
    import torch

    enc = adapter.collate([list(it.ids) for it in items], [it.truncated for it in items])
    keep = torch.zeros_like(enc.input_ids, dtype=torch.bool)
    for b, item in enumerate(items):
        words = torch.tensor(item.word_of_token, dtype=torch.long)
        keep[b, : len(item.ids)] = words != NO_WORD
    device = adapter.device
    ids = enc.input_ids.to(device)
    keep = keep.to(device)
    types = enc.token_type_ids.to(device) if enc.token_type_ids is not None else None
    return Batch(
        items=tuple(items),
        input_ids=ids,
        attention_mask=enc.attention_mask.to(device),
        token_type_ids=types,
        keep=keep,
        baseline_ids=torch.where(keep, torch.full_like(ids, baseline_id), ids),
    )


def subset(adapter: Any, batch: Batch, indices: Sequence[int], baseline_id: int) -> Batch:
    return make_batch(adapter, [batch.items[i] for i in indices], baseline_id)


class TokenForward:
    """Captum forward over token ids: (ids, mask, types) -> (N, classes) probabilities/logits."""

    def __init__(self, model: Any, output: str) -> None:
        self.model = model
        self.output = output

    def __call__(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None) -> Any:
        from harness.models.cls_forward import classifier_logits

        logits = classifier_logits(
            self.model,
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
        ).float()
        return logits.softmax(-1) if self.output == "probability" else logits


class EmbedsForward:
    """Captum forward over word embeddings; non-word positions are pinned to ``orig``.

    Pinning means a method (or a perturbation) can only move word tokens: [CLS], [SEP] and
    padding always enter the model as they are.
    """

    def __init__(self, model: Any, output: str) -> None:
        self.model = model
        self.output = output

    def __call__(
        self, embeds: Any, attention_mask: Any, keep: Any, orig: Any, token_type_ids: Any = None
    ) -> Any:
        import torch

        mixed = torch.where(keep.unsqueeze(-1), embeds, orig)
        from harness.models.cls_forward import classifier_logits

        logits = classifier_logits(
            self.model,
            inputs_embeds=mixed,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
        ).float()
        return logits.softmax(-1) if self.output == "probability" else logits


@contextlib.contextmanager
def frozen(model: Any) -> Iterator[None]:
    """Switch off parameter gradients for the duration (restored after)."""
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed numpy's and torch's global generators (Captum draws from both; CUDA's too when
    present, for perturbations drawn on the device), then restore them."""
    import torch

    state = np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        try:
            yield
        finally:
            np.random.set_state(state)


def forward_outputs(model: Any, batch: Batch, output: str, *, ids: Any = None) -> Any:
    """(B, classes) outputs for ``batch`` (or the same batch with other ``ids``), no grad."""
    import torch

    with torch.no_grad():
        ids = batch.input_ids if ids is None else ids
        return TokenForward(model, output)(ids, batch.attention_mask, batch.token_type_ids)


def gather_targets(outputs: Any, targets: Sequence[int]) -> FloatArray:
    idx = np.arange(len(targets))
    return np.asarray(outputs.detach().cpu().double().numpy()[idx, list(targets)], dtype=np.float64)


@dataclass(frozen=True)
class IGResult:
    tokens: FloatArray  # (B, L) token attributions
    n_steps: list[int]  # the final steps per example (the attributions kept were computed with them)
    delta: FloatArray  # sum of attributions - (F(x) - F(baseline))
    relative_delta: FloatArray  # |delta| / max(|F(x) - F(baseline)|, floor)
    f_input: FloatArray
    f_baseline: FloatArray
    evaluations: list[int] = field(default_factory=list)  # gradient steps spent, all rounds
    panels: list[int] = field(default_factory=list)  # adaptive: final panels per example
    forwards: list[int] = field(default_factory=list)  # adaptive: forward-only midpoints spent


def lig_attribute(model: Any, batch: Batch, targets: Sequence[int], n_steps: int, s: Settings) -> Any:
    """One Captum LayerIntegratedGradients call over the whole batch; (B, L) token scores."""
    from captum.attr import LayerIntegratedGradients

    lig = LayerIntegratedGradients(TokenForward(model, s.output), model.get_input_embeddings())
    per_pass = s.sequences_per_pass(batch.size, forward_length(model, batch.seq_len))
    # Even out the passes: 50 steps at 16 per pass would end with a pass of 2.
    steps_cap = max(1, per_pass // batch.size)
    n_passes = math.ceil(n_steps / steps_cap)
    per_pass = batch.size * math.ceil(n_steps / n_passes)
    attr = lig.attribute(
        batch.input_ids,
        baselines=batch.baseline_ids,
        target=list(targets),
        additional_forward_args=batch.args(),
        n_steps=n_steps,
        internal_batch_size=per_pass,
    )
    return attr.sum(-1).detach()


def integrated_gradients(
    adapter: Any,
    model: Any,
    batch: Batch,
    targets: Sequence[int],
    f_input: FloatArray,
    baseline_id: int,
    s: Settings,
) -> IGResult:
    """LIG with the completeness check: examples whose relative gap exceeds ``s.tolerance`` are
    redone with twice the steps, up to ``s.max_n_steps``; the last value is kept either way.

    With ``s.start_steps`` (adaptive) the path is integrated as composite Gauss-Legendre on
    panels bisected where their exactly known completeness error is (``panels.composite_ig``):
    a doubling ladder of global node counts pays for every rung, as GL nodes do not nest."""
    f_base = gather_targets(forward_outputs(model, batch, s.output, ids=batch.baseline_ids), targets)
    if s.start_steps is not None:
        from harness.explain.panels import composite_ig

        return composite_ig(model, batch, targets, np.asarray(f_input), f_base, s)
    tokens = np.zeros((batch.size, batch.seq_len), dtype=np.float64)
    steps = min(s.start_steps or s.n_steps, s.max_n_steps)
    steps_used = [steps] * batch.size
    spent = [0] * batch.size
    delta = np.zeros(batch.size)
    pending = list(range(batch.size))
    while pending:
        sub = batch if len(pending) == batch.size else subset(adapter, batch, pending, baseline_id)
        scores = lig_attribute(model, sub, [targets[i] for i in pending], steps, s)
        scores = scores.cpu().double().numpy()
        for row, i in enumerate(pending):
            tokens[i] = 0.0
            tokens[i, : sub.seq_len] = scores[row]
            steps_used[i] = steps
            spent[i] += steps
            delta[i] = tokens[i].sum() - (f_input[i] - f_base[i])
        rel = np.abs(delta) / np.maximum(np.abs(f_input - f_base), s.floor)
        if steps >= s.max_n_steps:
            break
        pending = [i for i in pending if rel[i] > s.tolerance]
        steps = min(steps * 2, s.max_n_steps)
    rel = np.abs(delta) / np.maximum(np.abs(f_input - f_base), s.floor)
    return IGResult(tokens, steps_used, delta, rel, np.asarray(f_input), f_base, spent)


def shap_baseline_tokens(tokenizer: Any) -> list[int]:
    """Distinct uninformative tokens for GradientShap's baseline distribution."""
    out: list[int] = []
    for tok_id in (tokenizer.pad_token_id, tokenizer.mask_token_id, tokenizer.unk_token_id):
        if tok_id is not None and int(tok_id) not in out:
            out.append(int(tok_id))
    return out


def embeds_inputs(model: Any, batch: Batch) -> tuple[Any, tuple[Any, ...]]:
    """Word embeddings of the batch and the extra forward args of ``EmbedsForward``."""
    import torch

    with torch.no_grad():
        embeds = model.get_input_embeddings()(batch.input_ids).detach()
    return embeds, (batch.attention_mask, batch.keep, embeds, batch.token_type_ids)


def gradient_shap(
    model: Any, batch: Batch, targets: Sequence[int], token_ids: Sequence[int], s: Settings
) -> tuple[FloatArray, FloatArray]:
    """GradientShap token scores (B, L) and the per-example baseline outputs E_b[F(b)].

    Draws come from numpy's and torch's global generators: callers wrap this in ``seeded``.
    """
    import torch
    from captum.attr import GradientShap

    fwd = EmbedsForward(model, s.output)
    embeds, args = embeds_inputs(model, batch)
    table = model.get_input_embeddings()
    with torch.no_grad():
        dist = torch.stack([table(torch.full_like(batch.input_ids[0], t)) for t in token_ids])
        f_base = np.mean(
            [gather_targets(fwd(dist[k].expand_as(embeds), *args), targets) for k in range(len(token_ids))],
            axis=0,
        )
    per_text = forward_length(model, batch.seq_len)
    per_call = max(1, s.sequences_per_pass(1, per_text) // s.shap_samples)
    out = np.zeros((batch.size, batch.seq_len), dtype=np.float64)
    gs = GradientShap(fwd)
    for start in range(0, batch.size, per_call):
        sl = slice(start, start + per_call)
        attr = gs.attribute(
            embeds[sl],
            baselines=dist,
            target=list(targets[sl]),
            additional_forward_args=tuple(a[sl] if a is not None else None for a in args),
            n_samples=s.shap_samples,
            stdevs=s.shap_stdevs,
        )
        out[sl] = attr.sum(-1).detach().cpu().double().numpy()
    return out, f_base


def feature_mask(batch: Batch) -> Any:
    """Word index per token; special tokens and padding share one extra, never-changed group."""
    import torch

    n_words = max(it.n_words for it in batch.items)
    mask = torch.full_like(batch.input_ids, n_words)
    for b, item in enumerate(batch.items):
        words = torch.tensor(item.word_of_token, dtype=torch.long, device=mask.device)
        mask[b, : len(item.ids)] = torch.where(words == NO_WORD, n_words, words)
    return mask


def word_ablation(model: Any, batch: Batch, targets: Sequence[int], s: Settings) -> FloatArray:
    """FeatureAblation over words: (B, L), each token carries its word's value."""
    from captum.attr import FeatureAblation

    fa = FeatureAblation(TokenForward(model, s.output))
    attr = fa.attribute(
        batch.input_ids,
        baselines=batch.baseline_ids,
        target=list(targets),
        additional_forward_args=batch.args(),
        feature_mask=feature_mask(batch),
        perturbations_per_eval=max(
            1, s.sequences_per_pass(batch.size, forward_length(model, batch.seq_len)) // batch.size
        ),
    )
    return np.asarray(attr.detach().cpu().double().numpy(), dtype=np.float64)


def embedding_explainer(
    method: str, model: Any, token_ids: Sequence[int], s: Settings, n_steps: int
) -> Any:
    """An explanation function in embedding space for Captum's metrics (which perturb continuous
    inputs): ``f(embeds, additional_forward_args=(mask, keep, orig, types, base, groups),
    target=...) -> (N, L, H)``. ``base`` holds the baseline embeddings, ``groups`` the word
    index per token (as in ``feature_mask``)."""
    import torch
    from captum.attr import FeatureAblation, GradientShap, IntegratedGradients

    fwd = EmbedsForward(model, s.output)
    table = model.get_input_embeddings()

    def explain(inputs: Any, additional_forward_args: tuple[Any, ...], target: Any) -> Any:
        embeds = inputs[0] if isinstance(inputs, tuple) else inputs
        mask, keep, orig, types, base, groups = additional_forward_args
        args = (mask, keep, orig, types)
        if method == "ig":
            per_pass = s.sequences_per_pass(embeds.shape[0], forward_length(model, embeds.shape[1]))
            steps_cap = max(1, per_pass // embeds.shape[0])
            return IntegratedGradients(fwd).attribute(
                embeds,
                baselines=base,
                target=target,
                additional_forward_args=args,
                n_steps=n_steps,
                internal_batch_size=embeds.shape[0] * min(steps_cap, n_steps),
            )
        if method == "gradient_shap":
            with torch.no_grad():
                dist = torch.stack(
                    [table(torch.full_like(groups[0], t)) for t in token_ids]
                )
            return GradientShap(fwd).attribute(
                embeds,
                baselines=dist,
                target=target,
                additional_forward_args=args,
                n_samples=s.shap_samples,
                stdevs=s.shap_stdevs,
            )
        return FeatureAblation(fwd).attribute(
            embeds,
            baselines=base,
            target=target,
            additional_forward_args=args,
            feature_mask=groups.unsqueeze(-1),
        )

    return explain
