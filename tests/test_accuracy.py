"""Accuracy suite values equal scikit-learn's (``zero_division=np.nan``) on the same predictions.

Every reference here is scikit-learn: per-class and macro precision/recall/F1 with
``zero_division=np.nan`` (undefined -> NaN -> null in the record, left out of macro means),
``multilabel_confusion_matrix`` for each figure's n, ``log_loss`` and ``brier_score_loss``.
ECE has no scikit-learn counterpart and is checked by hand.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from harness.data import Dataset
from harness.metrics import classification as mc
from harness.predictions import Predictions
from harness.records import Metric
from harness.stats import bootstrap_ci
from harness.store import ExampleLog
from harness.suites.accuracy import (
    CLASS_ABSENT,
    CLASS_NEVER_PREDICTED,
    CLASS_UNSEEN,
    F1_ONE_CLASS,
    NOTHING_SCORED,
    AccuracyParams,
    AccuracySuite,
)
from harness.suites.base import SuiteContext, SuiteOutcome


def random_case(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, size=n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[labels] * rng.random((n, 1))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return labels.astype(np.int64), probs


def probs_for(predicted: list[int], k: int) -> np.ndarray:
    """Probabilities whose argmax is ``predicted`` (0.6 on the predicted class)."""
    probs = np.full((len(predicted), k), 0.4 / (k - 1))
    probs[np.arange(len(predicted)), predicted] = 0.6
    return probs


def run_suite(
    tmp_path: Path,
    labels: np.ndarray,
    probs: np.ndarray,
    groups: dict[str, tuple[str | None, ...]] | None = None,
    errors: int = 0,
) -> SuiteOutcome:
    """The suite on these predictions, plus ``errors`` examples whose prediction failed."""
    k = probs.shape[1]
    names = tuple(f"c{i}" for i in range(k))
    ids = tuple(f"e{i}" for i in range(labels.size + errors))
    all_labels = tuple(int(v) for v in labels) + (0,) * errors
    data = Dataset(name="t", split="test", ids=ids, texts=tuple("x" for _ in ids), labels=all_labels, label_names=names, groups=groups or {})
    scored = ids[: labels.size]
    failed = {i: "RuntimeError: boom" for i in ids[labels.size :]}
    preds = Predictions(ids=scored, labels=all_labels[: labels.size], probabilities=probs.reshape(labels.size, k), errors=failed)
    ctx = SuiteContext(seed=0, run_dir=tmp_path, examples=ExampleLog(tmp_path / "a.jsonl").open(), logger=logging.getLogger("t"), predictions=lambda: preds)
    return AccuracySuite(params=AccuracyParams(n_bootstrap=200, n_posterior_draws=1000)).run(None, data, ctx)  # type: ignore[arg-type]


def record_value(x: float) -> float | None:
    """What the record holds for a reference value: NaN becomes null."""
    return None if math.isnan(x) else float(x)


def assert_matches_sklearn(m: dict[str, Metric], labels: np.ndarray, pred: np.ndarray, k: int) -> None:
    """Per-class and macro P/R/F1 and each figure's n against scikit-learn (zero_division=nan)."""
    classes = list(range(k))
    per = skm.precision_recall_fscore_support(labels, pred, labels=classes, zero_division=np.nan)
    macro = skm.precision_recall_fscore_support(labels, pred, labels=classes, average="macro", zero_division=np.nan)
    f1_macro = skm.f1_score(labels, pred, labels=classes, average="macro", zero_division=np.nan)
    for name, ref in (("precision_macro", macro[0]), ("recall_macro", macro[1]), ("f1_macro", f1_macro)):
        assert m[name].value == pytest.approx(record_value(ref), abs=1e-12), name
        assert m[name].n == labels.size
    mcm = skm.multilabel_confusion_matrix(labels, pred, labels=classes)  # per class [[tn, fp], [fn, tp]]
    for c in classes:
        (_tn, fp), (fn, tp) = mcm[c]
        for j, (name, n) in enumerate((("precision", tp + fp), ("recall", tp + fn), ("f1", tp + fp + fn))):
            metric = m[f"{name}.c{c}"]
            assert metric.value == pytest.approx(record_value(per[j][c]), abs=1e-12), metric.name
            assert metric.n == n, metric.name


@pytest.mark.parametrize(("n", "k", "seed"), [(500, 2, 0), (300, 3, 1), (50, 5, 2)])
def test_metrics_equal_sklearn(tmp_path: Path, n: int, k: int, seed: int) -> None:
    labels, probs = random_case(n, k, seed)
    pred = probs.argmax(axis=1)
    out = run_suite(tmp_path, labels, probs)
    m = {x.name: x for x in out.metrics}
    assert m["accuracy"].value == pytest.approx(skm.accuracy_score(labels, pred), abs=1e-12)
    assert_matches_sklearn(m, labels, pred, k)
    assert m["nll"].value == pytest.approx(skm.log_loss(labels, probs, labels=list(range(k))), abs=1e-10)
    assert m["brier"].value == pytest.approx(skm.brier_score_loss(labels, probs, labels=list(range(k))), abs=1e-12)
    assert out.details["confusion_matrix"] == skm.confusion_matrix(labels, pred, labels=list(range(k))).tolist()
    for name in ("accuracy", "f1_macro", "ece", "brier", "nll"):
        assert m[name].n == n
        assert m[name].ci_low is not None and m[name].ci_low <= m[name].value <= m[name].ci_high
    assert m["accuracy"].ci_method == "wilson"
    assert m["f1_macro"].ci_method is not None and m["f1_macro"].ci_method.startswith(mc.F1_INTERVAL_METHOD)


# The three ways a class can be undefined, on three labels (class 2 is the odd one out).
UNDEFINED_CASES = {
    "absent but predicted": ([0, 0, 1, 1, 0, 1], [0, 2, 1, 1, 0, 1]),
    "present, never predicted": ([0, 0, 1, 2, 0, 1], [0, 0, 1, 1, 0, 1]),
    "absent and never predicted": ([0, 0, 1, 1, 0, 1], [0, 0, 1, 1, 0, 1]),
}


@pytest.mark.parametrize("case", list(UNDEFINED_CASES))
def test_undefined_class_equals_sklearn_nan(tmp_path: Path, case: str) -> None:
    labels, predicted = (np.array(v) for v in UNDEFINED_CASES[case])
    out = run_suite(tmp_path, labels, probs_for(predicted.tolist(), 3))
    m = {x.name: x for x in out.metrics}
    assert_matches_sklearn(m, labels, predicted, 3)
    expected = {
        "absent but predicted": CLASS_ABSENT.format(label="c2", predicted=1),
        "present, never predicted": CLASS_NEVER_PREDICTED.format(label="c2", support=1),
        "absent and never predicted": CLASS_UNSEEN.format(label="c2"),
    }[case]
    assert expected in out.warnings
    assert sum("class 'c2'" in w for w in out.warnings) == 1


def test_perfect_classifier_with_absent_class_is_not_penalised(tmp_path: Path) -> None:
    """Issue 14 defect 4: perfect on 3 labels, one absent: was f1_macro 0.667, CI [0.667, 0.667]."""
    labels = np.array([0] * 20 + [1] * 20)
    out = run_suite(tmp_path, labels, probs_for(labels.tolist(), 3))
    m = {x.name: x for x in out.metrics}
    reference = skm.f1_score(labels, labels, labels=[0, 1, 2], average="macro", zero_division=np.nan)
    assert reference == 1.0
    assert m["f1_macro"].value == reference
    assert m["f1.c2"].value is None and m["precision.c2"].value is None and m["recall.c2"].value is None
    assert m["f1_macro"].ci_low is not None and m["f1_macro"].ci_high == 1.0
    assert m["f1_macro"].ci_low > 2 / 3
    assert CLASS_UNSEEN.format(label="c2") in out.warnings
    assert "class 'c2' has no examples in the evaluation split and was never predicted: its precision, recall and F1 are undefined and excluded from the macro averages" in out.warnings


def test_bootstrap_resamples_without_positives_follow_sklearn() -> None:
    """Issue 14 defect 4 inside resamples: perfect classifier, 2 positives in 200, was CI [0.5, 1.0].

    A resample that draws neither positive has class 1 undefined, not F1 0. The same seeded
    bootstrap with scikit-learn as the statistic is the reference (the gate's bootstrap scorers
    call ``mc.f1_macro`` / ``mc.precision_recall_f1`` this way).
    """
    labels = np.array([0] * 198 + [1] * 2)

    def ours(i: np.ndarray) -> float:
        return mc.f1_macro(labels[i], labels[i], 2)

    def sklearn(i: np.ndarray) -> float:
        return float(skm.f1_score(labels[i], labels[i], labels=[0, 1], average="macro", zero_division=np.nan))

    rng = np.random.default_rng(0)
    resamples = [rng.integers(0, 200, size=200) for _ in range(300)]
    assert any(labels[i].sum() == 0 for i in resamples)
    assert [ours(i) for i in resamples] == [sklearn(i) for i in resamples]
    ci, ref = bootstrap_ci(ours, 200, n_boot=300, seed=3), bootstrap_ci(sklearn, 200, n_boot=300, seed=3)
    assert (ci.low, ci.high) == (ref.low, ref.high) == (1.0, 1.0)


def test_all_errors_run_is_null_with_a_warning(tmp_path: Path) -> None:
    """Issue 14 defect 3: every prediction failed: macro and per-class P/R/F1 were 0.0."""
    out = run_suite(tmp_path, np.zeros(0, dtype=np.int64), np.zeros((0, 3)), errors=4)
    m = {x.name: x for x in out.metrics}
    # scikit-learn has no value for zero samples (it raises); with no class defined its macro
    # average under zero_division=nan is NaN, which the record holds as null.
    ref = skm.precision_recall_fscore_support([0], [0], labels=[1], average="macro", zero_division=np.nan)
    assert all(math.isnan(v) for v in ref[:3])
    for name, metric in m.items():
        if name == "n_errors":
            assert metric.value == 4 and metric.n == 4
            continue
        assert metric.value is None, name
        assert metric.ci_low is None and metric.ci_high is None, name
        assert metric.n == 0, name
    assert NOTHING_SCORED.format(errors=4) in out.warnings
    assert not any(w.startswith("class ") for w in out.warnings)


def test_one_class_seen_has_no_f1_interval(tmp_path: Path) -> None:
    labels = np.zeros(12, dtype=np.int64)
    out = run_suite(tmp_path, labels, probs_for(labels.tolist(), 2))
    m = {x.name: x for x in out.metrics}
    assert m["f1_macro"].value == skm.f1_score(labels, labels, labels=[0, 1], average="macro", zero_division=np.nan)
    assert m["f1_macro"].ci_low is None and m["f1_macro"].ci_high is None
    assert F1_ONE_CLASS.format(label="c0") in out.warnings


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


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 4).flatmap(lambda k: st.tuples(st.just(k), st.lists(st.tuples(st.integers(0, k - 1), st.integers(0, k - 1)), min_size=1, max_size=30))))
def test_prf_match_sklearn_nan_property(case: tuple[int, list[tuple[int, int]]]) -> None:
    """Random small label/prediction pairs: classes go missing from either side often."""
    k, pairs = case
    labels = np.array([a for a, _ in pairs], dtype=np.int64)
    pred = np.array([b for _, b in pairs], dtype=np.int64)
    classes = list(range(k))
    cm = mc.confusion(labels, pred, k)
    assert cm.tolist() == skm.confusion_matrix(labels, pred, labels=classes).tolist()
    ours = mc.precision_recall_f1(cm)
    ref = skm.precision_recall_fscore_support(labels, pred, labels=classes, zero_division=np.nan)
    for j in range(3):
        np.testing.assert_allclose(ours[j], ref[j], atol=1e-12, equal_nan=True)
    macro = skm.precision_recall_fscore_support(labels, pred, labels=classes, average="macro", zero_division=np.nan)
    for j in range(3):
        np.testing.assert_allclose(float(mc.macro_average(ours[j])), macro[j], atol=1e-12, equal_nan=True)
    ref_f1 = skm.f1_score(labels, pred, labels=classes, average="macro", zero_division=np.nan)
    np.testing.assert_allclose(mc.f1_macro(labels, pred, k), ref_f1, atol=1e-12, equal_nan=True)
