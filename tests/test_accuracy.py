"""Accuracy suite values equal scikit-learn's on the same predictions."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from harness import metrics_classification as mc
from harness.data import Dataset
from harness.store import ExampleLog
from harness.suites.accuracy import AccuracyParams, AccuracySuite
from harness.suites.base import Predictions, SuiteContext


def random_case(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, size=n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[labels] * rng.random((n, 1))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return labels.astype(np.int64), probs


def run_suite(tmp_path: Path, labels: np.ndarray, probs: np.ndarray, groups: dict[str, tuple[str | None, ...]] | None = None):
    k = probs.shape[1]
    names = tuple(f"c{i}" for i in range(k))
    ids = tuple(f"e{i}" for i in range(labels.size))
    data = Dataset(name="t", split="test", ids=ids, texts=tuple("x" for _ in ids), labels=tuple(int(v) for v in labels), label_names=names, groups=groups or {})
    preds = Predictions(ids=ids, labels=data.labels, probabilities=probs)
    ctx = SuiteContext(seed=0, run_dir=tmp_path, examples=ExampleLog(tmp_path / "a.jsonl").open(), logger=logging.getLogger("t"), predictions=lambda: preds)
    return AccuracySuite(params=AccuracyParams(n_bootstrap=200)).run(None, data, ctx)  # type: ignore[arg-type]


@pytest.mark.parametrize(("n", "k", "seed"), [(500, 2, 0), (300, 3, 1), (50, 5, 2)])
def test_metrics_equal_sklearn(tmp_path: Path, n: int, k: int, seed: int) -> None:
    labels, probs = random_case(n, k, seed)
    pred = probs.argmax(axis=1)
    out = run_suite(tmp_path, labels, probs)
    m = {x.name: x for x in out.metrics}
    assert m["accuracy"].value == pytest.approx(skm.accuracy_score(labels, pred), abs=1e-12)
    assert m["f1_macro"].value == pytest.approx(skm.f1_score(labels, pred, average="macro", labels=list(range(k)), zero_division=0), abs=1e-12)
    assert m["precision_macro"].value == pytest.approx(skm.precision_score(labels, pred, average="macro", labels=list(range(k)), zero_division=0), abs=1e-12)
    assert m["recall_macro"].value == pytest.approx(skm.recall_score(labels, pred, average="macro", labels=list(range(k)), zero_division=0), abs=1e-12)
    per = skm.precision_recall_fscore_support(labels, pred, labels=list(range(k)), zero_division=0)
    for c in range(k):
        assert m[f"precision.c{c}"].value == pytest.approx(per[0][c], abs=1e-12)
        assert m[f"recall.c{c}"].value == pytest.approx(per[1][c], abs=1e-12)
        assert m[f"f1.c{c}"].value == pytest.approx(per[2][c], abs=1e-12)
    assert m["nll"].value == pytest.approx(skm.log_loss(labels, probs, labels=list(range(k))), abs=1e-10)
    assert m["brier"].value == pytest.approx(skm.brier_score_loss(labels, probs, labels=list(range(k))), abs=1e-12)
    assert out.details["confusion_matrix"] == skm.confusion_matrix(labels, pred, labels=list(range(k))).tolist()
    for name in ("accuracy", "f1_macro", "ece", "brier", "nll"):
        assert m[name].ci_low is not None and m[name].ci_low <= m[name].value <= m[name].ci_high


def test_ece_by_hand() -> None:
    labels = np.array([0, 1, 1, 0])
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.55, 0.45]])
    # confidences .9 (right), .8 (right), .6 (wrong), .55 (right); bins of width 1/15:
    # .6 and .55 share the bin (8/15, 9/15], whose accuracy is .5 and mean confidence .575.
    expected = (1 / 4) * abs(1 - 0.9) + (1 / 4) * abs(1 - 0.8) + (2 / 4) * abs(0.5 - 0.575)
    assert mc.ece(labels, probs) == pytest.approx(expected)
    assert sum(b["count"] for b in mc.calibration_bins(labels, probs)) == 4


def test_group_breakdown_and_small_group_warning(tmp_path: Path) -> None:
    labels, probs = random_case(100, 2, 3)
    groups = {"g": tuple("a" if i < 95 else "b" for i in range(100))}
    out = run_suite(tmp_path, labels, probs, groups)
    names = {m.name for m in out.metrics}
    assert "accuracy.group.g.a" in names and "accuracy.group.g.b" not in names
    assert any("g='b' has 5 examples" in w for w in out.warnings)
    assert [r["n"] for r in out.details["groups"]["g"]] == [95, 5]


@settings(max_examples=50, deadline=None)
@given(st.integers(2, 4), st.integers(1, 40), st.integers(0, 10_000))
def test_confusion_and_f1_match_sklearn_property(k: int, n: int, seed: int) -> None:
    labels, probs = random_case(n, k, seed)
    pred = probs.argmax(axis=1).astype(np.int64)
    assert mc.confusion(labels, pred, k).tolist() == skm.confusion_matrix(labels, pred, labels=list(range(k))).tolist()
    assert mc.f1_macro(labels, pred, k) == pytest.approx(skm.f1_score(labels, pred, average="macro", labels=list(range(k)), zero_division=0), abs=1e-12)
