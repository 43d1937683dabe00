"""Replay a recorded run and report every difference from the original.

``harness rerun RUN_DIR`` runs the run folder's own ``config.yaml`` into a fresh folder and
compares predictions byte for byte and each suite's metrics (wall times, timestamps and other
measurements of the machine rather than the model are excluded).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.records import PREDICTIONS_FILE, RunRecord, load_record

# Metrics that measure the machine, not the model, are expected to differ between runs: every
# metric of a suite that declares ``measures_machine``, and timings in any other suite.
TIMING_SUFFIXES = ("_s", "_ms", "per_s", "_seconds", "examples_per_s", "tokens_per_s")


@dataclass(frozen=True)
class Difference:
    where: str
    original: Any
    replayed: Any


def _comparable_metrics(record: RunRecord) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for suite in record.suites:
        if suite.caps().measures_machine:
            continue
        for m in suite.metrics:
            if m.unit in ("s", "ms") or m.name.endswith(TIMING_SUFFIXES):
                continue
            out[f"{suite.name}.{m.name}"] = m.value
    return out


def compare_runs(original: Path, replayed: Path) -> list[Difference]:
    a, b = load_record(original), load_record(replayed)
    diffs: list[Difference] = []
    if a.model.digest != b.model.digest:
        diffs.append(Difference("model.digest", a.model.digest, b.model.digest))
    for split_a in a.dataset.splits:
        split_b = b.dataset.split(split_a.name)
        if split_b is None or split_b.sha256 != split_a.sha256:
            diffs.append(Difference(f"dataset.{split_a.name}.sha256", split_a.sha256, split_b.sha256 if split_b else None))
    pa, pb = original / PREDICTIONS_FILE, replayed / PREDICTIONS_FILE
    if pa.read_bytes() != pb.read_bytes():
        # bytes.splitlines cuts at newlines only (str.splitlines also at U+2028, which a row may hold)
        rows_a, rows_b = pa.read_bytes().splitlines(), pb.read_bytes().splitlines()
        changed = sum(x != y for x, y in zip(rows_a, rows_b, strict=False)) + abs(len(rows_a) - len(rows_b))
        diffs.append(Difference(PREDICTIONS_FILE, f"{len(rows_a)} rows", f"{changed} rows differ"))
    ma, mb = _comparable_metrics(a), _comparable_metrics(b)
    for key in sorted(set(ma) | set(mb)):
        if ma.get(key) != mb.get(key):
            diffs.append(Difference(key, ma.get(key), mb.get(key)))
    return diffs


def rerun(run_dir: Path, out_dir: Path) -> tuple[Path, list[Difference]]:
    from harness.errors import RecordError
    from harness.run.folder import CONFIG_FILE
    from harness.run.pipeline import execute

    config = run_dir / CONFIG_FILE
    if not config.is_file():
        raise RecordError(f"{run_dir}: no {CONFIG_FILE}; is this a harness run folder?")
    load_record(run_dir)
    result = execute(config, out_dir=out_dir, force=True)
    return result.run_dir, compare_runs(run_dir, result.run_dir)
