"""Links between a sweep's report and the reports of its runs, both ways.

Where the files are (stable, so links written before the other file exists stay valid):
- a sweep folder ``OUT/NAME`` (``harness sweep``) holds one run folder per job,
  ``OUT/NAME/<job id>``;
- ``harness report OUT/NAME`` writes the sweep report at ``OUT/NAME.sweep-report.html``, beside
  the sweep folder (``sweep_report_path``);
- ``harness report OUT/NAME/<job id>`` writes the run report at
  ``OUT/NAME/<job id>.report.html``, beside the run folder (``reports.audit.default_output``).

A run that was a job of a sweep carries ``record.sweep`` (``records.SweepJob``: the sweep's
name and id, the job's position and cell, the sweep folder relative to the run folder). Its
report says "Part of sweep NAME (job k of n: method=…, shots=…, seed=…)" and links to the sweep
report by a path relative to where the run report is written; when the sweep report is not
there yet, or the run folder no longer sits in its sweep folder (copied elsewhere), it says so
and how to build it, never a dead link. A run recorded before records carried ``sweep`` is
recognised by the sweep file of the folder it sits in (which lists its jobs by run folder name).
A sweep report written elsewhere with ``-o`` is not found: the link follows the default
location only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from harness.records import RunRecord, SweepJob
from harness.render.curves import shot_label, sweep_cell
from harness.render.html import Markup, el

SWEEP_FILE = "sweep.json"
SWEEP_REPORT_SUFFIX = ".sweep-report.html"
MSG_PART_OF = (
    "Part of sweep {name} (job {index} of {n}: method={method}, shots={shots}, seed={seed})"
)
MSG_NOT_BUILT = "The sweep report is not built yet: `harness report {folder}` writes it at {path}."
MSG_NO_FOLDER = (
    "Its sweep folder is not at {folder} (the run folder was moved or copied out of it), so "
    "there is no sweep report to link to."
)


def sweep_report_path(sweep_folder: Path) -> Path:
    """Where ``harness report SWEEP_FOLDER`` writes the sweep report by default (``.`` and
    ``..`` are resolved first: they have no name to add the suffix to)."""
    if sweep_folder.name in ("", ".", ".."):
        sweep_folder = sweep_folder.resolve()
    return sweep_folder.with_name(sweep_folder.name + SWEEP_REPORT_SUFFIX)


def href(target: Path, start: Path) -> str:
    """A relative link from a page in folder ``start`` to ``target`` (URL-quoted, '/')."""
    rel = os.path.relpath(target.resolve(), start.resolve())
    return quote(Path(rel).as_posix())


def _read_sweep(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / SWEEP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("jobs"), list) else None


def _job_ids(data: dict[str, Any]) -> list[str]:
    return [str(j.get("id")) if isinstance(j, dict) else "" for j in data["jobs"]]


def membership_of(record: RunRecord, run_dir: Path) -> SweepJob | None:
    """The record's ``sweep``; for a run recorded before records carried it (a finished job is
    reused, never rewritten), what the sweep file of the folder it sits in says about it."""
    if record.sweep is not None:
        return record.sweep
    folder = run_dir.resolve().parent
    data = _read_sweep(folder)
    if data is None or run_dir.resolve().name not in _job_ids(data):
        return None
    k = _job_ids(data).index(run_dir.resolve().name)
    entry = data["jobs"][k]
    labels = entry.get("labels") if isinstance(entry.get("labels"), dict) else {}
    method, shots = sweep_cell(record.config)
    return SweepJob(
        name=str(data.get("name") or folder.name), spec_sha256=str(data.get("spec_sha256") or ""),
        job_id=run_dir.resolve().name, job=str(entry.get("name") or run_dir.resolve().name),
        index=k + 1, n_jobs=len(data["jobs"]), labels={str(a): str(b) for a, b in labels.items()},
        method=method, shots=shots, seed=int(record.config.get("seed", record.provenance.seed)),
        sweep_dir="..",
    )  # fmt: skip


def position(job: SweepJob, data: dict[str, Any] | None) -> tuple[int, int]:
    """(k, n) as the sweep file lists its jobs now (it grows when the sweep is edited and run
    again); the record's own when the file does not list the job or is not that sweep's."""
    ids = _job_ids(data) if data is not None else []
    return (ids.index(job.job_id) + 1, len(ids)) if job.job_id in ids else (job.index, job.n_jobs)


def banner(record: RunRecord, run_dir: Path, report_file: Path) -> Markup | None:
    """The run report's "Part of sweep …" line, or None for a run of its own."""
    job = membership_of(record, run_dir)
    if job is None:
        return None
    folder = (run_dir / job.sweep_dir).resolve()
    data = _read_sweep(folder)
    if data is not None and data.get("name", job.name) != job.name:
        data = None  # another sweep's folder (the run folder was copied into it)
    k, n = position(job, data)
    text = MSG_PART_OF.format(name=job.name, index=k, n=n, method=job.method,
                              shots=shot_label(job.shots), seed=job.seed)  # fmt: skip
    if data is None:
        return el("p", text, ". ", MSG_NO_FOLDER.format(folder=folder), cls="notice sweep-link")
    target = sweep_report_path(folder)
    if not target.is_file():
        note = MSG_NOT_BUILT.format(folder=folder, path=target)
        return el("p", text, ". ", note, cls="notice sweep-link")
    link = el("a", "sweep report", href=href(target, report_file.parent), cls="sweep-report")
    return el("p", text, ": see the ", link, ".", cls="notice sweep-link")
