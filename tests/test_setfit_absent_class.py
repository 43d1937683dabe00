"""A SetFit head fitted without one of the labels: what every consumer of its scores sees.

A real run (in-process ``harness run``): the ``setfit`` fine-tuning stage trains the tiny
sentence encoder and a scikit-learn logistic head on a training split that has no ``neu``
example (``finetune.shots`` refuses such a split, since it wants K of every class; the
whole split, or ``max_train_examples`` drawing no example of a rare class, gets there); the test
split has all three labels. The head's logit for ``neu`` is -inf, so:
- predictions and probabilities are finite, ``neu`` gets probability exactly 0 and is never
  predicted; the probabilities equal scikit-learn's ``predict_proba`` on sentence-transformers
  embeddings with the absent class's column 0;
- the accuracy suite's figures equal scikit-learn's (precision of ``neu`` undefined -> null,
  log loss finite, as ``sklearn.metrics.log_loss`` clips);
- explain with ``target: true`` leaves the ``neu`` examples out and says "not applicable: class
  'neu' was absent …" (IG completeness would be inf - inf), under ``output: logit`` and
  ``probability``; the kept examples' completeness gaps are finite;
- the record is strict JSON and validates against the committed schema.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
import yaml

from harness.models.kinds.base import MSG_ABSENT_CLASS, MSG_NOT_APPLICABLE
from harness.records import PREDICTIONS_FILE, RunRecord, load_record, schema_path
from harness.reports import build_report
from harness.store import read_jsonl
from harness.suites.explain import MSG_LEFT_OUT
from tests.conftest import write_csv
from tests.fixtures_text import make_rows

LABELS = ["neg", "neu", "pos"]
NEU_WORDS = ["average", "okay", "fine", "middling"]
EXPLAIN = {"n_examples": None, "n_steps": 8, "max_n_steps": 16, "n_robustness": 2,
           "n_sanity": 2, "n_bootstrap": 20, "shap_samples": 2, "ks": [20.0, 50.0]}  # fmt: skip


def rows_with_neutral(n: int, seed: int, n_neu: int) -> list[dict[str, str]]:
    rows = make_rows(n, seed)
    for i in range(n_neu):
        rows.append({"id": f"neu{seed}-{i}", "text": f"The film was {NEU_WORDS[i % 4]} really.",
                     "label": "neu", "group": "a"})  # fmt: skip
    return [{**r, "id": f"s{seed}-{r['id']}"} for r in rows]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, tiny_encoder_dir: Path) -> Path:
    from harness.run.pipeline import execute

    root = tmp_path_factory.mktemp("setfit-absent")
    train = write_csv(root / "train.csv", rows_with_neutral(24, 1, 0))  # no 'neu' at all
    test = write_csv(root / "test.csv", rows_with_neutral(8, 2, 4))
    raw = {
        "name": "absent", "seed": 0, "threads": 1,
        "dataset": {"files": {"train": str(train), "test": str(test)}, "labels": LABELS,
                    "columns": {"id": "id", "text": "text", "label": "label"}},
        "finetune": {"base": {"path": str(tiny_encoder_dir)}, "method": "setfit", "batch_size": 8,
                     "max_length": 32, "dev_split": None, "params": {"num_iterations": 1}},
        "suites": [
            {"name": "accuracy", "params": {"n_bootstrap": 50}},
            {"name": "explain", "params": {**EXPLAIN, "target": "true", "output": "logit"}},
            {"name": "explain", "params": {**EXPLAIN, "target": "true", "output": "probability"}},
            {"name": "explain", "params": {**EXPLAIN, "target": "predicted", "output": "logit"}},
        ],
    }  # fmt: skip
    path = root / "run.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_CACHE", str(root / "cache"))
        mp.chdir(root)
        result = execute(path, out_dir=root / "run")
    assert result.record.status == "complete", [(s.name, s.error) for s in result.record.suites]
    return result.run_dir


def record_of(run_dir: Path) -> RunRecord:
    return load_record(run_dir)


def reference_probabilities(run_dir: Path, texts: list[str]) -> np.ndarray:
    """scikit-learn's LogisticRegression.predict_proba on sentence-transformers embeddings,
    laid out over all labels (the absent class's column 0)."""
    from safetensors.torch import load_file
    from sentence_transformers import SentenceTransformer
    from sklearn.linear_model import LogisticRegression

    folder = Path(record_of(run_dir).model.location)
    head = load_file(str(folder / "head.safetensors"))
    clf = LogisticRegression()
    clf.coef_, clf.intercept_ = head["coef"].numpy(), head["intercept"].numpy()
    clf.classes_ = head["classes"].numpy()
    x = SentenceTransformer(str(folder), device="cpu").encode(texts, convert_to_numpy=True)
    out = np.zeros((len(texts), len(LABELS)))
    out[:, clf.classes_] = clf.predict_proba(x.astype(np.float64))
    return out


def test_predictions_give_the_absent_class_probability_zero(run_dir: Path) -> None:
    record = record_of(run_dir)
    assert record.model.kind == "setfit" and record.model.kind_details is not None
    assert record.model.kind_details["head_classes"] == [0, 2]
    assert record.model.kind_details["absent_classes"] == ["neu"]
    rows = list(read_jsonl(run_dir / PREDICTIONS_FILE))
    assert len(rows) == 12 and not [r for r in rows if r.get("error")]
    probs = np.array([r["probabilities"] for r in rows])
    assert np.all(np.isfinite(probs)) and np.all(probs[:, 1] == 0.0)
    assert {r["predicted"] for r in rows} <= {"neg", "pos"}
    test = {r["id"]: r["text"] for r in rows_with_neutral(8, 2, 4)}
    ref = reference_probabilities(run_dir, [test[r["id"]] for r in rows])
    np.testing.assert_allclose(probs, ref, atol=1e-6)


def test_logits_are_minus_infinity_for_the_absent_class_only(run_dir: Path) -> None:
    import torch

    from harness.config import parse_run_config
    from harness.models.kinds.base import absent_labels, load_kind
    from harness.models.sources import LocatedModel

    record = record_of(run_dir)
    folder = Path(record.model.location)
    raw = {"name": "load", "dataset": record.config["dataset"], "suites": [{"name": "accuracy"}],
           "model": {"path": str(folder), "kind": "setfit", "max_length": 32}}  # fmt: skip
    config, _ = parse_run_config(raw, source="test")
    adapter = load_kind(config, LocatedModel(folder=folder, name="sf", source="path"), None)
    assert absent_labels(adapter) == (1,)
    texts = ["The film was okay really.", "Great and wonderful."]
    logits = adapter.logits(adapter.collate(adapter.tokenize(texts)[0]))
    assert torch.all(torch.isneginf(logits[:, 1])) and torch.all(torch.isfinite(logits[:, [0, 2]]))
    np.testing.assert_array_equal(adapter.predict_proba(texts)[:, 1], [0.0, 0.0])


def test_accuracy_figures_equal_scikit_learn_and_are_finite_where_defined(run_dir: Path) -> None:
    from sklearn import metrics as skm

    rows = list(read_jsonl(run_dir / PREDICTIONS_FILE))
    y = np.array([LABELS.index(r["label"]) for r in rows])
    probs = np.array([r["probabilities"] for r in rows])
    pred = probs.argmax(axis=1)
    suite = record_of(run_dir).suites[0]
    values = {m.name: m.value for m in suite.metrics}
    assert all(v is None or math.isfinite(v) for v in values.values())
    assert values["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    p, r, _, _ = skm.precision_recall_fscore_support(
        y, pred, labels=[0, 1, 2], zero_division=np.nan
    )
    assert math.isnan(p[1]) and values["precision.neu"] is None  # never predicted: undefined
    assert values["recall.neu"] == pytest.approx(r[1]) == 0.0
    assert values["precision.pos"] == pytest.approx(p[2]) and values["recall.neg"] == pytest.approx(
        r[0]
    )
    nll = skm.log_loss(y, probs, labels=[0, 1, 2])
    assert math.isfinite(nll) and values["nll"] == pytest.approx(nll, rel=1e-6)
    assert values["brier"] is not None and math.isfinite(values["brier"])


@pytest.mark.parametrize(("index", "output"), [(1, "logit"), (2, "probability")])
def test_explain_true_target_says_not_applicable_for_the_absent_class(
    run_dir: Path, index: int, output: str
) -> None:
    suite = record_of(run_dir).suites[index]
    assert suite.name == "explain" and suite.status == "ok"
    assert suite.params["output"] == output and suite.params["target"] == "true"
    why = MSG_NOT_APPLICABLE.format(reason=MSG_ABSENT_CLASS.format(name="neu"))
    assert suite.details["not_applicable_targets"] == {"neu": {"n_examples": 4, "reason": why}}
    assert MSG_LEFT_OUT.format(k=4, name="neu", why=why) in suite.warnings
    assert "4 evaluation example(s) of true class 'neu' left out" in MSG_LEFT_OUT.format(
        k=4, name="neu", why=why
    )
    assert suite.examples_file is not None
    rows = list(read_jsonl(run_dir / suite.examples_file))
    assert len(rows) == 8 and {r["label_name"] for r in rows} == {"neg", "pos"}
    for row in rows:
        ig = row["deltas"]["ig"]
        assert all(
            v is not None and math.isfinite(v)
            for v in (ig["delta"], ig["f_input"], ig["f_baseline"])
        )
        assert ig["delta"] == pytest.approx(
            sum(row["attributions"]["ig"]) - (ig["f_input"] - ig["f_baseline"]), abs=1e-6
        )
    assert all(m.value is None or math.isfinite(m.value) for m in suite.metrics)
    completeness = suite.metric("ig.completeness.within_tolerance")
    assert completeness is not None and completeness.n == 8


def test_explain_predicted_target_explains_every_example(run_dir: Path) -> None:
    suite = record_of(run_dir).suites[3]
    assert suite.params["target"] == "predicted" and "not_applicable_targets" not in suite.details
    assert suite.examples_file is not None
    rows = list(read_jsonl(run_dir / suite.examples_file))
    assert len(rows) == 12 and {r["target_name"] for r in rows} <= {"neg", "pos"}
    assert all(math.isfinite(r["deltas"]["ig"]["f_input"]) for r in rows)


def test_record_is_strict_json_and_validates_against_the_schema(run_dir: Path) -> None:
    def refuse(constant: str) -> Any:
        raise AssertionError(f"non-finite {constant} in record.json")

    raw = json.loads((run_dir / "record.json").read_text(), parse_constant=refuse)
    jsonschema.validate(raw, json.loads(schema_path().read_text()))
    for suite in record_of(run_dir).suites:
        assert suite.examples_file is not None or suite.name == "accuracy"
        if suite.examples_file:
            for line in (run_dir / suite.examples_file).read_text().splitlines():
                json.loads(line, parse_constant=refuse)


def test_only_absent_class_examples_leave_nothing_to_explain(run_dir: Path) -> None:
    """Every evaluated example is of the absent class: the suite ends ok with no rows and says why
    (the fine-tune is the module run's, found in its cache)."""
    from harness.run.pipeline import execute

    root = run_dir.parent
    test = write_csv(root / "only-neu.csv", rows_with_neutral(0, 3, 3))
    raw = yaml.safe_load((root / "run.yaml").read_text())
    raw["dataset"]["files"]["test"] = str(test)
    raw["suites"] = [
        {"name": "explain", "params": {**EXPLAIN, "target": "true", "output": "logit"}}
    ]
    (root / "only-neu.yaml").write_text(yaml.safe_dump(raw))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HARNESS_CACHE", str(root / "cache"))
        mp.chdir(root)
        result = execute(root / "only-neu.yaml", out_dir=root / "only-neu")
    suite = result.record.suites[0]
    assert result.record.status == "complete" and suite.status == "ok"
    assert suite.details["not_applicable_targets"]["neu"]["n_examples"] == 3
    assert suite.n_examples in (0, None) and suite.metrics == []
    assert "3 evaluation example(s) of true class &#x27;neu&#x27; left out" in build_report(
        result.run_dir
    ).replace("&#39;", "&#x27;")


def test_the_report_says_why_the_class_was_not_explained(run_dir: Path) -> None:
    html = build_report(run_dir).replace("&#39;", "&#x27;")
    assert html.count("4 evaluation example(s) of true class &#x27;neu&#x27; left out") == 2
