"""The adapter's fast paths, on the real tiny BERT: the [CLS]-only last layer agrees with the
model's own forward (logits and gradients), is refused where it is not known to agree, and
side-by-side batches give the same probabilities as one batch at a time."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.models import cls_forward
from harness.models.base import one_batch_at_a_time
from harness.models.hf import HFClassifier
from tests.conftest import build_tiny_bert
from tests.fixtures_text import make_rows

# Varied lengths, so that batches are padded.
TEXTS = [" ".join((r["text"] + " " + r["text"]).split()[: 2 + i % 13]) for i, r in enumerate(make_rows(70))]


def load(folder: Path, batch_size: int = 8) -> HFClassifier:
    return HFClassifier.load(folder, name="tiny", source="path", device="cpu", batch_size=batch_size)


def padded_batch(adapter: HFClassifier, n: int = 9) -> Any:
    return adapter.encode(TEXTS[:n])


def test_cls_only_logits_equal_the_full_forward(tiny_model_dir: Path) -> None:
    import torch

    adapter = load(tiny_model_dir)
    enc = padded_batch(adapter)
    assert len(set(enc.lengths)) > 1, "the probe batch must include padding"
    with torch.inference_mode():
        full = adapter.model(
            input_ids=enc.input_ids, attention_mask=enc.attention_mask, token_type_ids=enc.token_type_ids
        ).logits
        fast = cls_forward.classifier_logits(
            adapter.model,
            input_ids=enc.input_ids,
            attention_mask=enc.attention_mask,
            token_type_ids=enc.token_type_ids,
        )
    assert cls_forward.shortcut_enabled(adapter.model)
    assert adapter.info().forward == "cls-only-last-layer"
    gap = adapter.info().forward_probe_max_abs_diff
    assert gap is not None and gap < 1e-5
    assert float((full - fast).abs().max()) < 1e-5
    # an unpadded batch takes the unmasked path
    same = adapter.collate([enc.input_ids[0, : enc.lengths[0]].tolist()] * 3)
    with torch.inference_mode():
        full = adapter.model(input_ids=same.input_ids, attention_mask=same.attention_mask).logits
        fast = cls_forward.classifier_logits(
            adapter.model, input_ids=same.input_ids, attention_mask=same.attention_mask
        )
    assert float((full - fast).abs().max()) < 1e-5


def test_gradients_through_inputs_embeds_equal_the_full_forward(tiny_model_dir: Path) -> None:
    adapter = load(tiny_model_dir)
    enc = padded_batch(adapter, 5)
    model = adapter.model
    grads = []
    for use_shortcut in (False, True):
        embeds = model.bert.embeddings.word_embeddings(enc.input_ids).detach().requires_grad_(True)
        if use_shortcut:
            logits = cls_forward.classifier_logits(
                model, inputs_embeds=embeds, attention_mask=enc.attention_mask,
                token_type_ids=enc.token_type_ids,
            )
        else:
            logits = model(
                inputs_embeds=embeds, attention_mask=enc.attention_mask,
                token_type_ids=enc.token_type_ids,
            ).logits
        logits[:, 1].sum().backward()
        assert embeds.grad is not None
        grads.append(embeds.grad.clone())
    assert float((grads[0] - grads[1]).abs().max()) < 1e-5
    assert float(grads[1].abs().max()) > 0


def test_a_model_outside_the_shortcut_uses_its_own_forward(tmp_path: Path) -> None:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32, position_embedding_type="relative_key",
    )
    model = BertForSequenceClassification(config).eval()
    assert not cls_forward.shortcut_enabled(model)
    ids = torch.tensor([[2, 5, 6, 3], [2, 7, 3, 0]])
    mask = (ids != 0).long()
    with torch.inference_mode():
        expected = model(input_ids=ids, attention_mask=mask).logits
        got = cls_forward.classifier_logits(model, input_ids=ids, attention_mask=mask)
    assert torch.equal(expected, got)
    model.train()
    assert not cls_forward.shortcut_enabled(model), "dropout: training mode never takes it"


def test_a_hook_on_the_model_forward_gets_the_model_forward(tiny_model_dir: Path) -> None:
    adapter = load(tiny_model_dir)
    calls: list[int] = []
    hook = adapter.model.register_forward_hook(lambda *_: calls.append(1))
    try:
        adapter.predict_proba(TEXTS[:3])
    finally:
        hook.remove()
    assert calls, "the model's forward hook fired"
    assert cls_forward.shortcut_enabled(adapter.model)


def test_a_shortcut_that_disagrees_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    folder = build_tiny_bert(tmp_path / "m", seed=3)
    real = cls_forward._cls_only_logits

    def off_by_one(model: Any, **kw: Any) -> Any:
        return real(model, **kw) + 1.0

    monkeypatch.setattr(cls_forward, "_cls_only_logits", off_by_one)
    with caplog.at_level(logging.WARNING, logger="harness.models.cls_forward"):
        adapter = load(folder)  # the probe runs at load
    assert not cls_forward.shortcut_enabled(adapter.model)
    assert "disagrees" in caplog.text
    assert adapter.info().forward == "full"
    assert adapter.info().forward_probe_max_abs_diff == pytest.approx(1.0, abs=1e-4)
    probs = adapter.predict_proba(TEXTS[:4])
    monkeypatch.setenv("HARNESS_FULL_FORWARD", "1")
    np.testing.assert_array_equal(probs, load(folder).predict_proba(TEXTS[:4]))


def test_side_by_side_batches_equal_one_batch_at_a_time(tiny_model_dir: Path) -> None:
    import torch

    adapter = load(tiny_model_dir, batch_size=8)
    seen: list[tuple[str, int]] = []
    assert cls_forward.shortcut_enabled(adapter.model)  # its probe runs here, not under the hook
    hook = adapter.model.bert.embeddings.register_forward_pre_hook(
        lambda *_: seen.append((threading.current_thread().name, torch.get_num_threads()))
    )
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        parallel = adapter.predict_proba(TEXTS)
        again = adapter.predict_proba(TEXTS)
        side_by_side = list(seen)
        seen.clear()
        with one_batch_at_a_time():
            serial = adapter.predict_proba(TEXTS)
        assert torch.get_num_threads() == 2
    finally:
        hook.remove()
        torch.set_num_threads(before)
    assert parallel.tobytes() == again.tobytes(), "side by side is deterministic"
    np.testing.assert_allclose(parallel, serial, atol=1e-6)
    main = threading.current_thread().name
    assert {n for n, _ in side_by_side} != {main} and {t for _, t in side_by_side} == {1}
    assert {n for n, _ in seen} == {main} and {t for _, t in seen} == {2}


def test_latency_flops_estimate_follows_the_forward_path(tiny_model_dir: Path) -> None:
    """The FLOPs estimate behind the latency suite's GFLOP/s drops by what the [CLS]-only last
    layer skips, as torch's own FLOP counter sees it."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from harness.latency.cost import FlopsModel

    adapter = load(tiny_model_dir)
    tokens = 24
    batch = adapter.collate([[2] + [10] * (tokens - 2) + [3]] * 4)

    def counted() -> float:
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            adapter.logits(batch)
        return counter.get_total_flops() / 4

    short_estimate = FlopsModel.of(adapter.model)
    short_counted = counted()
    hook = adapter.model.register_forward_hook(lambda *_: None)  # forces the full forward
    try:
        full_estimate = FlopsModel.of(adapter.model)
        full_counted = counted()
    finally:
        hook.remove()
    assert full_estimate.cls_only_last_layer_params is None
    assert short_estimate.cls_only_last_layer_params is not None
    saved_estimate = 1 - short_estimate.per_example(tokens) / full_estimate.per_example(tokens)
    saved_counted = 1 - short_counted / full_counted
    assert saved_counted > 0.1
    assert saved_estimate == pytest.approx(saved_counted, abs=0.03)
