"""What the report reads from a run folder: the validated record, manifest and per-example rows.

Only ``harness.records.load_record`` and ``harness.store.iter_jsonl`` touch the files (a bad
line is a ``RecordError`` naming the file and line). Paths named
by the record (``examples_file``) are resolved inside the run folder, so a hostile record cannot
make the report read files elsewhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import RecordError
from harness.records import MANIFEST_FILE, PREDICTIONS_FILE, RECORD_FILE, RunRecord, load_record
from harness.store import EXAMPLES_DIR, iter_jsonl, sha256_file


@dataclass(frozen=True)
class RunView:
    """A run folder as the report sees it (read once, then pure rendering)."""

    run_dir: Path
    record: RunRecord
    record_sha256: str
    manifest: dict[str, Any] | None
    examples: list[list[dict[str, Any]]]  # per suite, aligned with record.suites; file order
    predictions: list[dict[str, Any]]


def _inside(run_dir: Path, relative: str) -> Path | None:
    target = (run_dir / relative).resolve()
    root = run_dir.resolve()
    return target if target == root or root in target.parents else None


def _rows(path: Path) -> list[dict[str, Any]]:
    return [row for _, row in iter_jsonl(path) if isinstance(row, dict)]


def load_view(run_dir: Path) -> RunView:
    """Read a run folder (or a record.json path, whose folder is the run folder)."""
    if run_dir.is_file():
        run_dir = run_dir.parent
    if not run_dir.is_dir():
        raise RecordError(f"{run_dir}: no such run folder")
    record = load_record(run_dir)
    manifest: dict[str, Any] | None = None
    manifest_path = run_dir / MANIFEST_FILE
    if manifest_path.is_file():
        try:
            loaded = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RecordError(f"{manifest_path}: not valid JSON ({exc})") from None
        manifest = loaded if isinstance(loaded, dict) else None
    examples: list[list[dict[str, Any]]] = []
    for suite in record.suites:
        # A repeated suite's file is keyed by position ('robustness-1'): trust the record's path;
        # guess examples/<name>.jsonl only for records that count rows but name no file.
        relative = suite.examples_file or (
            f"{EXAMPLES_DIR}/{suite.name}.jsonl" if suite.n_examples else None
        )
        if relative is None:
            examples.append([])
            continue
        path = _inside(run_dir, relative)
        if path is None:
            raise RecordError(
                f"{run_dir / RECORD_FILE}: suite {suite.name!r} names examples_file {relative!r} "
                "outside the run folder"
            )
        examples.append(_rows(path) if path.is_file() else [])
    predictions_path = run_dir / PREDICTIONS_FILE
    predictions = _rows(predictions_path) if predictions_path.is_file() else []
    return RunView(
        run_dir=run_dir,
        record=record,
        record_sha256=sha256_file(run_dir / RECORD_FILE),
        manifest=manifest,
        examples=examples,
        predictions=predictions,
    )
