"""Confirmed weak slices: a model that errs on negations yields a confirmed slice naming negation,
a model that errs at random yields none, and Benjamini–Hochberg holds the false discovery rate in
seeded simulations (the halves are disjoint, candidates never read the outcomes)."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import numpy as np
import pytest

from harness.data_checks.slices import NEGATION, SliceParams, candidates, find_weak_slices, halves
from tests.fixtures_text import make_rows

ROWS = make_rows(800, seed=11)
TEXTS = [r["text"] for r in ROWS]
IDS = [r["id"] for r in ROWS]
LABELS = [0 if r["label"] == "neg" else 1 for r in ROWS]
GROUPS: dict[str, list[str | None]] = {"group": [r["group"] for r in ROWS]}
HAS_NOT = np.array([bool(NEGATION.search(t)) for t in TEXTS])
PARAMS = SliceParams(min_size=20, screen_alpha=0.1, fdr=0.05, n_clusters=0, seed=0)


def outcomes(rng: np.random.Generator, base_error: float, weak: np.ndarray | None = None, weak_error: float = 0.0) -> list[bool | None]:
    """Correctness of a constructed model: errs at ``base_error`` everywhere, and at
    ``weak_error`` on ``weak``."""
    p = np.full(len(TEXTS), base_error)
    if weak is not None:
        p[weak] = weak_error
    return [bool(v) for v in rng.random(len(TEXTS)) >= p]


def test_negation_model_yields_a_confirmed_negation_slice() -> None:
    found = candidates(TEXTS, LABELS, ["neg", "pos"], GROUPS)
    assert 60 <= HAS_NOT.sum() <= 300  # the fixture has enough negations on both halves
    correct = outcomes(np.random.default_rng(0), 0.08, HAS_NOT, 0.5)
    result = find_weak_slices(IDS, correct, found, PARAMS)
    slugs = [s["slug"] for s in result.confirmed]
    assert slugs == ["negation"], slugs
    s = result.confirmed[0]
    assert "negation" in s["description"] and s["q"] <= 0.05
    # Figures from the confirmation half only: recompute them from the outcomes.
    half = halves(IDS, 0)
    on = HAS_NOT & half
    acc = np.mean([correct[i] for i in np.flatnonzero(on)])
    assert s["n_confirm"] == on.sum() and s["accuracy"] == pytest.approx(acc)
    assert s["ci_low"] < s["accuracy"] < s["ci_high"] and s["gap_ci_high"] < 0
    assert all(HAS_NOT[IDS.index(i)] and half[IDS.index(i)] and not correct[IDS.index(i)] for i in s["failing_ids"])


def test_random_error_model_yields_no_confirmed_slice() -> None:
    found = candidates(TEXTS, LABELS, ["neg", "pos"], GROUPS)
    result = find_weak_slices(IDS, outcomes(np.random.default_rng(1), 0.2), found, PARAMS)
    assert result.confirmed == []


def test_false_discovery_rate_in_simulation() -> None:
    """300 seeded replicates: under the complete null the share of replicates with any confirmed
    slice (= the FDR there) stays at most 0.05 + 2 standard errors; with one real weak slice
    (negation) the mean false discovery proportion does too, and the real one is found."""
    found = candidates(TEXTS, LABELS, ["neg", "pos"], GROUPS)
    rng = np.random.default_rng(2024)
    reps, any_null, fdp, power = 300, 0, [], 0
    for _ in range(reps):
        any_null += bool(find_weak_slices(IDS, outcomes(rng, 0.2), found, PARAMS).confirmed)
        confirmed = find_weak_slices(IDS, outcomes(rng, 0.15, HAS_NOT, 0.45), found, PARAMS).confirmed
        # a slice overlapping the negation texts mostly is a true discovery
        false = [s for s in confirmed if HAS_NOT[[IDS.index(i) for i in s["failing_ids"]]].mean() < 0.5]
        fdp.append(len(false) / len(confirmed) if confirmed else 0.0)
        power += any(s["slug"] == "negation" for s in confirmed)
    bound = 0.05 + 2 * np.sqrt(0.05 * 0.95 / reps)
    assert any_null / reps <= bound, any_null / reps
    assert float(np.mean(fdp)) <= bound, np.mean(fdp)
    assert power / reps >= 0.8, power / reps


def test_edges_no_scored_examples_tiny_split_and_failed_predictions() -> None:
    assert find_weak_slices([], [], candidates([], [], ["a", "b"], {}), PARAMS).confirmed == []
    few = candidates(TEXTS[:3], LABELS[:3], ["neg", "pos"], {})
    assert find_weak_slices(IDS[:3], [False, False, False], few, PARAMS).tested == []
    # Failed predictions (None) are in no figure: all-None gives nothing to test.
    found = candidates(TEXTS, LABELS, ["neg", "pos"], GROUPS)
    assert find_weak_slices(IDS, [None] * len(IDS), found, PARAMS).tested == []
    # every example wrong: no slice is worse than the rest
    assert find_weak_slices(IDS, [False] * len(IDS), found, PARAMS).confirmed == []


def test_candidates_cover_text_properties_groups_intersections_and_clusters() -> None:
    rng = random.Random(0)
    groups: dict[str, list[str | None]] = {"g": [rng.choice(["a", "b"]) for _ in TEXTS], "h": [rng.choice(["x", None]) for _ in TEXTS]}
    emb = np.random.default_rng(0).normal(size=(len(TEXTS), 4))
    found = candidates(TEXTS, LABELS, ["neg", "pos"], groups, group_terms={"names": ["Mary", "john"]}, embeddings=emb, n_clusters=3)
    slugs = {c.slug for c in found}
    assert {"negation", "question", "length-short", "label-neg", "group-g-a", "group-h-missing", "mentions-names"} <= slugs
    assert "group-g-a-x-h-x" in slugs and {"cluster-0", "cluster-1", "cluster-2"} <= slugs
    assert len(slugs) == len(found)  # unique
    mentions = next(c for c in found if c.slug == "mentions-names")
    assert mentions.mask.tolist() == [bool({"mary", "john"} & set(t.lower().rstrip(".").split())) for t in TEXTS]


def test_the_suite_reports_the_negation_slice_and_a_gate_metric(tmp_path: Path, tiny_model_dir: Path) -> None:
    """The data suite on a split whose (constructed) predictions are wrong on negations."""
    from harness.data import Dataset
    from harness.models.hf import HFClassifier
    from harness.predictions import Predictions
    from harness.store import ExampleLog, read_jsonl
    from harness.suites.base import SuiteContext
    from harness.suites.data import DataParams, DataSuite

    n = 400
    data = Dataset(name="t", split="test", ids=tuple(IDS[:n]), texts=tuple(TEXTS[:n]), labels=tuple(LABELS[:n]), label_names=("neg", "pos"), groups={})
    rng = np.random.default_rng(5)
    wrong = np.where(HAS_NOT[:n], rng.random(n) < 0.7, rng.random(n) < 0.05)
    predicted = np.where(wrong, 1 - np.asarray(LABELS[:n]), LABELS[:n])
    probs = np.stack([1.0 - 0.9 * predicted - 0.05, 0.9 * predicted + 0.05], axis=1)
    preds = Predictions(ids=data.ids, labels=data.labels, probabilities=probs)
    model = HFClassifier.load(tiny_model_dir, name="tiny", source="path", max_length=32)
    with ExampleLog(tmp_path / "rows.jsonl") as log:
        ctx = SuiteContext(seed=0, run_dir=tmp_path, examples=log, logger=logging.getLogger("t"), predictions=lambda: preds)
        params = DataParams(n_permutations=49, shift_samples=50, n_clusters=2, min_slice_size=10, num_perm=32)
        outcome = DataSuite(params=params).run(model, data, ctx)
    m = {x.name: x for x in outcome.metrics}
    assert "weak.negation.accuracy" in m and m["weak.negation.accuracy"].ci_high is not None
    assert m["slice.negation.accuracy"].value == pytest.approx(1 - wrong[HAS_NOT[:n]].mean())
    assert any("confirmed weak slice 'negation'" in w for w in outcome.warnings)
    assert m["contamination.share"].value is None  # no seen data known: not checked
    rows = read_jsonl(tmp_path / "rows.jsonl")
    assert sum(1 for r in rows if r.get("in:negation")) == HAS_NOT[:n].sum()
    assert outcome.details["per_example"]["weak.negation.accuracy"]["where"] == {"in:negation": True, "half": "confirm"}


@pytest.mark.parametrize(
    ("text", "negated"),
    [("not bad", True), ("I don't care", True), ("do n't go", True), ("it isn’t", True), ("cannot", True),
     ("brilliant and excellent", False), ("I want it", False), ("a notable film", False), ("nothing", True)],
)
def test_negation_pattern(text: str, negated: bool) -> None:
    assert bool(NEGATION.search(text)) is negated
