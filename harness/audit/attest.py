"""Sign-off: dated, Ed25519-signed attestations over a run folder's manifest.

``harness attest RUN --role validator --name "..." --statement "..." --key KEY.pem`` appends one
line to ``attestations.jsonl`` in the run folder. The line holds who (role, name), what (the
statement), when (UTC), over what (the sha256 of ``manifest.json``, which digests every file of
the run, and of ``record.json``), the signer's public key and an Ed25519 signature over all of
that. Each line also holds the sha256 of the lines before it, so removing or reordering an
earlier attestation breaks the chain. A second signer appends a second line; nothing is
rewritten. The file sits outside the manifest (it is written after it), like ``manifest.sig``.

An attestation is *current* when its signature verifies, its chain holds, the manifest it
signed is the manifest now, and the folder still matches that manifest; otherwise the run
changed after signing, and ``harness verify`` and the report say so, naming the attestation.

The signature covers ``DOMAIN`` + the canonical JSON of the payload (sorted keys, compact), so
a manifest signature made with the same key can never pass as an attestation, nor the reverse.
"""

from __future__ import annotations

import base64
import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.audit.verify import VerifyError, _load_key, check_manifest
from harness.errors import ConfigError, RecordError
from harness.records import ATTESTATIONS_FILE, MANIFEST_FILE, RECORD_FILE
from harness.store import atomic_write_bytes, sha256_bytes, sha256_file

DOMAIN = b"harness-attestation-v1\n"
FORMAT_VERSION = 1
ROLE_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
MAX_TEXT = 10_000
FIELDS = (
    "version", "role", "name", "statement", "signed_utc", "run_id", "manifest_sha256",
    "record_sha256", "previous_sha256", "public_key", "key_id",
)  # fmt: skip
# Message templates (asserted by tests).
MSG_NOT_VERIFIED = "{run}: refusing to attest a run folder that does not match its manifest:\n{problems}"
MSG_BAD_ROLE = "--role {role!r}: use a short lower-case word such as validator, approver, auditor or developer"
MSG_EMPTY = "--{what}: must not be empty"
MSG_TOO_LONG = "--{what}: at most {limit} characters (got {n})"
MSG_CHANGED = (
    "{who}: the run changed after signing: manifest.json sha256 was {signed}…, now {now}…"
)
MSG_FILES_CHANGED = (
    "{who}: the run changed after signing: the folder no longer matches the signed manifest "
    "({n} problem(s); first: {first})"
)
MSG_BAD_SIGNATURE = "{who}: the signature does not verify; the attestation was altered"
MSG_CHAIN = (
    "{who}: previous_sha256 does not match the attestations before it; an attestation was "
    "removed, reordered or edited"
)
MSG_UNTRUSTED = "{who}: signed by key {key_id}, which is not one of the given --attester-key keys"
MSG_BAD_LINE = "{path}: line {line}: not an attestation ({why})"


@dataclass(frozen=True)
class Attestation:
    """One parsed line of attestations.jsonl."""

    index: int  # 1-based position in the file
    payload: dict[str, Any]
    signature: str

    @property
    def who(self) -> str:
        p = self.payload
        return f"attestation #{self.index} ({p['role']} {p['name']!r}, signed {p['signed_utc']})"


@dataclass(frozen=True)
class AttestationStatus:
    attestation: Attestation
    problems: tuple[str, ...]

    @property
    def current(self) -> bool:
        return not self.problems


def _message(payload: dict[str, Any]) -> bytes:
    return DOMAIN + json.dumps(
        payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    ).encode("utf-8")


def _clean(text: str, what: str) -> str:
    """Normalised (NFC), stripped, without control characters other than newlines."""
    value = unicodedata.normalize("NFC", text).strip()
    value = "".join(ch for ch in value if ch in "\n\t" or unicodedata.category(ch) != "Cc")
    if not value:
        raise ConfigError(MSG_EMPTY.format(what=what))
    if len(value) > MAX_TEXT:
        raise ConfigError(MSG_TOO_LONG.format(what=what, limit=MAX_TEXT, n=len(value)))
    return value


def key_id(public_raw: bytes) -> str:
    """A short, stable name of a public key: ``ed25519:`` + 16 hex digits of its sha256."""
    return "ed25519:" + sha256_bytes(public_raw)[:16]


def _public_raw(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    raw: bytes = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw


def read_attestations(run_dir: Path) -> tuple[list[Attestation], bytes]:
    """The attestations of a run folder (none when the file is absent) and the file's bytes."""
    path = run_dir / ATTESTATIONS_FILE
    if not path.is_file():
        return [], b""
    data = path.read_bytes()
    out: list[Attestation] = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RecordError(MSG_BAD_LINE.format(path=path, line=number, why=str(exc))) from None
        missing = [k for k in (*FIELDS, "signature") if not isinstance(row, dict) or k not in row]
        if missing:
            why = f"missing {', '.join(missing)}"
            raise RecordError(MSG_BAD_LINE.format(path=path, line=number, why=why))
        payload = {k: row[k] for k in FIELDS}
        out.append(Attestation(len(out) + 1, payload, str(row["signature"])))
    return out, data


def attest_run(
    run_dir: Path, *, role: str, name: str, statement: str, private_key: Path,
    now: datetime | None = None,
) -> Attestation:
    """Append a signed attestation over the folder's manifest (which must verify first)."""
    if not ROLE_PATTERN.match(role):
        raise ConfigError(MSG_BAD_ROLE.format(role=role))
    name, statement = _clean(name, "name"), _clean(statement, "statement")
    key = _load_key(private_key, private=True)
    problems = check_manifest(run_dir)
    if problems:
        listing = "\n".join(f"  - {p}" for p in problems)
        raise VerifyError(MSG_NOT_VERIFIED.format(run=run_dir, problems=listing))
    existing, data = read_attestations(run_dir)
    record = json.loads((run_dir / RECORD_FILE).read_text(encoding="utf-8"))
    public = _public_raw(key.public_key())
    stamp = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    payload: dict[str, Any] = {
        "version": FORMAT_VERSION,
        "role": role,
        "name": name,
        "statement": statement,
        "signed_utc": stamp.isoformat().replace("+00:00", "Z"),
        "run_id": str(record.get("run_id", "")),
        "manifest_sha256": sha256_file(run_dir / MANIFEST_FILE),
        "record_sha256": sha256_file(run_dir / RECORD_FILE),
        "previous_sha256": sha256_bytes(data) if existing else None,
        "public_key": base64.b64encode(public).decode("ascii"),
        "key_id": key_id(public),
    }
    signature = base64.b64encode(key.sign(_message(payload))).decode("ascii")
    line = json.dumps({**payload, "signature": signature}, sort_keys=True, ensure_ascii=False)
    prefix = data if data.endswith(b"\n") or not data else data + b"\n"
    atomic_write_bytes(run_dir / ATTESTATIONS_FILE, prefix + line.encode("utf-8") + b"\n")
    return Attestation(len(existing) + 1, payload, signature)


def _signature_ok(att: Attestation) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric import ed25519

    try:
        public = base64.b64decode(str(att.payload["public_key"]), validate=True)
        key = ed25519.Ed25519PublicKey.from_public_bytes(public)
        key.verify(base64.b64decode(att.signature, validate=True), _message(att.payload))
    except (ValueError, TypeError, InvalidSignature):
        return False
    return bool(key_id(public) == att.payload["key_id"])


def _trusted_ids(keys: list[Path]) -> set[str]:
    return {key_id(_public_raw(_load_key(path, private=False))) for path in keys}


def check_attestations(
    run_dir: Path, *, trusted_keys: list[Path] | None = None,
    manifest_problems: list[str] | None = None,
) -> list[AttestationStatus]:
    """Each attestation with what is wrong with it now (nothing: it is current).

    ``manifest_problems`` are ``check_manifest``'s findings when the caller has them already.
    """
    attestations, data = read_attestations(run_dir)
    if not attestations:
        return []
    manifest = run_dir / MANIFEST_FILE
    now = sha256_file(manifest) if manifest.is_file() else "(missing)"
    files = check_manifest(run_dir) if manifest_problems is None else manifest_problems
    trusted = _trusted_ids(trusted_keys) if trusted_keys else None
    lines = [line for line in data.splitlines(keepends=True) if line.strip()]
    out: list[AttestationStatus] = []
    for i, att in enumerate(attestations):
        problems: list[str] = []
        who = att.who
        if not _signature_ok(att):
            problems.append(MSG_BAD_SIGNATURE.format(who=who))
        before = b"".join(lines[:i])
        expected = sha256_bytes(before) if i else None
        if att.payload["previous_sha256"] != expected:
            problems.append(MSG_CHAIN.format(who=who))
        signed = str(att.payload["manifest_sha256"])
        if signed != now:
            problems.append(MSG_CHANGED.format(who=who, signed=signed[:12], now=now[:12]))
        elif files:
            problems.append(MSG_FILES_CHANGED.format(who=who, n=len(files), first=files[0]))
        if trusted is not None and att.payload["key_id"] not in trusted:
            problems.append(MSG_UNTRUSTED.format(who=who, key_id=att.payload["key_id"]))
        out.append(AttestationStatus(att, tuple(problems)))
    return out
