"""Invariance suite: deterministic perturbations and per-perturbation stability figures."""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from harness.data import Dataset
from harness.models.hf import HFClassifier
from harness.robust.perturb import KEYBOARD_NEIGHBOURS, PERTURBATIONS, perturb
from harness.store import ExampleLog
from harness.suites.base import SuiteContext
from harness.suites.invariance import InvarianceParams, InvarianceSuite
from tests.fixtures_text import make_rows


@pytest.fixture(scope="module")
def data() -> Dataset:
    rows = make_rows(40, seed=3)
    texts = [r["text"] + " Mary didn't care, it is fine." for r in rows]
    return Dataset(
        name="fixture",
        split="test",
        ids=tuple(r["id"] for r in rows),
        texts=tuple(texts),
        labels=tuple(int(r["label"] == "pos") for r in rows),
        label_names=("neg", "pos"),
    )


def run(model: Any, data: Dataset, folder: Path, **params: Any) -> tuple[Any, dict[str, Any]]:
    with ExampleLog(folder / "examples" / "invariance.jsonl") as log:
        ctx = SuiteContext(
            seed=0,
            run_dir=folder,
            examples=log,
            logger=logging.getLogger("t"),
            predictions=lambda: None,
        )
        return InvarianceSuite(params=InvarianceParams(**params)).run(model, data, ctx), dict(
            log.done
        )


def test_perturbations_are_deterministic_and_do_what_they_say() -> None:
    text = "John did not like the movie, but it is charming."
    for name in PERTURBATIONS:
        assert perturb(name, text, seed=1, example_id="a") == perturb(
            name, text, seed=1, example_id="a"
        )
        if name != "expand":  # the text has no contraction to expand
            assert perturb(name, text, seed=1, example_id="a") != text, name
    assert (
        perturb("contract", text, seed=0, example_id="a")
        == "John didn't like the movie, but it's charming."
    )
    assert (
        perturb("expand", "I don't know, it's fine", seed=0, example_id="a")
        == "I do not know, it is fine"
    )
    assert perturb("lowercase", text, seed=0, example_id="a") == text.lower()
    assert "John" not in perturb("first_names", text, seed=0, example_id="a")
    typo = perturb("typo_keyboard", text, seed=0, example_id="a")
    diffs = [(a, b) for a, b in zip(text, typo, strict=True) if a != b]
    assert len(diffs) >= 1 and all(b.lower() in KEYBOARD_NEIGHBOURS[a.lower()] for a, b in diffs)
    assert " ".join(perturb("whitespace", text, seed=0, example_id="a").split()) == text
    swapped = perturb("typo_swap", text, seed=0, example_id="a")
    assert sorted(swapped) == sorted(text) and swapped != text
    rng_texts = {perturb("typo_keyboard", text, seed=s, example_id="a") for s in range(10)}
    assert len(rng_texts) > 1  # the seed matters
    state = random.getstate()
    perturb("typo_keyboard", text, seed=5, example_id="b")
    assert random.getstate() == state  # no global RNG use


def test_suite_figures_and_resume(tiny_model_dir: Path, data: Dataset, tmp_path: Path) -> None:
    model = HFClassifier.load(tiny_model_dir, name="tiny", source="path", max_length=32)
    outcome, rows = run(model, data, tmp_path, n_bootstrap=200)
    n = len(data)
    assert len(rows) == n * len(PERTURBATIONS)
    metrics = {m.name: m for m in outcome.metrics}
    for name in PERTURBATIONS:
        mine = [r for r in rows.values() if r["perturbation"] == name]
        changed = [r for r in mine if r["changed"]]
        acc = sum(r["pred_after"] == r["label"] for r in mine) / n
        assert metrics[f"{name}.accuracy"].value == pytest.approx(acc)
        flips = sum(r["pred_after"] != r["pred_before"] for r in changed)
        assert metrics[f"{name}.flip_rate"].value == pytest.approx(flips / len(changed))
        delta = sum(r["abs_delta_p_true"] for r in changed) / len(changed)
        assert metrics[f"{name}.mean_abs_delta_p_true"].value == pytest.approx(delta)
        low, high = metrics[f"{name}.flip_rate"].ci_low, metrics[f"{name}.flip_rate"].ci_high
        assert low is not None and high is not None and low <= flips / len(changed) <= high
    probs = model.predict_proba([r["perturbed_text"] for r in rows.values()])
    np.testing.assert_allclose(probs, [r["scores_after"] for r in rows.values()], rtol=1e-6)
    again, rows_again = run(model, data, tmp_path, n_bootstrap=200)
    assert rows_again == rows
    assert [m.model_dump() for m in again.metrics] == [m.model_dump() for m in outcome.metrics]


def test_unknown_perturbation_is_rejected() -> None:
    with pytest.raises(ValidationError, match="did you mean 'lowercase'"):
        InvarianceParams(perturbations=["lowercas"])
