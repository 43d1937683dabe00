"""Classifier logits with the last encoder layer computed for the [CLS] position only.

A BERT-style sequence classifier reads one position of the last layer: the pooler takes the
[CLS] hidden state. Every other position of that layer (its query, attention output and
feed-forward, about five sixths of the layer's work) is computed and thrown away. Here the last
layer runs as attention from the [CLS] row over all positions' keys and values, using the
layer's own modules (the cross-attention path of ``BertAttention``), then the pooler and the
classifier: the same logits to float rounding (max abs difference ~1e-7 on MiniLM) for one layer
in six less work, which every suite that calls the model gains.

Used only where it has been shown to agree: on first use for a model, a padded probe batch is run
both ways and compared; a model that is not a plain BERT encoder classifier, or that disagrees,
gets the model's own forward, as does a model with hooks on its top-level forward (they would
not fire otherwise). ``HARNESS_FULL_FORWARD=1`` switches the shortcut off everywhere.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

log = logging.getLogger(__name__)

PROBE_TOLERANCE = 1e-4  # logits; float32 rounding differences are ~1e-6
VERDICT_ATTR = "_harness_cls_only_agrees"  # kept on the model object, so it dies with it
GAP_ATTR = "_harness_cls_only_probe_gap"
FULL = "full"
CLS_ONLY = "cls-only-last-layer"
_lock = threading.Lock()


def classifier_logits(
    model: Any,
    *,
    attention_mask: Any,
    input_ids: Any = None,
    inputs_embeds: Any = None,
    token_type_ids: Any = None,
) -> Any:
    """``model(...).logits``, through the [CLS]-only last layer where that is known to agree."""
    if shortcut_enabled(model):
        return _cls_only_logits(
            model,
            input_ids=input_ids,
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
        )
    # Only the inputs given: not every architecture takes token_type_ids (DistilBERT, RoBERTa-style
    # tokenisers without them).
    given = {
        "input_ids": input_ids,
        "inputs_embeds": inputs_embeds,
        "attention_mask": attention_mask,
        "token_type_ids": token_type_ids,
    }
    return model(**{k: v for k, v in given.items() if v is not None}).logits


def shortcut_enabled(model: Any) -> bool:
    if os.environ.get("HARNESS_FULL_FORWARD") == "1" or model.training or not _eligible(model):
        return False
    if _hooked(model):  # whoever hooks the model's own forward gets that forward
        return False
    verdict = getattr(model, VERDICT_ATTR, None)
    if verdict is None:
        with _lock:
            verdict = getattr(model, VERDICT_ATTR, None)
            if verdict is None:
                verdict = _probe_agrees(model)
                setattr(model, VERDICT_ATTR, verdict)
    return bool(verdict)


def forward_path(model: Any) -> tuple[str, float | None]:
    """For the record: which forward computes the logits, and the probe's largest difference."""
    enabled = shortcut_enabled(model)
    gap = getattr(model, GAP_ATTR, None)
    return (CLS_ONLY if enabled else FULL), (None if gap is None else float(gap))


def _eligible(model: Any) -> bool:
    """A BERT encoder with absolute positions, a pooler and a plain classifier head."""
    config = getattr(model, "config", None)
    bert = getattr(model, "bert", None)
    if config is None or bert is None or type(model).__name__ != "BertForSequenceClassification":
        return False
    if getattr(bert, "pooler", None) is None or not hasattr(model, "classifier"):
        return False
    if getattr(config, "is_decoder", False) or getattr(config, "add_cross_attention", False):
        return False
    if getattr(config, "position_embedding_type", "absolute") != "absolute":
        return False
    return getattr(config, "_attn_implementation", None) in ("sdpa", "eager")


def _hooked(model: Any) -> bool:
    return bool(
        getattr(model, "_forward_hooks", None)
        or getattr(model, "_forward_pre_hooks", None)
        or getattr(model, "_forward_hooks_with_kwargs", None)
    )


def _probe_agrees(model: Any) -> bool:
    import torch

    device = next(model.parameters()).device
    vocab = int(model.config.vocab_size)
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1, vocab, (3, 12), generator=generator).to(device)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    mask[2, 3:] = 0
    types = torch.zeros_like(ids)
    try:
        with torch.inference_mode():
            full = model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits.float()
            short = _cls_only_logits(
                model, input_ids=ids, inputs_embeds=None, attention_mask=mask, token_type_ids=types
            ).float()
    except Exception as exc:  # an architecture variant the shortcut does not cover
        log.info("cls-only forward unavailable for %s: %s", type(model).__name__, exc)
        return False
    if not (bool(torch.isfinite(full).all()) and bool(torch.isfinite(short).all())):
        # A broken model (NaN weights) cannot show agreement; it gets its own forward, and the
        # record a null instead of a NaN.
        log.warning("cls-only forward not used: the probe batch gives non-finite logits")
        return False
    gap = float((full - short).abs().max())
    setattr(model, GAP_ATTR, gap)
    if gap > PROBE_TOLERANCE:
        log.warning("cls-only forward disagrees with the model's own by %.3g; not used", gap)
        return False
    return True


def _cls_only_logits(
    model: Any, *, input_ids: Any, inputs_embeds: Any, attention_mask: Any, token_type_ids: Any
) -> Any:
    import torch

    bert = model.bert
    hidden = bert.embeddings(
        input_ids=input_ids, token_type_ids=token_type_ids, inputs_embeds=inputs_embeds
    )
    # An additive (batch, 1, 1, keys) mask broadcasts over heads and queries; none when nothing
    # is padded, which lets SDPA take its unmasked kernel (as the model's own forward does).
    mask = None
    if attention_mask is not None and not bool(attention_mask.all()):
        keep = attention_mask[:, None, None, :].to(hidden.dtype)
        mask = (1.0 - keep) * torch.finfo(hidden.dtype).min
    layers = bert.encoder.layer
    for layer in layers[:-1]:
        hidden = layer(hidden, attention_mask=mask)[0]
    last = layers[-1]
    attended = last.attention(hidden[:, :1], attention_mask=mask, encoder_hidden_states=hidden)[0]
    top = last.feed_forward_chunk(attended)
    return model.classifier(model.dropout(bert.pooler(top)))
