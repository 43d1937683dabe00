"""Adaptive IG (Gauss-Legendre nodes doubling per example until completeness holds) on the tiny
BERT, against Captum's LayerIntegratedGradients at many steps as the reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from captum.attr import LayerIntegratedGradients

from harness.explain.attribution import (
    Settings,
    TokenForward,
    forward_outputs,
    frozen,
    integrated_gradients,
    make_batch,
)
from harness.explain.words import tokenize_words
from harness.models.hf import HFClassifier
from harness.suites.explain import ExplainParams

TEXTS = ["a good film", "bad and dull and long", "great acting, poor plot, fine music", "fine", "not bad at all really"]


@pytest.fixture(scope="module")
def model(tiny_model_dir: Path) -> HFClassifier:
    return HFClassifier.load(tiny_model_dir, name="tiny", source="path", max_length=32)


def _run(model: HFClassifier, s: Settings) -> tuple[object, list[int], object]:
    items, _ = tokenize_words(model.tokenizer, [f"e{i}" for i in range(len(TEXTS))], TEXTS, 32)
    pad = int(model.tokenizer.pad_token_id)
    batch = make_batch(model, items, pad)
    with frozen(model.model):
        probs = forward_outputs(model.model, batch, "probability")
        targets = [int(t) for t in probs.argmax(-1)]
        f_x = probs[torch.arange(batch.size), targets].double().numpy()
        res = integrated_gradients(model, model.model, batch, targets, f_x, pad, s)
    return res, targets, batch


def test_adaptive_meets_tolerance_with_few_steps_and_matches_captum(model: HFClassifier) -> None:
    s = Settings(n_steps=50, max_n_steps=400, start_steps=4, tolerance=0.01)
    res, targets, batch = _run(model, s)
    assert all(r <= 0.01 for r in res.relative_delta)
    assert all(4 <= n <= 400 for n in res.n_steps) and min(res.n_steps) < 50
    # Every doubling round is paid for: 4 + 8 + ... + final.
    for final, spent in zip(res.n_steps, res.evaluations, strict=True):
        assert spent == sum(4 * 2**k for k in range(int(np.log2(final // 4)) + 1))
    lig = LayerIntegratedGradients(TokenForward(model.model, "probability"), model.model.get_input_embeddings())
    ref = lig.attribute(batch.input_ids, baselines=batch.baseline_ids, target=targets,
                        additional_forward_args=batch.args(), n_steps=400).sum(-1).detach().double().numpy()
    scale = np.abs(ref).max()
    assert np.abs(res.tokens - ref).max() <= 0.05 * scale


def test_fixed_schedule_starts_at_n_steps(model: HFClassifier) -> None:
    res, _, _ = _run(model, Settings(n_steps=16, max_n_steps=16))
    assert res.n_steps == [16] * len(TEXTS) and res.evaluations == [16] * len(TEXTS)


def test_params_default_to_the_fixed_schedule() -> None:
    """Fixed stays the default: adaptive measured slower on the default model (see ExplainParams)."""
    p = ExplainParams()
    assert p.ig_schedule == "fixed" and p.adaptive_start_steps == 4 and p.gradient_precision == "fp32"
    with pytest.raises(ValueError):
        ExplainParams(adaptive_start_steps=1)


def test_explain_on_int8_model_uses_fp32_gradients(tiny_model_dir: Path, tmp_path: Path) -> None:
    from tests.test_explain import SMALL, run_suite

    int8 = HFClassifier.load(tiny_model_dir, name="tiny", source="path", max_length=32, precision="int8")
    fp32 = HFClassifier.load(tiny_model_dir, name="tiny", source="path", max_length=32)
    params = ExplainParams(methods=["ig"], **SMALL)
    got, rows = run_suite(int8, tmp_path / "a", params)
    _ref, ref_rows = run_suite(fp32, tmp_path / "b", params)
    assert got.details["gradient_precision"] == "fp32" and got.details["ig_schedule"] == "fixed"
    assert [r["attributions"] for r in rows] == [r["attributions"] for r in ref_rows]
    assert all(r["deltas"]["ig"]["n_evaluations"] >= r["deltas"]["ig"]["n_steps"] for r in rows)
