"""End to end: `harness run` on the tiny fixture BERT produces a valid record and predictions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema

from harness.records import PREDICTIONS_FILE, load_record, record_json_schema
from harness.store import read_jsonl, sha256_file


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, cwd=cwd, timeout=600, check=False
    )


def test_run_produces_valid_record(tiny_run_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "run1"
    proc = run_cli("run", str(tiny_run_file), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    record = load_record(out)
    assert record.status == "complete"
    jsonschema.validate(json.loads((out / "record.json").read_text()), record_json_schema())
    rows = list(read_jsonl(out / PREDICTIONS_FILE))
    test_split = record.dataset.split("test")
    assert test_split is not None and len(rows) == test_split.n
    assert set(rows[0]) == {"id", "label", "predicted", "probabilities"}
    acc = record.suite("accuracy")
    assert acc is not None and acc.status == "ok"
    accuracy = acc.metric("accuracy")
    assert accuracy is not None and accuracy.value == sum(r["label"] == r["predicted"] for r in rows) / len(rows)
    assert accuracy.ci_low is not None and accuracy.ci_low <= accuracy.value <= accuracy.ci_high
    manifest = json.loads((out / "manifest.json").read_text())
    for entry in manifest["files"]:
        assert sha256_file(out / entry["path"]) == entry["sha256"]
    assert {e["path"] for e in manifest["files"]} >= {"record.json", "predictions.jsonl", "config.yaml", "run.log"}


def test_same_config_and_seed_is_byte_identical(tiny_run_file: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert run_cli("run", str(tiny_run_file), "--out", str(a)).returncode == 0
    assert run_cli("run", str(tiny_run_file), "--out", str(b)).returncode == 0
    assert (a / PREDICTIONS_FILE).read_bytes() == (b / PREDICTIONS_FILE).read_bytes()
    ra, rb = load_record(a), load_record(b)
    assert [s.model_dump(exclude={"wall_time_s"}) for s in ra.suites] == [s.model_dump(exclude={"wall_time_s"}) for s in rb.suites]


def test_rerun_of_complete_run_is_reused(tiny_run_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert run_cli("run", str(tiny_run_file), "--out", str(out)).returncode == 0
    before = (out / "record.json").read_bytes()
    proc = run_cli("run", str(tiny_run_file), "--out", str(out))
    assert proc.returncode == 0
    assert "already complete" in proc.stderr
    assert (out / "record.json").read_bytes() == before
