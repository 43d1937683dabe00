"""``harness verify``: is this run folder exactly what the run wrote, and does it hang together?

Checks, each reported as a separate problem so an auditor sees everything at once:

1. **Manifest.** Every file's size and sha256 match ``manifest.json``; a file missing from the
   folder or present but not listed is tampering; the tree digest matches; the manifest itself
   is in canonical form (so even a whitespace edit of it shows).
2. **Signature** (optional). ``manifest.sig`` is an Ed25519 signature over the manifest bytes,
   written by ``harness sign`` and checked against a public key with ``--key``.
3. **Consistency.** The record validates; predictions.jsonl parses, each ``predicted`` is the
   argmax of its probabilities, the accuracy recomputed from it equals the record's (for every
   suite whose capabilities say its metrics are ``prediction_metrics``, such as the accuracy
   suite), and the counts agree; each suite's examples file has the rows the record says.
4. **Attestations** (``attestations.jsonl``, written by ``harness attest``): each signature, the
   chain between them, and that the run has not changed since each was signed; every problem
   names the attestation (``harness.audit.attest``). ``--attester-key`` also requires each to be
   signed by one of the given public keys.
5. **Replay** (optional, ``--replay N``): re-predict N deterministically chosen examples with the
   model the record names (its digest checked first) and compare; see ``replay``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from harness.errors import ConfigError, ExitCode, HarnessError, RecordError
from harness.gate.inputs import PredictionTable, read_predictions
from harness.records import (
    ATTESTATIONS_FILE,
    MANIFEST_FILE,
    PREDICTIONS_FILE,
    RunRecord,
    SuiteRecord,
    canonical_json,
    load_record,
)
from harness.store import atomic_write_text, sha256_file

SIGNATURE_FILE = "manifest.sig"
ACCURACY_TOLERANCE = 1e-9
PROBABILITY_TOLERANCE = 1e-4
MSG_TAMPERED = "{path}: sha256 differs from the manifest (expected {expected}…, found {actual}…)"
MSG_SIZE = "{path}: size differs from the manifest (expected {expected} bytes, found {actual})"
MSG_MISSING = "{path}: listed in the manifest but missing from the run folder"
MSG_EXTRA = "{path}: present in the run folder but not listed in the manifest"
MSG_NO_PREDICTIONS = "{path}: missing, but the record's suite {suite!r} is scored from it"


class VerifyError(HarnessError):
    exit_code = ExitCode.USAGE


@dataclass
class VerifyReport:
    run_dir: Path
    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)  # what was checked, for the summary
    record: RunRecord | None = None  # the record, when it could be read

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def exit_code(self) -> int:
        return int(ExitCode.OK if self.ok else ExitCode.REGRESSION)


# ------------------------------------------------------------------ manifest


def _listed_files(run_dir: Path) -> set[str]:
    """Files of the folder the manifest must cover (write_manifest skips dot-files and itself)."""
    return {
        p.relative_to(run_dir).as_posix()
        for p in run_dir.rglob("*")
        if p.is_file()
        and p.name not in (MANIFEST_FILE, SIGNATURE_FILE, ATTESTATIONS_FILE)
        and not p.name.startswith(".")
    }


def check_manifest(run_dir: Path) -> list[str]:
    path = run_dir / MANIFEST_FILE
    if not path.is_file():
        return [f"{path}: no manifest; the run folder cannot be verified"]
    raw = path.read_bytes()
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [f"{path}: not valid JSON ({exc}); the manifest was altered"]
    problems: list[str] = []
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        return [f"{path}: expected an object with a 'files' list; the manifest was altered"]
    if canonical_json(manifest).encode("utf-8") != raw:
        problems.append(
            f"{path}: not in canonical form; the manifest was edited after it was written"
        )
    if manifest.get("algorithm") != "sha256":
        problems.append(
            f"{path}: unknown algorithm {manifest.get('algorithm')!r} (expected 'sha256')"
        )
    listed: dict[str, dict[str, Any]] = {}
    for i, entry in enumerate(manifest["files"]):
        if not isinstance(entry, dict) or not {"path", "sha256", "size"} <= set(entry):
            problems.append(f"{path}: files[{i}] lacks path, sha256 or size")
            continue
        rel = str(entry["path"])
        pure = PurePosixPath(rel)
        if pure.is_absolute() or ".." in pure.parts:
            problems.append(f"{path}: files[{i}] path {rel!r} leaves the run folder")
            continue
        listed[rel] = entry
    outer = hashlib.sha256()
    for rel in sorted(listed):
        entry = listed[rel]
        file = run_dir / rel
        if not file.is_file():
            problems.append(MSG_MISSING.format(path=rel))
            continue
        size = file.stat().st_size
        if size != entry["size"]:
            problems.append(MSG_SIZE.format(path=rel, expected=entry["size"], actual=size))
        actual = sha256_file(file)
        if actual != entry["sha256"]:
            problems.append(
                MSG_TAMPERED.format(
                    path=rel, expected=str(entry["sha256"])[:12], actual=actual[:12]
                )
            )
        outer.update(f"{rel}\0{entry['sha256']}\n".encode())
    if manifest.get("tree_sha256") != outer.hexdigest():
        problems.append(f"{path}: tree_sha256 does not match the listed files")
    problems += [MSG_EXTRA.format(path=rel) for rel in sorted(_listed_files(run_dir) - set(listed))]
    return problems


# ------------------------------------------------------------------ signing


def _load_key(path: Path, *, private: bool) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    if not path.is_file():
        raise ConfigError(f"{path}: key file not found")
    data = path.read_bytes()
    try:
        key = (
            serialization.load_pem_private_key(data, password=None)
            if private
            else serialization.load_pem_public_key(data)
        )
    except (ValueError, TypeError) as exc:
        kind = "private" if private else "public"
        raise ConfigError(f"{path}: not an unencrypted PEM {kind} key ({exc})") from None
    wanted = ed25519.Ed25519PrivateKey if private else ed25519.Ed25519PublicKey
    if not isinstance(key, wanted):
        raise ConfigError(
            f"{path}: expected an Ed25519 key (e.g. `openssl genpkey -algorithm ed25519`)"
        )
    return key


def sign_run(run_dir: Path, private_key: Path) -> Path:
    """Sign manifest.json with an Ed25519 private key; writes manifest.sig (base64)."""
    manifest = run_dir / MANIFEST_FILE
    if not manifest.is_file():
        raise VerifyError(f"{manifest}: no manifest to sign")
    key = _load_key(private_key, private=True)
    signature = key.sign(manifest.read_bytes())
    out = run_dir / SIGNATURE_FILE
    atomic_write_text(out, base64.b64encode(signature).decode("ascii") + "\n")
    return out


def check_signature(run_dir: Path, public_key: Path) -> list[str]:
    from cryptography.exceptions import InvalidSignature

    key = _load_key(public_key, private=False)
    sig_path = run_dir / SIGNATURE_FILE
    manifest = run_dir / MANIFEST_FILE
    if not sig_path.is_file():
        return [f"{sig_path}: no signature, but --key was given"]
    if not manifest.is_file():
        return [f"{manifest}: no manifest to check the signature against"]
    try:
        signature = base64.b64decode(sig_path.read_bytes().strip(), validate=True)
    except ValueError:
        return [f"{sig_path}: not base64"]
    try:
        key.verify(signature, manifest.read_bytes())
    except InvalidSignature:
        return [f"{sig_path}: the signature does not match manifest.json under {public_key}"]
    return []


# ------------------------------------------------------------------ consistency


def check_consistency(run_dir: Path) -> tuple[list[str], RunRecord | None]:
    try:
        record = load_record(run_dir)
    except RecordError as exc:
        return [exc.message], None
    problems: list[str] = []
    pred_path = run_dir / PREDICTIONS_FILE
    labels = list(record.dataset.label_names or record.model.label_names)
    table = None
    if pred_path.is_file():
        try:
            table = read_predictions(pred_path, labels)
        except RecordError as exc:
            problems.append(exc.message)
    elif scored := _prediction_suites(record):
        problems.append(MSG_NO_PREDICTIONS.format(path=pred_path, suite=scored[0].name))
    if table is not None and len(table.ids):
        problems += _prediction_problems(record, table)
    for suite in record.suites:
        if suite.examples_file is None:
            continue
        file = run_dir / suite.examples_file
        if not file.is_file():
            problems.append(
                f"{suite.examples_file}: suite {suite.name!r} names it but it is missing"
            )
            continue
        n = sum(1 for line in file.read_bytes().splitlines() if line.strip())
        if n != suite.n_examples:
            problems.append(
                f"{suite.examples_file}: {n} rows, "
                f"but the record says n_examples={suite.n_examples}"
            )
    from harness.audit.review import consistency_problems

    problems += consistency_problems(run_dir, record)  # imported human reviews (reviews/)
    return problems, record


def _prediction_problems(record: RunRecord, full: PredictionTable) -> list[str]:
    """predictions.jsonl against itself and the record. Rows without a prediction (an error
    row: ``predicted`` null with its reason) count toward the split, not toward accuracy."""
    problems: list[str] = []
    table = full.scored()
    if table.probabilities.size and len(table.ids):
        argmax = table.probabilities.argmax(axis=1)
        bad = [table.ids[i] for i in np.flatnonzero(argmax != table.predicted)]
        if bad:
            problems.append(
                f"{PREDICTIONS_FILE}: {len(bad)} row(s) whose 'predicted' is not the argmax of "
                f"'probabilities' (first: id {bad[0]!r})"
            )
        sums = table.probabilities.sum(axis=1)
        off = np.flatnonzero(np.abs(sums - 1.0) > PROBABILITY_TOLERANCE)
        if off.size:
            problems.append(
                f"{PREDICTIONS_FILE}: {off.size} row(s) whose probabilities do not sum to 1"
            )
    for suite in _prediction_suites(record):
        problems += _accuracy_problems(suite, table)
    split = record.dataset.split(record.dataset.eval_split)
    max_examples = (record.config.get("dataset") or {}).get("max_examples")
    if split is not None and max_examples is None and split.n != len(full.ids):
        problems.append(
            f"record.json: the {split.name!r} split has n={split.n} "
            f"but predictions.jsonl has {len(full.ids)} rows"
        )
    return problems


def _prediction_suites(record: RunRecord) -> list[SuiteRecord]:
    """The suites scored from predictions.jsonl (their capabilities say so; the accuracy suite)."""
    return [s for s in record.suites if s.caps().prediction_metrics]


def _accuracy_problems(suite: SuiteRecord, table: PredictionTable) -> list[str]:
    """The suite's recorded ``accuracy`` (value and n) against the answered rows."""
    problems: list[str] = []
    metric = suite.metric("accuracy")
    if metric is not None and metric.value is not None and len(table.ids):
        recomputed = float(np.mean(table.predicted == table.labels))
        if abs(recomputed - metric.value) > ACCURACY_TOLERANCE:
            problems.append(
                f"record.json: {suite.name}.accuracy is {metric.value!r} "
                f"but predictions.jsonl gives {recomputed!r}"
            )
    if metric is not None and metric.n is not None and metric.n != len(table.ids):
        problems.append(
            f"record.json: {suite.name}.accuracy has n={metric.n} "
            f"but predictions.jsonl has {len(table.ids)} answered rows"
        )
    return problems


# ------------------------------------------------------------------ top level


def verify_run(
    run_dir: Path, *, public_key: Path | None = None, attester_keys: list[Path] | None = None
) -> VerifyReport:
    """The manifest, the signature (with ``public_key``) and the record's consistency with its
    own files. Re-predicting examples (``--replay``) is ``harness.audit.replay.replay_into``:
    it needs the model, so this module never imports it (consumers such as the leaderboard
    verify entries without torch)."""
    if not run_dir.is_dir():
        raise VerifyError(f"{run_dir}: not a run folder")
    report = VerifyReport(run_dir)
    manifest_problems = check_manifest(run_dir)
    report.problems += manifest_problems
    report.checked.append("manifest")
    if public_key is not None:
        report.problems += check_signature(run_dir, public_key)
        report.checked.append("signature")
    problems, record = check_consistency(run_dir)
    report.problems += problems
    report.checked.append("record and predictions")
    report.record = record
    _attestations(report, manifest_problems, attester_keys)
    return report


def _attestations(
    report: VerifyReport, manifest_problems: list[str], attester_keys: list[Path] | None
) -> None:
    """Every attestation in the folder (``harness.audit.attest``), each problem naming it."""
    from harness.audit.attest import check_attestations

    try:
        statuses = check_attestations(
            report.run_dir, trusted_keys=attester_keys, manifest_problems=manifest_problems
        )
    except RecordError as exc:  # an unreadable attestations file is a finding, not a crash
        report.problems.append(exc.message)
        return
    if statuses:
        report.checked.append(f"{len(statuses)} attestation(s)")
    for status in statuses:
        report.problems += status.problems
