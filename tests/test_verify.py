"""harness verify: every one-byte change, extra or missing file, re-written manifest, bad signature
and (with --replay) every prediction that no longer follows from the model is caught."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from harness.audit.replay import replay_into
from harness.audit.verify import MSG_NO_PREDICTIONS, check_manifest, verify_run
from harness.cli.app import app as harness_app
from harness.errors import ExitCode
from harness.records import PREDICTIONS_FILE, SuiteCapabilities, dump_record, load_record
from harness.store import atomic_write_text, example_line, read_jsonl, write_manifest
from tests.test_gate import make_run

RUN_FILES = [
    "record.json",
    "predictions.jsonl",
    "examples/accuracy.jsonl",
    "config.yaml",
    "run.log",
    "manifest.json",
]


def app() -> typer.Typer:
    return harness_app


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    return make_run(tmp_path / "run", [i % 5 != 0 for i in range(12)])


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_untouched_run_verifies(run_dir: Path) -> None:
    report = verify_run(run_dir)
    assert report.ok, report.problems
    assert sorted(RUN_FILES) == sorted(
        p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file()
    )


@pytest.mark.parametrize("rel", RUN_FILES)
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_one_byte_change_in_any_file_is_caught(run_dir: Path, rel: str, where: str) -> None:
    path = run_dir / rel
    size = path.stat().st_size
    flip(path, {"first": 0, "middle": size // 2, "last": size - 1}[where])
    report = verify_run(run_dir)
    assert not report.ok
    assert any(p.startswith(rel) or rel in p for p in report.problems), report.problems
    result = CliRunner().invoke(app(), ["verify", str(run_dir)])
    assert result.exit_code == ExitCode.REGRESSION and "TAMPERED" in result.output


def test_every_byte_of_the_manifest_is_protected(run_dir: Path) -> None:
    """The manifest is canonical JSON, so any edit shows, even in whitespace or key order."""
    manifest = run_dir / "manifest.json"
    original = manifest.read_bytes()
    for offset in range(len(original)):
        flip(manifest, offset)
        assert check_manifest(run_dir), (
            f"byte {offset} ({chr(original[offset])!r}) changed unnoticed"
        )
        manifest.write_bytes(original)
    assert check_manifest(run_dir) == []


def test_extra_and_missing_files(run_dir: Path) -> None:
    (run_dir / "examples" / "injected.jsonl").write_text('{"id": "x"}\n')
    (run_dir / "run.log").unlink()
    problems = verify_run(run_dir).problems
    assert (
        "examples/injected.jsonl: present in the run folder but not listed in the manifest"
        in problems
    )
    assert "run.log: listed in the manifest but missing from the run folder" in problems


def _rewrite_predictions(run_dir: Path, change: Any) -> None:
    rows = list(read_jsonl(run_dir / PREDICTIONS_FILE))
    change(rows)
    atomic_write_text(run_dir / PREDICTIONS_FILE, "".join(example_line(r) + "\n" for r in rows))


def test_consistency_catches_edits_behind_a_rewritten_manifest(run_dir: Path) -> None:
    """A tamperer who rewrites the manifest still fails the record <-> predictions checks."""

    def flip_first_wrong(rows: list[dict[str, Any]]) -> None:
        row = next(r for r in rows if r["label"] != r["predicted"])
        row["predicted"] = row["label"]
        row["probabilities"] = list(reversed(row["probabilities"]))

    _rewrite_predictions(run_dir, flip_first_wrong)
    write_manifest(run_dir)
    problems = verify_run(run_dir).problems
    assert (
        len(problems) == 1
        and "accuracy.accuracy is" in problems[0]
        and "predictions.jsonl gives" in problems[0]
    )


def test_consistency_catches_predicted_not_argmax_and_count(run_dir: Path) -> None:
    def edit(rows: list[dict[str, Any]]) -> None:
        rows[0]["probabilities"] = list(reversed(rows[0]["probabilities"]))
        rows.pop()

    _rewrite_predictions(run_dir, edit)
    write_manifest(run_dir)
    problems = " | ".join(verify_run(run_dir).problems)
    assert "not the argmax" in problems
    assert "has n=12 but predictions.jsonl has 11 rows" in problems


# ------------------------------------------------------------------ signatures


def test_prediction_checks_follow_capabilities_not_names(run_dir: Path) -> None:
    """The record <-> predictions checks apply to every suite whose capabilities say it is scored
    from predictions.jsonl (here a renamed copy of the accuracy suite), and to no other."""
    record = load_record(run_dir)
    accuracy = record.suites[0]
    wrong = [m.model_copy(update={"value": 0.0}) if m.name == "accuracy" else m for m in accuracy.metrics]
    scored = accuracy.model_copy(
        update={"name": "scored", "metrics": wrong, "capabilities": SuiteCapabilities(prediction_metrics=True)}
    )
    unscored = scored.model_copy(update={"name": "unscored", "capabilities": SuiteCapabilities()})
    atomic_write_text(
        run_dir / "record.json", dump_record(record.model_copy(update={"suites": [accuracy, scored, unscored]}))
    )
    write_manifest(run_dir)
    problems = verify_run(run_dir).problems
    assert len(problems) == 1 and problems[0].startswith("record.json: scored.accuracy is 0.0"), problems
    (run_dir / PREDICTIONS_FILE).unlink()
    write_manifest(run_dir)
    problems = verify_run(run_dir).problems
    assert problems == [MSG_NO_PREDICTIONS.format(path=run_dir / PREDICTIONS_FILE, suite="accuracy")]


def _keys(folder: Path) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    private, public = folder / "key.pem", folder / "key.pub.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def test_signature_round_trip_and_forgery(run_dir: Path, tmp_path: Path) -> None:
    private, public = _keys(tmp_path)
    result = CliRunner().invoke(app(), ["sign", str(run_dir), "--key", str(private)])
    assert result.exit_code == 0, result.output
    ok = CliRunner().invoke(app(), ["verify", str(run_dir), "--key", str(public)])
    assert ok.exit_code == 0 and "signature" in ok.output, ok.output
    # Someone else's key does not verify.
    (tmp_path / "other").mkdir()
    _, other_public = _keys(tmp_path / "other")
    assert any("does not match" in p for p in verify_run(run_dir, public_key=other_public).problems)
    # Tamper with a file and rewrite the manifest: the manifest checks pass, the signature does not.
    atomic_write_text(run_dir / "run.log", "nothing to see\n")
    write_manifest(run_dir)
    problems = verify_run(run_dir, public_key=public).problems
    assert problems == [
        f"{run_dir / 'manifest.sig'}: the signature does not match manifest.json under {public}"
    ]


def test_missing_signature_and_bad_key(run_dir: Path, tmp_path: Path) -> None:
    _, public = _keys(tmp_path)
    assert any("no signature" in p for p in verify_run(run_dir, public_key=public).problems)
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    result = CliRunner().invoke(app(), ["verify", str(run_dir), "--key", str(bad)])
    assert (
        result.exit_code == ExitCode.USAGE and "not an unencrypted PEM public key" in result.output
    )
    result = CliRunner().invoke(app(), ["verify", str(tmp_path / "nope")])
    assert result.exit_code == ExitCode.USAGE and "not a run folder" in result.output


# ------------------------------------------------------------------ replay with the tiny model


@pytest.fixture(scope="module")
def real_run(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, tiny_csv: Path
) -> Path:
    """A run folder written by the real runner: the tiny BERT on the tiny CSV, accuracy suite.

    split_fractions lists train before test on purpose: records store the config with sorted
    keys, and replay must still rebuild the same split.
    """
    from harness.run.pipeline import execute

    folder = tmp_path_factory.mktemp("real-run")
    run_file = folder / "run.yaml"
    run_file.write_text(
        f"""
name: tiny
seed: 0
threads: 1
dataset:
  path: {tiny_csv}
  columns: {{id: id, text: text, label: label, groups: [group]}}
  labels: [neg, pos]
  split_fractions: {{train: 0.5, test: 0.5}}
model:
  path: {tiny_model_dir}
  max_length: 32
  batch_size: 16
suites:
  - name: accuracy
    params: {{n_bootstrap: 50}}
""",
        encoding="utf-8",
    )
    return execute(run_file, out_dir=folder / "run").run_dir


@pytest.fixture()
def replay_run(real_run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(real_run, tmp_path / "run"))


def test_real_run_verifies_and_any_byte_change_is_caught(replay_run: Path) -> None:
    assert verify_run(replay_run).ok
    files = sorted(p for p in replay_run.rglob("*") if p.is_file())
    assert {"record.json", "predictions.jsonl", "manifest.json"} <= {p.name for p in files}
    for path in files:
        original = path.read_bytes()
        for offset in {0, len(original) // 2, len(original) - 1}:
            flip(path, offset)
            assert not verify_run(replay_run).ok, f"{path.name} byte {offset}"
            path.write_bytes(original)
    assert verify_run(replay_run).ok


def test_replay_reproduces_and_catches_a_forged_prediction(replay_run: Path) -> None:
    report = replay_into(verify_run(replay_run), 10)
    assert report.ok, report.problems
    n_rows = sum(1 for _ in read_jsonl(replay_run / PREDICTIONS_FILE))

    # Forge one prediction consistently (probabilities swapped, record accuracy updated, manifest
    # rewritten): only re-predicting shows that the model does not say this.
    rows = list(read_jsonl(replay_run / PREDICTIONS_FILE))
    forged = rows[3]
    forged["probabilities"] = list(reversed(forged["probabilities"]))
    forged["predicted"] = "pos" if forged["predicted"] == "neg" else "neg"
    atomic_write_text(replay_run / PREDICTIONS_FILE, "".join(example_line(r) + "\n" for r in rows))
    record = load_record(replay_run)
    acc = record.suite("accuracy")
    assert acc is not None
    new_acc = float(np.mean([r["label"] == r["predicted"] for r in rows]))
    metrics = [
        m.model_copy(update={"value": new_acc}) if m.name == "accuracy" else m for m in acc.metrics
    ]
    suites = [acc.model_copy(update={"metrics": metrics})]
    atomic_write_text(
        replay_run / "record.json", dump_record(record.model_copy(update={"suites": suites}))
    )
    write_manifest(replay_run)
    assert verify_run(replay_run).ok  # every static check passes

    result = CliRunner().invoke(app(), ["verify", str(replay_run), "--replay", str(n_rows)])
    assert result.exit_code == ExitCode.REGRESSION
    assert (
        f"1 of {n_rows} re-predicted example(s) differ" in result.output
        and forged["id"] in result.output
    )


def test_replay_refuses_a_different_model(replay_run: Path) -> None:
    record = json.loads((replay_run / "record.json").read_text())
    record["model"]["digest"] = "0" * 64
    atomic_write_text(
        replay_run / "record.json", json.dumps(record, sort_keys=True, indent=2) + "\n"
    )
    write_manifest(replay_run)
    problems = replay_into(verify_run(replay_run), 3).problems
    assert len(problems) == 1 and "refusing to replay with a different model" in problems[0]


def test_gate_reads_real_run_folders(real_run: Path, tmp_path: Path) -> None:
    """The gate's per-example tests find what the real runner and accuracy suite write."""
    pol = tmp_path / "gate.yaml"
    pol.write_text(
        "n_boot: 200\nrules:\n  - accuracy.accuracy: -1pt significant\n"
        "  - accuracy.ece: +0.01 significant\n  - accuracy.f1.pos: -1pt significant\n"
    )
    out = tmp_path / "verdict.json"
    args = ["gate", "--baseline", str(real_run), "--candidate", str(real_run / "record.json")]
    result = CliRunner().invoke(app(), [*args, "--policy", str(pol), "--json", str(out)])
    assert result.exit_code == ExitCode.OK, result.output
    tests = [r["test"] for r in json.loads(out.read_text())["rules"]]
    assert [t["method"] for t in tests] == [
        "exact McNemar",
        "paired randomization (exact)",
        "paired randomization (exact)",
    ]
    assert all(t["n"] == load_record(real_run).dataset.split("test").n for t in tests)  # type: ignore[union-attr]


def test_replay_skips_rows_without_a_prediction(replay_run: Path) -> None:
    """A valid error row (predicted null with its reason) has nothing to reproduce."""
    from harness.audit.replay import replay

    rows = list(read_jsonl(replay_run / PREDICTIONS_FILE))
    failed = rows[2]["id"]
    rows[2] = {"id": failed, "label": rows[2]["label"], "predicted": None, "probabilities": None,
               "error": "model raised RuntimeError: boom"}
    atomic_write_text(replay_run / PREDICTIONS_FILE, "".join(example_line(r) + "\n" for r in rows))
    problems = replay(replay_run, load_record(replay_run), len(rows))
    assert problems == [], problems
