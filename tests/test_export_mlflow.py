"""Issue 22 (d): `harness export mlflow` into a real local sqlite-backed tracking store, read
back with mlflow.search_runs and compared with the record, value by value."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from harness.records import Metric, dump_record, load_record
from harness.reports.mlflow_export import export_run, mlflow_key
from harness.store import write_manifest
from tests.test_report import make_run_dir

mlflow = pytest.importorskip("mlflow")


def _runs(uri: str, experiment: str = "harness") -> object:
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        return mlflow.search_runs(experiment_names=[experiment], output_format="pandas")
    finally:
        mlflow.set_tracking_uri(previous)


def _odd_names(run: Path) -> Path:
    """The fixture run with a metric whose name MLflow refuses (parentheses, 300 chars)."""
    record = load_record(run)
    suite = record.suites[0]
    odd = [
        Metric(name="p(fresh)|Δ", value=0.25, n=4, higher_is_better=None),
        Metric(name="x" * 300, value=1.5, higher_is_better=None),
    ]
    suite = suite.model_copy(update={"metrics": [*suite.metrics, *odd]})
    record = record.model_copy(update={"suites": [suite, *record.suites[1:]]})
    (run / "record.json").write_text(dump_record(record), encoding="utf-8")
    write_manifest(run)
    return run


def test_export_reads_back_equal_to_the_record(tmp_path: Path) -> None:
    run = _odd_names(make_run_dir(tmp_path))
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    (tmp_path / "store").mkdir()
    done = export_run(run, tracking_uri=uri)
    frame = _runs(uri)
    assert len(frame) == 1
    row = frame.iloc[0]
    record = load_record(run)
    renamed = json.loads(row["tags.harness.renamed_keys"])
    checked = 0
    for suite in record.suites:
        for m in suite.metrics:
            if m.value is None:
                assert f"metrics.{suite.name}.{m.name}" not in frame.columns
                continue
            key = f"{suite.name}.{m.name}"
            safe = next((k for k, v in renamed.items() if v == key), key)
            assert row[f"metrics.{safe}"] == pytest.approx(m.value, rel=0, abs=0)
            for bound, want in (("ci_low", m.ci_low), ("ci_high", m.ci_high)):
                if want is not None:  # each bound on its own (one-sided intervals exist)
                    assert row[f"metrics.{key}.{bound}"] == want
            if m.n is not None:
                low = next((k for k, v in renamed.items() if v == f"{key}.n"), f"{key}.n")
                assert row[f"metrics.{low}"] == m.n
            checked += 1
    assert checked >= 10
    # params: the run file and each suite's parameters
    assert row["params.config.seed"] == str(record.config["seed"])
    for suite in record.suites:
        for name, value in suite.params.items():
            if not isinstance(value, (dict, list)):
                want = value if isinstance(value, str) else json.dumps(value)
                assert row[f"params.suite.{suite.name}.{name}"] == want
    # tags: the digests
    assert row["tags.harness.model.digest"] == record.model.digest
    assert row["tags.harness.config_sha256"] == record.provenance.config_sha256
    for split in record.dataset.splits:
        assert row[f"tags.harness.dataset.split.{split.name}.sha256"] == split.sha256
    assert row["tags.mlflow.runName"] == record.run_id and row["status"] == "FINISHED"
    assert renamed["accuracy.p_fresh___"] == "accuracy.p(fresh)|Δ"  # ( ) | Δ are refused
    assert all(len(k) <= 250 for k in renamed)
    # artifacts: record.json byte-identical, manifest and report present
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    names = {a.path for a in client.list_artifacts(done.run_id)}
    assert names == {"record.json", "manifest.json", f"{record.run_id}.report.html"}
    local = client.download_artifacts(done.run_id, "record.json", str(tmp_path / "dl"))
    assert Path(local).read_bytes() == (run / "record.json").read_bytes()
    # the same record again: found, not duplicated
    again = export_run(run, tracking_uri=uri)
    assert again.reused and again.run_id == done.run_id and len(_runs(uri)) == 1
    assert not math.isnan(float(row["metrics.accuracy.accuracy"]))


def test_cli_default_store_is_beside_the_run_and_errors_are_clear(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "export", "mlflow", str(run)],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path / "run",
        env={**__import__("os").environ, "MLFLOW_TRACKING_URI": ""},
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "mlflow.db").is_file() and "exported as run" in proc.stdout
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == sorted(
        p.name for p in run.iterdir()
    )  # nothing written into the run folder (the cwd)
    missing = subprocess.run(
        [sys.executable, "-m", "harness", "export", "mlflow", str(tmp_path / "nope")],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert missing.returncode == 2 and "nope" in missing.stderr


def test_key_rules() -> None:
    renamed: dict[str, str] = {}
    assert mlflow_key("accuracy.f1 macro/x:y-z_1", renamed) == "accuracy.f1 macro/x:y-z_1"
    assert renamed == {}
    long = mlflow_key("a" * 400, renamed)
    assert len(long) == 250 and renamed[long] == "a" * 400
    assert mlflow_key("a" * 400, {}) != mlflow_key("a" * 399 + "b", {})  # digests differ
