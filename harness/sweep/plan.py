"""Planning a sweep: which jobs are finished, and the tasks left (shards first, then runs).

A job whose record is complete is 'reused' and not started again; an unfinished one resumes in
its folder. Torch threads are pinned per job (the job's config gets ``threads``) so parallel
jobs do not oversubscribe the cores, unless the run file sets threads itself; a job resumed
from an unfinished folder keeps the thread count it started with, so its config digest matches.
A suite named in the sweep's ``shards`` whose class declares ``capabilities.shardable`` gets one
task per shard; the job's run waits for them and merges their rows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from harness import registry
from harness.config import RunConfig
from harness.records import RECORD_FILE, RunRecord, SweepJob, load_record
from harness.render.curves import sweep_cell
from harness.run.folder import CONFIG_FILE
from harness.run.suites import suite_key
from harness.sweep.shard import is_done, shard_log
from harness.sweep.spec import Job, Sweep
from harness.sweep.work import Merge, RunWork, ShardWork, Work


@dataclass
class Task:
    job: Job
    payload: Work  # RunWork or ShardWork
    attempts: int = 0
    status: str = "pending"
    error: str | None = None
    wall_time_s: float = 0.0
    waits_for: list[Task] = field(default_factory=list)

    @property
    def kind(self) -> Literal["run", "shard"]:
        return "shard" if isinstance(self.payload, ShardWork) else "run"

    def describe(self) -> str:
        w = self.payload
        return f"{self.job.name} shard {w.k + 1}/{w.n_shards}" if isinstance(w, ShardWork) else self.job.name


@dataclass
class JobOutcome:
    job: Job
    run_dir: Path
    status: str = "pending"  # ok | reused | failed | pending
    attempts: int = 0
    error: str | None = None
    wall_time_s: float | None = None
    shards: list[Task] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.job.job_id,
            "name": self.job.name,
            "labels": self.job.labels,
            "overrides": list(self.job.overrides),
            "status": self.status,
            "run_dir": str(self.run_dir),
            "attempts": self.attempts,
            "error": self.error,
            "wall_time_s": self.wall_time_s,
            "shards": [_shard_json(t) for t in self.shards],
        }


def _shard_json(t: Task) -> dict[str, Any]:
    w = t.payload
    assert isinstance(w, ShardWork)
    return {
        "suite_index": w.suite_index,
        "k": w.k,
        "n_shards": w.n_shards,
        "status": t.status,
        "attempts": t.attempts,
        "error": t.error,
    }


def pinned_config(job: Job, run_dir: Path, threads: int) -> RunConfig:
    """The job's config with ``threads`` set, unless the run file sets it; a job resumed from an
    unfinished folder keeps the thread count it started with, so its config digest matches."""
    if job.config.threads is not None:
        return job.config
    previous = run_dir / CONFIG_FILE
    if previous.is_file():
        saved = (yaml.safe_load(previous.read_text(encoding="utf-8")) or {}).get("threads")
        threads = int(saved) if saved else threads
    return job.config.model_copy(update={"threads": threads})


def plan(sweep: Sweep, *, threads: int) -> tuple[list[JobOutcome], list[Task]]:
    """Outcomes for every job (finished ones already 'reused') and the tasks left to run."""
    outcomes, tasks = [], []
    cwd = Path.cwd()
    for index, job in enumerate(sweep.jobs, start=1):
        run_dir = sweep.out_dir / job.job_id
        outcome = JobOutcome(job, run_dir)
        outcomes.append(outcome)
        previous = load_record(run_dir) if (run_dir / RECORD_FILE).is_file() else None
        if previous is not None and previous.status == "complete":
            outcome.status = "reused"
            continue
        config = pinned_config(job, run_dir, threads)
        shards, merges = _shard_tasks(sweep, job, config, previous, cwd)
        work = RunWork(job.job_id, config, job.suite_params, cwd, run_dir, tuple(merges),
                       membership=membership(sweep, job, index))  # fmt: skip
        outcome.shards = shards
        tasks += [*shards, Task(job, work, waits_for=shards)]
    return outcomes, tasks


def membership(sweep: Sweep, job: Job, index: int) -> SweepJob:
    """What the job's record says about its sweep: the sweep's name and id, the job's position
    and cell (method and shots as the sweep report groups them: ``render.curves.sweep_cell``),
    and the sweep folder relative to the run folder."""
    method, shots = sweep_cell(job.config.model_dump(mode="json"))
    return SweepJob(
        name=sweep.spec.name, spec_sha256=sweep.spec_sha256, job_id=job.job_id, job=job.name,
        index=index, n_jobs=len(sweep.jobs), labels=dict(job.labels), method=method, shots=shots,
        seed=job.config.seed, sweep_dir=os.path.relpath(sweep.out_dir, sweep.out_dir / job.job_id),
    )  # fmt: skip


def _shard_tasks(
    sweep: Sweep, job: Job, config: RunConfig, previous: RunRecord | None, cwd: Path
) -> tuple[list[Task], list[Merge]]:
    """The unfinished shards of the job's sharded suites, and the merges its run does first."""
    names = [s.name for s in config.suites]
    merges, shards = [], []
    for i, spec in enumerate(config.suites):
        n_shards = sweep.spec.shards.get(spec.name)
        already = previous is not None and i < len(previous.suites) and previous.suites[i].status == "ok"
        if n_shards is None or already or not registry.suites.get(spec.name).capabilities.shardable:
            continue
        key = suite_key(names, i)
        logs = tuple(shard_log(sweep.out_dir, job.job_id, key, k, n_shards) for k in range(n_shards))
        merges.append(Merge(key, logs))
        for k, log in enumerate(logs):
            if not is_done(log):
                work = ShardWork(job.job_id, config, job.suite_params, cwd, i, k, n_shards, log)
                shards.append(Task(job, work))
    return shards, merges
