"""Robustness under reduced precision: per-example attack outcomes compared with an fp32 run."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.data import Dataset
from harness.models.hf import HFClassifier
from tests.test_robustness import data as data
from tests.test_robustness import run_suite, train_tiny


@pytest.fixture(scope="module")
def trained_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny(tiny_model_dir, tmp_path_factory.mktemp("trained-prec") / "model")


def test_outcome_agreement_matches_a_separate_fp32_run(trained_dir: Path, data: Dataset, tmp_path: Path) -> None:
    kw = {"name": "tiny", "source": "path", "max_length": 32}
    int8 = HFClassifier.load(trained_dir, precision="int8", **kw)
    outcome, rows = run_suite(int8, data, tmp_path / "int8", recipes=["deepwordbug"], n_examples=6,
                              fp32_check_examples=4)  # fmt: skip
    check = outcome.details["fp32_outcome_agreement"]
    assert check["precision"] == "int8" and check["n_examples"] == 4 and check["n_pairs"] == 4
    # The reference: the suite run separately on the fp32 model (same seeds), row by row.
    fp32 = HFClassifier.load(trained_dir, precision="fp32", **kw)
    ref_outcome, ref_rows = run_suite(fp32, data, tmp_path / "fp32", recipes=["deepwordbug"], n_examples=6,
                                      fp32_check_examples=4)  # fmt: skip
    assert "fp32_outcome_agreement" not in ref_outcome.details  # fp32 runs: nothing to compare
    sub = data.sample(6, 0).sample(4, 3)
    keys = [f"deepwordbug:{eid}" for eid in sub.ids]
    same = [rows[k]["result"] == ref_rows[k]["result"] for k in keys]
    assert check["agreement"] == pytest.approx(sum(same) / len(same))
    assert {d["id"] for d in check["disagreements"]} == {k for k, s in zip(keys, same, strict=True) if not s}
    metric = [m for m in outcome.metrics if m.name == "precision.fp32_outcome_agreement"]
    assert metric and metric[0].value == check["agreement"] and metric[0].n == 4
