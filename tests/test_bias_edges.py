"""The bias suite at the edges: a failed prediction and a group without positives (issue 14,
defect 8); the gap intervals themselves are tested in tests/test_gap_intervals.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.bias.groups import group_metrics
from harness.data import Dataset
from harness.predictions import Predictions
from harness.store import read_jsonl
from harness.suites.base import SuiteOutcome
from harness.suites.bias import MSG_NO_PREDICTIONS
from tests import test_bias as shared

# The tiny BERT and the tiny dataset of tests/test_bias.py, made visible to this module.
data, split_model, metric = shared.data, shared.split_model, shared.metric

FAST = {"n_boot": 50, "n_perm": 400, "census_names": False, "categories": ["religion"]}
GAPS = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
)


@pytest.fixture(autouse=True)
def _one_thread() -> Any:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def run_failing(
    model: Any, data: Dataset, tmp_path: Path, failed: dict[str, str], **params: Any
) -> tuple[SuiteOutcome, Path]:
    """Run the suite with the shared predictions the runner builds when the examples in
    ``failed`` errored: left out of the arrays, listed in ``errors``."""
    probs = model.predict_proba(list(data.texts))
    keep = [k for k, i in enumerate(data.ids) if i not in failed]
    preds = Predictions(
        ids=tuple(data.ids[k] for k in keep),
        labels=tuple(data.labels[k] for k in keep),
        probabilities=probs[keep],
        errors=failed,
    )
    return shared.run_suite(model, data, tmp_path, preds, **{**FAST, **params})


class RaisesOn:
    """The tiny BERT, except that it raises on one text (as a real model may on odd input)."""

    def __init__(self, base: Any, text: str) -> None:
        self.base, self.text = base, text

    @property
    def label_names(self) -> tuple[str, ...]:
        return tuple(self.base.label_names)

    def predict_proba(self, texts: list[str]) -> Any:
        if self.text in texts:
            raise ValueError("input the tokenizer cannot take")
        return self.base.predict_proba(texts)


def binary(model: Any, data: Dataset) -> tuple[Any, Any]:
    probs = model.predict_proba(list(data.texts))
    return (np.asarray(data.labels) == 1).astype(int), (probs.argmax(axis=1) == 1).astype(int)


# ------------------------------------------------------------------ a failed prediction


def test_one_failed_prediction_keeps_the_group_analysis(
    split_model: Any, data: Dataset, tmp_path: Path
) -> None:
    """Defect 8a: one errored example used to raise ConfigError and drop every group figure.
    Now the other examples are analysed (equal to Fairlearn on them), the failed one is
    counted and named, and templates and swaps still run."""
    from fairlearn.metrics import (
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference,
        equalized_odds_ratio,
    )

    bad = data.ids[7]
    out, path = run_failing(
        split_model, data, tmp_path, {bad: "ValueError: scores are NaN"}, min_group_size=1
    )
    assert [w for w in out.warnings if "without a prediction" in w] == [
        "bias: 1 evaluation example(s) without a prediction (the model failed; see "
        f"predictions.jsonl 'error') left out of the group metrics and swaps: {bad!r} "
        "(ValueError: scores are NaN)"
    ]
    assert out.details["prediction_errors"] == {"n": 1, "ids": [bad]}
    rest = data.subset([k for k, i in enumerate(data.ids) if i != bad])
    y, p = binary(split_model, rest)
    sf = list(rest.groups["group"])
    for name, reference in zip(
        GAPS,
        (
            demographic_parity_difference,
            demographic_parity_ratio,
            equalized_odds_difference,
            equalized_odds_ratio,
        ),
        strict=True,
    ):
        got = metric(out, f"groups.group.{name}")
        assert got.n == len(data) - 1
        assert got.value == pytest.approx(reference(y, p, sensitive_features=sf), abs=1e-12)
    assert sum(r["n"] for r in out.details["groups"]["group"]["by_group"]) == len(data) - 1
    # Everything else is kept: template tests ran; swaps never use the failed example.
    assert out.details["templates"]["categories"]["religion"]["by_group"]
    swaps = [r for r in read_jsonl(path) if r["kind"] == "swap"]
    assert swaps and all(r["example_id"] != bad for r in swaps)


def test_a_model_that_raises_through_the_runner_predictions(
    split_model: Any, data: Dataset, tmp_path: Path
) -> None:
    """The same case end to end: the runner's prediction step turns the raising example into
    an error row; the suite names it with the runner's reason and analyses the rest."""
    from harness.run.predictions import compute_predictions

    model = RaisesOn(split_model, data.texts[3])
    preds = compute_predictions(model, data, tmp_path, lambda done, total: None)
    assert set(preds.errors) == {data.ids[3]}
    out, _ = shared.run_suite(
        model, data, tmp_path, preds, **FAST, templates=False, swaps=False, min_group_size=1
    )
    warning = next(w for w in out.warnings if "without a prediction" in w)
    assert f"{data.ids[3]!r} (model raised ValueError: input the tokenizer cannot take)" in warning
    assert metric(out, "groups.group.equalized_odds_difference").n == len(data) - 1


def test_many_failed_predictions_are_counted_and_the_first_named(
    split_model: Any, data: Dataset, tmp_path: Path
) -> None:
    failed = {i: "RuntimeError: boom" for i in data.ids[:8]}
    out, _ = run_failing(split_model, data, tmp_path, failed, templates=False, swaps=False)
    warning = next(w for w in out.warnings if "without a prediction" in w)
    assert warning.startswith("bias: 8 evaluation example(s) without a prediction")
    assert warning.endswith("(RuntimeError: boom) and 3 more")
    assert all(repr(i) in warning for i in data.ids[:5]) and repr(data.ids[5]) not in warning
    assert metric(out, "groups.group.demographic_parity_difference").n == len(data) - 8


def test_every_prediction_failed_skips_groups_with_a_reason(
    split_model: Any, data: Dataset, tmp_path: Path
) -> None:
    failed = dict.fromkeys(data.ids, "ValueError: scores are NaN")
    out, _ = run_failing(split_model, data, tmp_path, failed, templates=False)
    assert out.details["groups"] == {"skipped": MSG_NO_PREDICTIONS}
    assert out.details["prediction_errors"]["n"] == len(data)
    assert any(w.startswith(f"bias: {len(data)} evaluation example(s)") for w in out.warnings)


# ------------------------------------------------------------------ a group without positives


def without_positives(data: Dataset, group: str) -> Dataset:
    labels = tuple(
        0 if g == group else lab for g, lab in zip(data.groups["group"], data.labels, strict=True)
    )
    return Dataset(
        name=data.name,
        split=data.split,
        ids=data.ids,
        texts=data.texts,
        labels=labels,
        label_names=data.label_names,
        groups=data.groups,
    )


def test_equalized_odds_without_positives_in_a_group_has_a_ci(
    split_model: Any, data: Dataset, tmp_path: Path
) -> None:
    """Defect 8b: group 'a' has no positives. The point estimate is defined (TPR gap over b, c;
    FPR gap over a, b, c) and now so is its interval. The value equals the same gaps computed by
    Fairlearn's MetricFrame over the groups where each rate exists; Fairlearn's own
    equalized_odds_difference scores a's TPR as 0 instead, and the test pins that difference."""
    from fairlearn.metrics import (
        MetricFrame,
        equalized_odds_difference,
        false_positive_rate,
        true_positive_rate,
    )

    data2 = without_positives(data, "a")
    out, _ = run_failing(
        split_model, data2, tmp_path, {}, templates=False, swaps=False, min_group_size=1
    )
    y, p = binary(split_model, data2)
    sf = np.asarray(data2.groups["group"])
    has_pos = sf != "a"
    tpr = MetricFrame(
        metrics=true_positive_rate,
        y_true=y[has_pos],
        y_pred=p[has_pos],
        sensitive_features=sf[has_pos],
    )
    fpr = MetricFrame(metrics=false_positive_rate, y_true=y, y_pred=p, sensitive_features=sf)
    expected = max(tpr.difference(), fpr.difference())
    eo = metric(out, "groups.group.equalized_odds_difference")
    assert eo.value == pytest.approx(expected, abs=1e-12)
    assert eo.ci_low is not None and eo.ci_high is not None and eo.ci_low <= eo.ci_high
    assert eo.ci_low <= eo.value <= eo.ci_high and "simultaneous Wilson" in (eo.ci_method or "")
    ratio = metric(out, "groups.group.equalized_odds_ratio")
    assert ratio.value is not None and ratio.ci_low is not None and ratio.ci_high is not None
    # Fairlearn's convention: a's TPR is 0 (scikit-learn's 0/0 → 0) and enters the gap.
    with_zero = MetricFrame(metrics=true_positive_rate, y_true=y, y_pred=p, sensitive_features=sf)
    assert with_zero.by_group["a"] == 0.0
    fairlearn_value = equalized_odds_difference(y, p, sensitive_features=sf)
    assert fairlearn_value == pytest.approx(
        max(with_zero.difference(), fpr.difference()), abs=1e-12
    )
    assert any("Fairlearn's equalized_odds_difference counts it as 0" in d for d in out.departures)
    row = next(r for r in out.details["groups"]["group"]["by_group"] if r["label"] == "a")
    assert row["tpr"] is None and row["ci"]["tpr"] == [None, None]  # no interval for no rate


def test_group_metrics_small_group_without_positives_direct() -> None:
    """The exact case through group_metrics: 3 groups, 'c' (6 examples) all negative; an
    i.i.d. bootstrap made every resample NaN, so the interval was always null."""
    rng = np.random.default_rng(4)
    groups = ["a"] * 40 + ["b"] * 40 + ["c"] * 6
    y = np.array([int(rng.random() < 0.5) for _ in range(80)] + [0] * 6, dtype=np.int64)
    p = np.where(rng.random(86) < 0.8, y, 1 - y).astype(np.int64)
    res = group_metrics(
        y_true=y,
        y_pred=p,
        sensitive={"g": groups},
        columns=["g"],
        min_group_size=1,
    )
    eo = next(m for m in res.metrics if m.name == "groups.g.equalized_odds_difference")
    assert eo.value is not None and eo.ci_low is not None and eo.ci_high is not None
