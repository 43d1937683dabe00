"""Reliability promises: unsafe models refused (canaries), hostile model output, reproducibility."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.data import Dataset
from harness.errors import ExitCode
from harness.models.hf import HFClassifier
from harness.records import PREDICTIONS_FILE, load_record
from harness.run.predictions import compute_predictions
from harness.store import read_jsonl

MARKER_NAME = "PWNED"


class Canary:
    """Unpickling this writes a marker file: proof that a pickle was executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.write_text, (self.marker, "executed"))


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=300, check=False)


def run_file(tmp_path: Path, model: Path, data: Path, extra: str = "") -> Path:
    run = tmp_path / "run.yaml"
    run.write_text(
        f"dataset: {{path: {data}, columns: {{id: id}}, labels: [neg, pos], split_fractions: {{test: 1}}}}\n"
        f"model: {{path: {model}, max_length: 32{extra}}}\nsuites: [{{name: accuracy, params: {{n_bootstrap: 50}}}}]\n"
    )
    return run


@pytest.mark.parametrize("weights_name", ["pytorch_model.bin", "model.pt", "weights.pkl"])
def test_pickle_canary_is_refused_and_never_executed(tmp_path: Path, tiny_model_dir: Path, tiny_csv: Path, weights_name: str) -> None:
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    for f in model.glob("*.safetensors"):
        f.unlink()
    marker = tmp_path / MARKER_NAME
    (model / weights_name).write_bytes(pickle.dumps(Canary(marker)))
    proc = harness("run", str(run_file(tmp_path, model, tiny_csv)), "--out", str(tmp_path / "out"))
    assert proc.returncode == ExitCode.MODEL, proc.stderr
    assert f"refusing pickle-based weights ({weights_name})" in proc.stderr
    assert not marker.exists()


def test_safetensors_beside_a_pickle_loads_only_safetensors(tmp_path: Path, tiny_model_dir: Path, tiny_csv: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    marker = tmp_path / MARKER_NAME
    (model / "pytorch_model.bin").write_bytes(pickle.dumps(Canary(marker)))
    proc = harness("run", str(run_file(tmp_path, model, tiny_csv)), "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists()


def test_auto_map_canary_refused_without_trust(tmp_path: Path, tiny_model_dir: Path, tiny_csv: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    marker = tmp_path / MARKER_NAME
    (model / "evil.py").write_text(f"from pathlib import Path\nPath({str(marker)!r}).write_text('executed')\n")
    config = json.loads((model / "config.json").read_text())
    config["auto_map"] = {"AutoModelForSequenceClassification": "evil.Evil", "AutoConfig": "evil.Evil"}
    (model / "config.json").write_text(json.dumps(config))
    proc = harness("run", str(run_file(tmp_path, model, tiny_csv)), "--out", str(tmp_path / "out"))
    assert proc.returncode == ExitCode.MODEL
    assert "asks for custom code (auto_map)" in proc.stderr
    assert not marker.exists()


def test_lint_rejects_unsafe_loading(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(Path(__file__).parents[1] / "scripts", repo / "scripts")
    (repo / "harness").mkdir()
    (repo / "harness" / "ok.py").write_text("import torch\nx = torch.load('f', weights_only=True)\n")
    assert subprocess.run(["bash", str(repo / "scripts/lint-unsafe.sh")], capture_output=True, check=False).returncode == 0
    (repo / "harness" / "bad.py").write_text("import pickle\nx = pickle.load(open('f', 'rb'))\n")
    proc = subprocess.run(["bash", str(repo / "scripts/lint-unsafe.sh")], capture_output=True, text=True, check=False)
    assert proc.returncode == 1 and "bad.py" in proc.stderr


class Flaky:
    """Wraps a real model: raises on one input and returns NaN scores for another."""

    def __init__(self, inner: HFClassifier) -> None:
        self.inner = inner
        self.label_names = inner.label_names
        self.device = inner.device

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if any("EXPLODE" in t for t in texts):
            raise RuntimeError("cannot handle this input")
        probs = self.inner.predict_proba(texts)
        for i, t in enumerate(texts):
            if "NANNAN" in t:
                probs[i] = np.nan
        return probs

    def info(self) -> Any:
        return self.inner.info()


def test_model_that_raises_or_returns_nan_costs_one_row(tmp_path: Path, tiny_model_dir: Path) -> None:
    inner = HFClassifier.load(tiny_model_dir, name="tiny", source="path", max_length=32)
    texts = ("good film", "EXPLODE here", "dull plot", "NANNAN", "great acting")
    data = Dataset(name="t", split="test", ids=tuple(f"e{i}" for i in range(5)), texts=texts, labels=(1, 0, 0, 1, 1), label_names=("neg", "pos"))
    preds = compute_predictions(Flaky(inner), data, tmp_path, lambda d, t: None)
    assert preds.ids == ("e0", "e2", "e4")
    assert set(preds.errors) == {"e1", "e3"}
    assert "RuntimeError: cannot handle this input" in preds.errors["e1"]
    assert "non-finite" in preds.errors["e3"]
    rows = list(read_jsonl(tmp_path / PREDICTIONS_FILE))
    assert [r["id"] for r in rows] == list(data.ids)
    assert rows[1]["predicted"] is None and rows[1]["probabilities"] is None


def test_nan_weights_model_completes_with_error_rows(tmp_path: Path, tiny_model_dir: Path, tiny_csv: Path) -> None:
    from safetensors.torch import load_file, save_file

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    weights = load_file(model / "model.safetensors")
    weights["classifier.weight"][:] = float("nan")
    save_file(weights, model / "model.safetensors", metadata={"format": "pt"})
    out = tmp_path / "out"
    proc = harness("run", str(run_file(tmp_path, model, tiny_csv)), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    acc = load_record(out).suite("accuracy")
    assert acc is not None
    n_errors = acc.metric("n_errors")
    assert n_errors is not None and n_errors.value == 120
    assert acc.metric("accuracy").value is None  # type: ignore[union-attr]


def test_argmax_identical_across_batch_sizes(tiny_model_dir: Path, tiny_csv: Path) -> None:
    import csv

    texts = [r["text"] for r in csv.DictReader(tiny_csv.open())]
    texts += ["word " * 40, "x", "Ünïcödé ‮ right-to-left \u200b zero width"]
    one = HFClassifier.load(tiny_model_dir, name="t", source="path", max_length=32, batch_size=1).predict_proba(texts)
    many = HFClassifier.load(tiny_model_dir, name="t", source="path", max_length=32, batch_size=32).predict_proba(texts)
    assert (one.argmax(axis=1) == many.argmax(axis=1)).all()
    np.testing.assert_allclose(one, many, atol=1e-5)


def test_rerun_reports_identical(tiny_run_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "orig"
    assert harness("run", str(tiny_run_file), "--out", str(out)).returncode == 0
    proc = harness("rerun", str(out), "--out", str(tmp_path / "replay"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "identical" in proc.stdout
    # A tampered prediction is reported as a difference.
    lines = (out / PREDICTIONS_FILE).read_text().splitlines()
    row = json.loads(lines[0])
    row["probabilities"] = [0.0, 1.0]
    lines[0] = json.dumps(row)
    (out / PREDICTIONS_FILE).write_text("\n".join(lines) + "\n")
    proc = harness("rerun", str(out), "--out", str(tmp_path / "replay2"))
    assert proc.returncode == ExitCode.REGRESSION
    assert "predictions.jsonl" in proc.stdout


def test_rerun_leaves_out_what_measures_the_machine() -> None:
    """The suite's ``measures_machine`` tag decides, whatever its name; timings always."""
    from harness.records import Metric, RunRecord, SuiteCapabilities, SuiteRecord
    from harness.run.rerun import _comparable_metrics

    def suite(name: str, caps: SuiteCapabilities | None) -> SuiteRecord:
        metrics = [
            Metric(name="score", value=0.5, higher_is_better=True),
            Metric(name="wall_s", value=1.0, higher_is_better=None),
        ]
        return SuiteRecord(name=name, version="1", params={}, status="ok", metrics=metrics,
                           wall_time_s=1.0, capabilities=caps)  # fmt: skip

    record = RunRecord.model_construct(suites=[
        suite("stopwatch", SuiteCapabilities(measures_machine=True)),
        suite("latency", None),  # a record older than 1.2: the built-in suite's tags
        suite("accuracy", SuiteCapabilities()),
    ])  # fmt: skip
    assert _comparable_metrics(record) == {"accuracy.score": 0.5}


def test_resume_refuses_results_of_another_model(tmp_path: Path, tiny_model_dir: Path, tiny_csv: Path) -> None:
    """Same config, same folder, different weights at the model path: no cross hits."""
    from safetensors.torch import load_file, save_file

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    run = run_file(tmp_path, model, tiny_csv)
    out = tmp_path / "out"
    assert harness("run", str(run), "--out", str(out)).returncode == 0
    record = json.loads((out / "record.json").read_text())
    record["status"] = "incomplete"  # as if the run had been interrupted
    (out / "record.json").write_text(json.dumps(record))
    weights = load_file(model / "model.safetensors")
    weights["classifier.bias"] += 1.0
    save_file(weights, model / "model.safetensors", metadata={"format": "pt"})
    proc = harness("run", str(run), "--out", str(out))
    assert proc.returncode == ExitCode.USAGE
    assert "holds partial results of the same config but a different model digest" in proc.stderr
    forced = harness("run", str(run), "--out", str(out), "--force")
    assert forced.returncode == 0, forced.stderr
    assert load_record(out).model.digest != record["model"]["digest"]


def test_finetune_cache_keys_carry_model_identity(tmp_path: Path, tiny_csv: Path) -> None:
    """Two different base models against one cache folder: two entries, zero cross hits."""
    import logging

    from harness.config import parse_run_config
    from harness.data import load_bundle
    from harness.models.finetune.job import run_finetune
    from tests.conftest import build_tiny_bert

    cache = tmp_path / "cache"
    results = []
    for seed in (0, 1):
        base = build_tiny_bert(tmp_path / f"base{seed}", seed=seed)
        raw = {
            "seed": 0,
            "threads": 1,
            "dataset": {"path": str(tiny_csv), "columns": {"id": "id"}, "labels": ["neg", "pos"], "split_fractions": {"train": 0.6, "dev": 0.2, "test": 0.2}},
            "model": {"max_length": 32},
            "finetune": {"base": {"path": str(base)}, "max_steps": 2, "batch_size": 8, "max_length": 32},
            "suites": [{"name": "accuracy"}],
        }
        config, _ = parse_run_config(raw, source="t")
        bundle = load_bundle(config.dataset)
        results.append(run_finetune(config, bundle, cache_root=cache, logger=logging.getLogger("t"), progress=False))
    assert not results[0].cache_hit and not results[1].cache_hit
    assert results[0].checkpoint != results[1].checkpoint and results[0].digest != results[1].digest
    assert len([p for p in (cache / "finetune").iterdir() if p.is_dir()]) == 2
