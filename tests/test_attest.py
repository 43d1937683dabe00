"""Sign-off: harness attest appends Ed25519-signed attestations; verify checks each one and names
the one a change breaks; the report shows who signed what and when."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from harness.audit.attest import (
    DOMAIN,
    MSG_BAD_ROLE,
    MSG_BAD_SIGNATURE,
    MSG_CHAIN,
    attest_run,
    check_attestations,
    read_attestations,
)
from harness.audit.verify import verify_run
from harness.errors import ConfigError, HarnessError
from harness.leaderboard.synthetic import Spec, write_run
from harness.records import ATTESTATIONS_FILE
from harness.reports import build_report
from harness.store import sha256_file


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=120, check=False)


def _keys(folder: Path, name: str) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate()
    private, public = folder / f"{name}.pem", folder / f"{name}.pub.pem"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


@pytest.fixture()
def run(tmp_path: Path) -> Path:
    return write_run(tmp_path / "run", Spec("signed model", accuracy=0.8))


def test_sign_verify_tamper_and_a_second_signer(run: Path, tmp_path: Path) -> None:
    jane, jane_pub = _keys(tmp_path, "jane")
    omar, omar_pub = _keys(tmp_path, "omar")
    done = harness("attest", str(run), "--role", "validator", "--name", "Jane Doe",
                   "--statement", "Validated for triage use.", "--key", str(jane))
    assert done.returncode == 0, done.stderr
    assert "attestation #1 (validator 'Jane Doe', signed " in done.stdout
    ok = harness("verify", str(run))
    assert ok.returncode == 0 and "1 attestation(s)" in ok.stdout, ok.stdout
    # A second signer appends a second attestation; both hold.
    done = harness("attest", str(run), "--role", "approver", "--name", "Omar Haddad",
                   "--statement", "Approved.", "--key", str(omar))
    assert done.returncode == 0 and "attestation #2 (approver 'Omar Haddad'" in done.stdout
    attestations, _ = read_attestations(run)
    assert [a.payload["name"] for a in attestations] == ["Jane Doe", "Omar Haddad"]
    assert attestations[0].payload["manifest_sha256"] == sha256_file(run / "manifest.json")
    assert harness("verify", str(run), "--attester-key", str(jane_pub), "--attester-key", str(omar_pub)).returncode == 0
    # One byte of the run changes: verify fails and names each attestation.
    predictions = run / "predictions.jsonl"
    data = bytearray(predictions.read_bytes())
    data[10] ^= 0x01
    predictions.write_bytes(bytes(data))
    bad = harness("verify", str(run))
    assert bad.returncode == 1
    assert "attestation #1 (validator 'Jane Doe', signed " in bad.stdout
    assert "attestation #2 (approver 'Omar Haddad', signed " in bad.stdout
    assert "the run changed after signing" in bad.stdout


def test_manifest_rewritten_after_signing_is_named(run: Path, tmp_path: Path) -> None:
    key, _ = _keys(tmp_path, "k")
    attest_run(run, role="validator", name="A", statement="ok", private_key=key)
    from harness.store import write_manifest

    (run / "extra.txt").write_text("added later", encoding="utf-8")
    write_manifest(run)  # the folder verifies again, but it is not what was signed
    report = verify_run(run)
    assert any("manifest.json sha256 was" in p and "attestation #1" in p for p in report.problems)


def test_edited_removed_and_untrusted_attestations(run: Path, tmp_path: Path) -> None:
    key, _ = _keys(tmp_path, "k")
    other, other_pub = _keys(tmp_path, "other")
    first = attest_run(run, role="validator", name="A", statement="first", private_key=key)
    attest_run(run, role="auditor", name="B", statement="second", private_key=key)
    path = run / ATTESTATIONS_FILE
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    edited = json.loads(lines[0])
    edited["statement"] = "first, and more"
    path.write_text(json.dumps(edited, sort_keys=True) + "\n" + lines[1], encoding="utf-8")
    statuses = check_attestations(run)
    assert statuses[0].problems[0] == MSG_BAD_SIGNATURE.format(who=statuses[0].attestation.who)
    assert MSG_CHAIN.format(who=statuses[1].attestation.who) in statuses[1].problems  # #2 chained to the old #1
    path.write_text(lines[1], encoding="utf-8")  # #1 removed
    (only,) = check_attestations(run)
    assert MSG_CHAIN.format(who=only.attestation.who) in only.problems
    path.write_text(lines[0], encoding="utf-8")
    (trusted,) = check_attestations(run, trusted_keys=[other_pub])
    assert trusted.problems == (f"{first.who}: signed by key {first.payload['key_id']}, which is not one of the given --attester-key keys",)
    del other


def test_a_manifest_signature_is_not_an_attestation(run: Path, tmp_path: Path) -> None:
    key, _ = _keys(tmp_path, "k")
    attest_run(run, role="validator", name="A", statement="ok", private_key=key)
    assert harness("sign", str(run), "--key", str(key)).returncode == 0
    path = run / ATTESTATIONS_FILE
    row = json.loads(path.read_text())
    row["signature"] = (run / "manifest.sig").read_text().strip()
    path.write_text(json.dumps(row) + "\n")
    (status,) = check_attestations(run)
    assert not status.current and DOMAIN.startswith(b"harness-attestation")


def test_attest_refuses_bad_input_and_tampered_folders(run: Path, tmp_path: Path) -> None:
    key, pub = _keys(tmp_path, "k")
    with pytest.raises(ConfigError, match="--role"):
        attest_run(run, role="Chief Validator!", name="A", statement="s", private_key=key)
    assert MSG_BAD_ROLE.startswith("--role")
    with pytest.raises(ConfigError, match="--name: must not be empty"):
        attest_run(run, role="validator", name=" \u0000 ", statement="s", private_key=key)
    with pytest.raises(ConfigError, match="private"):
        attest_run(run, role="validator", name="A", statement="s", private_key=pub)
    (run / "record.json").write_text((run / "record.json").read_text() + " ")
    done = harness("attest", str(run), "--role", "validator", "--name", "A", "--statement", "s", "--key", str(key))
    assert done.returncode == 2 and "refusing to attest a run folder that does not match its manifest" in done.stderr
    assert not (run / ATTESTATIONS_FILE).exists()
    with pytest.raises(HarnessError):
        attest_run(tmp_path / "nowhere", role="validator", name="A", statement="s", private_key=key)


def test_report_shows_signers_and_marks_a_changed_run(run: Path, tmp_path: Path) -> None:
    key, _ = _keys(tmp_path, "k")
    hostile = "<script>window.__pwned=1</script>"
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    attest_run(run, role="validator", name="Jane " + hostile, statement="Fit for use.", private_key=key, now=when)
    document = build_report(run)
    section = document.split('<section id="sign-off">')[1].split("</section>")[0]
    assert "2026-01-02T03:04:05Z" in section and "Fit for use." in section and ">current<" in section
    assert hostile not in document and "Jane &lt;script&gt;" in section
    assert "changed after it was signed" not in document
    (run / "predictions.jsonl").write_text((run / "predictions.jsonl").read_text() + "\n")
    document = build_report(run)
    assert "This run changed after it was signed" in document
    assert "run changed after signing" in document.split('<section id="sign-off">')[1]
