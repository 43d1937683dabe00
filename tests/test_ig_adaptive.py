"""Adaptive IG (composite Gauss-Legendre on panels, split where the exactly known completeness
error is) on the tiny BERT, against Captum's LayerIntegratedGradients as the reference."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from captum.attr import LayerIntegratedGradients

from harness.explain.attribution import (
    IGResult,
    Settings,
    TokenForward,
    forward_outputs,
    frozen,
    integrated_gradients,
    make_batch,
)
from harness.explain.panels import gl_nodes, panel_attributions, path_outputs, straight_path
from harness.explain.words import tokenize_words
from harness.models.hf import HFClassifier
from harness.suites.explain import ExplainParams

TEXTS = [
    "a good film",
    "bad and dull and long",
    "great acting, poor plot, fine music",
    "fine",
    "not bad at all really",
]


@pytest.fixture(scope="module")
def model(tiny_model_dir: Path) -> HFClassifier:
    return HFClassifier.load(tiny_model_dir, name="tiny", source="path", max_length=32)


@pytest.fixture(scope="module")
def sharp(tiny_model_dir: Path) -> HFClassifier:
    """The tiny BERT with its classifier scaled up: a steep softmax along the path, the case
    adaptation is for (the random tiny model alone is nearly flat)."""
    out = HFClassifier.load(tiny_model_dir, name="sharp", source="path", max_length=32)
    with torch.no_grad():
        out.model.classifier.weight.mul_(300.0)
    return out


def _batch(model: HFClassifier, texts: list[str]) -> tuple[Any, list[int], Any]:
    items, _ = tokenize_words(model.tokenizer, [f"e{i}" for i in range(len(texts))], texts, 32)
    batch = make_batch(model, items, int(model.tokenizer.pad_token_id))
    with frozen(model.model):
        probs = forward_outputs(model.model, batch, "probability")
    targets = [int(t) for t in probs.argmax(-1)]
    return batch, targets, probs[torch.arange(batch.size), targets].double().numpy()


def _run(
    model: HFClassifier, s: Settings, texts: list[str] = TEXTS
) -> tuple[IGResult, list[int], Any]:
    batch, targets, f_x = _batch(model, texts)
    with frozen(model.model):
        res = integrated_gradients(
            model, model.model, batch, targets, f_x, int(model.tokenizer.pad_token_id), s
        )
    return res, targets, batch


def _lig(model: HFClassifier, batch: Any, targets: list[int], n_steps: int) -> Any:
    lig = LayerIntegratedGradients(
        TokenForward(model.model, "probability"), model.model.get_input_embeddings()
    )
    with frozen(model.model):
        attr = lig.attribute(
            batch.input_ids,
            baselines=batch.baseline_ids,
            target=targets,
            additional_forward_args=batch.args(),
            n_steps=n_steps,
            method="gausslegendre",
        )
    return attr.sum(-1).detach().double().numpy()


@contextmanager
def counted_rows(model: HFClassifier) -> Iterator[dict[str, int]]:
    """Rows through the embeddings module, split by whether a gradient flows (forward+backward
    nodes) or not (forward only); counted by a hook, independently of the code under test."""
    seen = {"gradient": 0, "forward": 0}

    def hook(_module: Any, _inputs: Any, output: Any) -> None:
        seen["gradient" if output.requires_grad else "forward"] += int(output.shape[0])

    handle = model.model.base_model.embeddings.register_forward_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


def test_one_panel_equals_captum_lig_gauss_legendre(model: HFClassifier) -> None:
    res, targets, batch = _run(model, Settings(start_steps=8, start_panels=1, tolerance=1e9))
    assert (
        res.panels == [1] * len(TEXTS)
        and res.n_steps == [8] * len(TEXTS)
        and res.evaluations == [8] * len(TEXTS)
    )
    np.testing.assert_allclose(res.tokens, _lig(model, batch, targets, 8), atol=1e-5)


def test_panels_converge_to_400_step_captum(model: HFClassifier) -> None:
    s = Settings(start_steps=4, start_panels=2, panel_nodes=4, tolerance=1e-5, max_n_steps=4000)
    res, targets, batch = _run(model, s)
    ref = _lig(model, batch, targets, 400)
    assert max(res.panels) > 2  # it did split
    np.testing.assert_allclose(res.tokens, ref, atol=2e-5 * max(1.0, float(np.abs(ref).max())))


def test_node_outputs_recorded_from_captum_equal_forwards_at_the_nodes(model: HFClassifier) -> None:
    batch, targets, _ = _batch(model, TEXTS[:3])
    s = Settings(internal_batch_size=4)  # several Captum passes per call
    with frozen(model.model):
        path = straight_path(model.model, batch, s)
        rows = [(i, 0.25 * i, 0.25 * i + 0.5, targets[i]) for i in range(3)]
        _, node_f = panel_attributions(model.model, path, rows, 5, s)
        alphas = gl_nodes(5)
        direct = path_outputs(
            model.model,
            path,
            [(r[0], r[1] + a * (r[2] - r[1])) for r in rows for a in alphas],
            targets,
            s,
        )
    assert node_f is not None
    np.testing.assert_allclose(node_f, direct.reshape(3, 5), atol=1e-6)


def test_adapts_until_within_tolerance_and_records_what_it_spent(sharp: HFClassifier) -> None:
    model = sharp
    s = Settings(
        start_steps=4, start_panels=2, panel_nodes=4, tolerance=1e-3, floor=1e-9, max_n_steps=4000
    )
    batch, targets, f_x = _batch(model, TEXTS)
    with frozen(model.model), counted_rows(model) as seen:
        res = integrated_gradients(
            model, model.model, batch, targets, f_x, int(model.tokenizer.pad_token_id), s
        )
    assert all(r <= 1e-3 for r in res.relative_delta)
    assert max(res.evaluations) > 8  # some example needed more than the first round
    assert seen["gradient"] == sum(res.evaluations)
    assert seen["forward"] == batch.size + sum(res.forwards)  # F(baseline), then path points
    assert res.forwards == [1] * batch.size  # the first panels' inner edge; splits are free
    for final, spent, panels in zip(res.n_steps, res.evaluations, res.panels, strict=True):
        assert final == 4 * panels and spent >= final and (spent - 8) % 8 == 0
    np.testing.assert_allclose(
        res.tokens.sum(1) - (res.f_input - res.f_baseline), res.delta, atol=1e-12
    )


def test_batch_of_one_and_single_token_text(model: HFClassifier) -> None:
    s = Settings(start_steps=4, tolerance=1e-4, max_n_steps=4000)
    res, targets, batch = _run(model, s, ["fine"])
    assert batch.size == 1 and res.relative_delta[0] <= 1e-4
    np.testing.assert_allclose(res.tokens, _lig(model, batch, targets, 400), atol=1e-5)


def test_equal_ends_use_the_floor_and_stop_at_once(model: HFClassifier) -> None:
    """No word tokens: baseline == input, F(x) == F(b), the gap is 0 against the floor."""
    res, _, _ = _run(model, Settings(start_steps=4, tolerance=0.05), ["", "a good film"])
    assert res.f_input[0] == pytest.approx(res.f_baseline[0], abs=1e-6)
    first = Settings().start_panels
    assert (
        res.relative_delta[0] <= 0.05 and res.evaluations[0] == 4 * first and res.panels[0] == first
    )
    assert np.all(res.tokens[0] == 0.0)


def test_within_tolerance_at_the_first_round_spends_only_it(model: HFClassifier) -> None:
    res, _, _ = _run(model, Settings(start_steps=6, start_panels=2, tolerance=0.5))
    assert (
        res.evaluations == [12] * len(TEXTS)
        and res.panels == [2] * len(TEXTS)
        and res.forwards == [1] * len(TEXTS)
    )


def test_cap_keeps_the_last_panels_and_flags_the_miss(model: HFClassifier) -> None:
    s = Settings(start_steps=2, start_panels=2, panel_nodes=2, tolerance=1e-12, max_n_steps=12)
    res, targets, batch = _run(model, s)
    assert all(e <= 12 for e in res.evaluations) and max(res.evaluations) == 12
    assert all(r > 1e-12 for r in res.relative_delta)
    assert np.all(np.isfinite(res.tokens))
    # what was kept is a valid composite estimate: close to the reference, not reset
    ref = _lig(model, batch, targets, 400)
    assert np.abs(res.tokens - ref).max() <= 0.05 * np.abs(ref).max()


def test_fixed_schedule_starts_at_n_steps(model: HFClassifier) -> None:
    res, _, _ = _run(model, Settings(n_steps=16, max_n_steps=16))
    assert (
        res.n_steps == [16] * len(TEXTS)
        and res.evaluations == [16] * len(TEXTS)
        and res.panels == []
    )


def test_params_schedule() -> None:
    p = ExplainParams()
    assert (
        p.ig_schedule in ("adaptive", "fixed")
        and p.adaptive_start_steps == 4
        and p.gradient_precision == "fp32"
    )
    assert ExplainParams(ig_schedule="fixed").ig_schedule == "fixed"
    with pytest.raises(ValueError):
        ExplainParams(adaptive_start_steps=1)


def test_explain_on_int8_model_uses_fp32_gradients(tiny_model_dir: Path, tmp_path: Path) -> None:
    from tests.test_explain import SMALL, run_suite

    int8 = HFClassifier.load(
        tiny_model_dir, name="tiny", source="path", max_length=32, precision="int8"
    )
    fp32 = HFClassifier.load(tiny_model_dir, name="tiny", source="path", max_length=32)
    params = ExplainParams(methods=["ig"], **SMALL)
    got, rows = run_suite(int8, tmp_path / "a", params)
    _ref, ref_rows = run_suite(fp32, tmp_path / "b", params)
    assert (
        got.details["gradient_precision"] == "fp32"
        and got.details["ig_schedule"] == params.ig_schedule
    )
    assert [r["attributions"] for r in rows] == [r["attributions"] for r in ref_rows]
    assert all(r["deltas"]["ig"]["n_evaluations"] >= r["deltas"]["ig"]["n_steps"] for r in rows)


def test_suite_records_panels_for_the_adaptive_schedule(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    from tests.test_explain import SMALL, run_suite

    fp32 = HFClassifier.load(tiny_model_dir, name="tiny", source="path", max_length=32)
    got, rows = run_suite(
        fp32, tmp_path / "a", ExplainParams(methods=["ig"], ig_schedule="adaptive", **SMALL)
    )
    assert got.details["ig_schedule"] == "adaptive"
    for r in rows:
        ig = r["deltas"]["ig"]
        assert (
            ig["n_panels"] >= 1 and ig["n_forwards"] >= 0 and ig["n_steps"] <= ig["n_evaluations"]
        )
        assert ig["within_tolerance"] == (ig["relative_delta"] <= 0.05)
