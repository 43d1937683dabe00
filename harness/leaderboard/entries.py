"""Leaderboard entries: verified copies of run records, and the benchmarks they belong to.

An entry is a folder ``<entries>/<entry-id>/`` holding

    record.json        the run's record, byte for byte (its sha256 matches the run's manifest)
    predictions.jsonl  id, label, predicted per evaluation example (for paired tests), if the run had them
    source.json        where the entry came from: the run's manifest tree digest and record digest
    manifest.json      sha256 of the three files above (harness.store.write_manifest)

``add`` runs ``harness verify`` on the run folder first. Every entry is checked again at build
time: its manifest digests, the record's schema version, the
committed JSON Schema, the pydantic model, and the site's benchmark definition. Any failure stops
the build with a message that names the entry and the check.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError

from harness.errors import RecordError
from harness.records import (
    MANIFEST_FILE,
    PREDICTIONS_FILE,
    RECORD_FILE,
    SUPPORTED_SCHEMA_VERSIONS,
    RunRecord,
    StrictModel,
    canonical_json,
    parse_record,
    record_json_schema,
    schema_path,
)
from harness.store import (
    atomic_write_json,
    atomic_write_text,
    iter_jsonl,
    read_jsonl_values,
    sha256_bytes,
    sha256_json,
    write_manifest,
)

SOURCE_FILE = "source.json"

# Message templates (asserted by tests).
MSG_NO_MANIFEST = "{where}: no {manifest}; only verified run folders can be added"
MSG_VERIFY = "{where}: failed verification, refusing it: {problems}"
MSG_SCHEMA_VERSION = "{where}: unknown schema_version {version!r}; this harness reads {known}"
MSG_SCHEMA = "{where}: record does not match the committed JSON Schema at {path}: {message}"
MSG_BENCHMARK = "{where}: record is from a different benchmark definition: {what} is {actual!r}, the site expects {expected!r}"
MSG_NOT_COMPLETE = "{where}: record status is {status!r}; only complete runs can be added"
MSG_PREDICTIONS = "{where}: {file} line {line}: {problem}"


class BenchmarkDefinition(StrictModel):
    """What a record must have been evaluated on to be accepted (from site.yaml ``benchmark``)."""

    dataset: str | None = Field(
        default=None, description="Dataset name, e.g. 'rotten-tomatoes'; None accepts any."
    )
    eval_split: str | None = Field(default=None, description="Evaluation split name, e.g. 'test'.")
    split_sha256: str | None = Field(
        default=None, description="Digest of the evaluation split; pins the exact examples."
    )


class SiteSettings(StrictModel):
    """Site settings read from ``leaderboard/site.yaml``."""

    title: str = Field(default="harness leaderboard", description="Page title.")
    description: str = Field(default="", description="One paragraph under the title.")
    benchmark: BenchmarkDefinition = Field(default_factory=BenchmarkDefinition)
    alpha: float = Field(
        default=0.05,
        gt=0,
        lt=1,
        description="Family-wise significance level of the rank intervals (Holm over all pairs of a table).",
    )
    primary_metrics: dict[str, str] | None = Field(
        default=None,
        description="Suite name -> metric that ranks its table; a suite not named is ranked by "
        "the headline metric it declares (its capabilities), else by its first scored metric.",
    )
    paired_metrics: list[str] = Field(
        default_factory=lambda: ["accuracy"],
        description="Metrics that are per-example correctness rates, so McNemar on predictions applies.",
    )
    max_columns: int = Field(
        default=6, ge=1, description="Scored metrics shown per overview table."
    )
    gap_suite: str = Field(
        default="bias", description="Suite whose gap metrics feed the group-gap chart."
    )
    gap_patterns: list[str] = Field(
        default_factory=lambda: ["gap", "difference"],
        description="Substrings that mark a gap metric in that suite.",
    )


def load_settings(path: Path | None) -> SiteSettings:
    if path is None or not path.is_file():
        return SiteSettings()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return SiteSettings.model_validate(raw)
    except yaml.YAMLError as exc:
        raise RecordError(f"{path}: not valid YAML ({exc})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise RecordError(f"{path}: {where}: {first['msg']}") from None


@dataclass(frozen=True)
class Outcomes:
    """Per-example correctness of an entry: what the paired test needs, nothing more."""

    ids: frozenset[str]
    correct: frozenset[str]


@dataclass(frozen=True)
class Entry:
    """One verified leaderboard entry."""

    entry_id: str
    path: Path
    record: RunRecord
    record_bytes: bytes
    outcomes: Outcomes | None

    @property
    def model_name(self) -> str:
        return self.record.model.name


@dataclass(frozen=True)
class BenchmarkKey:
    """Records are comparable only when all four agree."""

    split_sha256: str
    suite: str
    version: str
    params_sha256: str

    @property
    def slug(self) -> str:
        return f"{slugify(self.suite)}-v{slugify(self.version)}-{self.params_sha256[:8]}-{self.split_sha256[:8]}"


def benchmark_key(record: RunRecord, suite_name: str) -> BenchmarkKey:
    suite = record.suite(suite_name)
    if suite is None:
        raise KeyError(suite_name)
    split = record.dataset.split(record.dataset.eval_split)
    split_sha = split.sha256 if split is not None else "unknown"
    return BenchmarkKey(split_sha, suite.name, suite.version, sha256_json(suite.params))


def slugify(text: str, *, limit: int = 40) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].strip("-")
    return slug or "x"


@cache
def _validator_for(path: str) -> Any:
    from jsonschema import Draft202012Validator

    file = Path(path)
    # The committed file is authoritative; the generated schema only stands in while it is absent.
    schema = (
        json.loads(file.read_text(encoding="utf-8")) if file.is_file() else record_json_schema()
    )
    return Draft202012Validator(schema)


def check_record(raw_bytes: bytes, *, where: str, settings: SiteSettings) -> RunRecord:
    """Schema version, JSON Schema, pydantic model, benchmark definition — in that order."""
    try:
        raw = json.loads(raw_bytes)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RecordError(f"{where}: record.json is not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise RecordError(f"{where}: record.json must hold a JSON object")
    version = raw.get("schema_version")
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        raise RecordError(
            MSG_SCHEMA_VERSION.format(
                where=where, version=version, known=", ".join(sorted(SUPPORTED_SCHEMA_VERSIONS))
            )
        )
    validator = _validator_for(str(schema_path()))
    error = next(
        iter(sorted(validator.iter_errors(raw), key=lambda e: list(e.absolute_path))), None
    )
    if error is not None:
        at = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise RecordError(
            MSG_SCHEMA.format(where=where, path=schema_path(), message=f"at {at}: {error.message}")
        )
    record = parse_record(raw_bytes.decode("utf-8"), source=where)
    _check_benchmark(record, where=where, wanted=settings.benchmark)
    return record


def _check_benchmark(record: RunRecord, *, where: str, wanted: BenchmarkDefinition) -> None:
    split = record.dataset.split(record.dataset.eval_split)
    actual = {
        "dataset": record.dataset.name,
        "eval_split": record.dataset.eval_split,
        "split_sha256": split.sha256 if split is not None else None,
    }
    for what, expected in wanted.model_dump().items():
        if expected is not None and actual[what] != expected:
            raise RecordError(
                MSG_BENCHMARK.format(where=where, what=what, actual=actual[what], expected=expected)
            )


def verify_folder(folder: Path, *, full: bool) -> None:
    """Refuse a folder that does not verify: ``full`` runs ``harness verify`` on a run folder
    (manifest, record, predictions); entries are checked against their own manifest only,
    since they hold a subset of the run's files."""
    from harness.audit.verify import check_manifest, verify_run

    if not (folder / MANIFEST_FILE).is_file():
        raise RecordError(MSG_NO_MANIFEST.format(where=folder, manifest=MANIFEST_FILE))
    problems = verify_run(folder).problems if full else check_manifest(folder)
    if problems:
        raise RecordError(MSG_VERIFY.format(where=folder, problems="; ".join(problems)))


def _prediction_rows(file: Path, where: str) -> list[dict[str, Any]]:
    """Keep only what paired tests need: id, label, predicted (argmax of probabilities if absent)."""

    def bad(line_no: int, problem: str) -> RecordError:
        return RecordError(
            MSG_PREDICTIONS.format(where=where, file=file.name, line=line_no, problem=problem)
        )

    rows: list[dict[str, Any]] = []
    for line_no, row in iter_jsonl(file, on_bad_line=bad):
        if not isinstance(row, dict) or "id" not in row or "label" not in row:
            raise bad(line_no, "needs 'id' and 'label'")
        predicted = row.get("predicted")
        probs = row.get("probabilities")
        if predicted is None and isinstance(probs, list) and probs:
            predicted = max(range(len(probs)), key=lambda i: probs[i])
        if predicted is None:
            raise bad(line_no, "needs 'predicted' or 'probabilities'")
        rows.append({"id": str(row["id"]), "label": row["label"], "predicted": predicted})
    return rows


def add_entry(run_dir: Path, entries_dir: Path, *, settings: SiteSettings | None = None) -> Path:
    """Verify a run folder and copy what the site needs into ``entries_dir/<entry-id>/``."""
    settings = settings or SiteSettings()
    where = str(run_dir)
    verify_folder(run_dir, full=True)
    record_bytes = (run_dir / RECORD_FILE).read_bytes()
    record = check_record(record_bytes, where=f"{run_dir / RECORD_FILE}", settings=settings)
    if record.status != "complete":
        raise RecordError(MSG_NOT_COMPLETE.format(where=where, status=record.status))
    predictions = run_dir / PREDICTIONS_FILE
    rows = _prediction_rows(predictions, where) if predictions.is_file() else None
    record_sha = sha256_bytes(record_bytes)
    entry_id = f"{slugify(record.model.name)}-{record_sha[:12]}"
    target = entries_dir / entry_id
    if target.exists():
        shutil.rmtree(target)  # same record digest: re-adding replaces it with an identical copy
    target.mkdir(parents=True)
    (target / RECORD_FILE).write_bytes(record_bytes)
    if rows is not None:
        atomic_write_text(
            target / PREDICTIONS_FILE, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
        )
    manifest = json.loads((run_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
    atomic_write_json(
        target / SOURCE_FILE,
        {
            "run_id": record.run_id,
            "run_manifest_tree_sha256": manifest.get("tree_sha256"),
            "record_sha256": record_sha,
        },
    )
    write_manifest(target)
    return target


def load_entry(folder: Path, *, settings: SiteSettings) -> Entry:
    verify_folder(folder, full=False)
    record_bytes = (folder / RECORD_FILE).read_bytes()
    record = check_record(record_bytes, where=f"{folder / RECORD_FILE}", settings=settings)
    outcomes: Outcomes | None = None
    pred_file = folder / PREDICTIONS_FILE
    if pred_file.is_file():
        rows = _read_rows(pred_file)
        outcomes = Outcomes(
            frozenset(str(r["id"]) for r in rows),
            frozenset(str(r["id"]) for r in rows if r.get("label") == r.get("predicted")),
        )
    return Entry(folder.name, folder, record, record_bytes, outcomes)


def _read_rows(file: Path) -> list[dict[str, Any]]:
    """The entry's prediction rows (a bad line is an error naming its number)."""
    return [row for row in read_jsonl_values(file) if isinstance(row, dict)]


def load_entries(entries_dir: Path, *, settings: SiteSettings) -> list[Entry]:
    """Every entry, verified, in entry-id order (deterministic output)."""
    if not entries_dir.is_dir():
        return []
    folders = sorted(p for p in entries_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    return [load_entry(f, settings=settings) for f in folders]


def record_text(record: RunRecord) -> str:
    return canonical_json(record.model_dump(mode="json"))
