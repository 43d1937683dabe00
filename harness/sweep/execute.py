"""Running a sweep's jobs: a local process pool or Ray tasks, with retries and a summary.

Each job runs ``harness.run.pipeline.execute_config`` on its validated config in its own
process (a fresh one per attempt: ``harness.sweep.backends``), into ``SWEEP/<job id>``; the
planner (``harness.sweep.plan``) pins its torch threads, skips finished jobs and splits
sharded suites into tasks. A failed attempt (an error, a failed suite, or a worker process that
died) is retried up to ``retries`` times by this driver, the same way on both executors, then
the job is recorded as failed and the sweep goes on. Progress lands in ``SWEEP/sweep.json``
after every finished task. Nothing here imports torch or ray at module level.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from harness.errors import ExitCode
from harness.store import atomic_write_json, atomic_write_text, sha256_json
from harness.sweep.backends import Backend, LocalBackend, RayBackend
from harness.sweep.plan import JobOutcome, Task, plan
from harness.sweep.spec import Job, Sweep, available_cores
from harness.sweep.work import RunWork, TaskResult

__all__ = [
    "SWEEP_FILE",
    "TEST_KILL_ENV",
    "JobOutcome",
    "SweepResult",
    "read_summary",
    "replicate_sets",
    "run_sweep",
    "write_summary",
]

SWEEP_FILE = "sweep.json"
BASE_FILE = "base.yaml"  # the base run file as expanded, kept beside the jobs for reference
TEST_KILL_ENV = "HARNESS_SWEEP_TEST_KILL"  # tests only: job names whose first attempt is SIGKILLed
Executor = Literal["local", "ray"]


@dataclass
class SweepResult:
    out_dir: Path
    jobs: list[JobOutcome]

    @property
    def exit_code(self) -> ExitCode:
        return (
            ExitCode.SUITE
            if any(j.status != "ok" and j.status != "reused" for j in self.jobs)
            else ExitCode.OK
        )


def _kill_listed(job: Job) -> bool:
    names = [n for n in os.environ.get(TEST_KILL_ENV, "").split(",") if n]
    return any(job.name == n or job.job_id == n for n in names)


def write_summary(
    sweep: Sweep, outcomes: list[JobOutcome], *, executor: str, finished: bool
) -> None:
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    atomic_write_json(
        sweep.out_dir / SWEEP_FILE,
        {
            "name": sweep.spec.name,
            "sweep_file": str(sweep.source),
            "spec_sha256": sweep.spec_sha256,
            "executor": executor,
            "finished": finished,
            "counts": counts,
            "jobs": [o.as_json() for o in outcomes],
            "replicates": replicate_sets(outcomes),
        },
    )


def replicate_sets(outcomes: list[JobOutcome]) -> list[dict[str, Any]]:
    """Finished jobs whose configs differ only in ``seed``: each set's seed-to-seed spread.

    For every scored metric of the set's records: mean, seed-to-seed standard deviation and the
    run folders, so ``harness gate --baseline <runs…>`` can test with seed variance.
    """
    from harness.errors import RecordError
    from harness.records import load_record

    groups: dict[str, list[JobOutcome]] = {}
    for o in outcomes:
        if o.status in ("ok", "reused"):
            config = o.job.config.model_dump(mode="json")
            config.pop("seed", None)
            config.pop("name", None)
            groups.setdefault(sha256_json(config), []).append(o)
    out = []
    for digest, members in sorted(groups.items()):
        if len(members) < 2:
            continue
        values: dict[str, list[float]] = {}
        for o in members:
            try:
                record = load_record(o.run_dir)
            except RecordError:
                continue
            for suite in record.suites:
                for m in suite.metrics:
                    if m.value is not None and m.higher_is_better is not None:
                        values.setdefault(f"{suite.name}.{m.name}", []).append(m.value)
        metrics = {
            k: {"mean": statistics.fmean(v), "seed_sd": statistics.stdev(v), "n_runs": len(v)}
            for k, v in sorted(values.items())
            if len(v) == len(members)
        }
        out.append({
            "config_sha256": digest,
            "seeds": [o.job.config.seed for o in members],
            "runs": [str(o.run_dir) for o in members],
            "metrics": metrics,
        })
    return out


def run_sweep(
    sweep: Sweep,
    *,
    executor: Executor = "local",
    address: str | None = None,
    workers: int | None = None,
    retries: int | None = None,
    on_event: Callable[[str], None] = lambda line: None,
) -> SweepResult:
    """Run every unfinished job of ``sweep``; returns each job's outcome (never raises for a
    failed job: the outcome says failed and why)."""
    cores = available_cores()
    retries = sweep.spec.retries if retries is None else retries
    if executor == "local":
        workers = workers or sweep.spec.workers or cores
        threads = sweep.spec.threads_per_job or max(1, cores // workers)
    else:
        threads = sweep.spec.threads_per_job or max(1, int(sweep.spec.resources.num_cpus))
    sweep.out_dir.mkdir(parents=True, exist_ok=True)
    base = yaml.safe_dump(sweep.base_raw, sort_keys=True, allow_unicode=True)
    atomic_write_text(sweep.out_dir / BASE_FILE, base)
    outcomes, tasks = plan(sweep, threads=threads)

    def save(finished: bool = False) -> None:
        write_summary(sweep, outcomes, executor=executor, finished=finished)

    save()
    if tasks:
        backend = _backend(sweep, executor, address=address, workers=workers or cores, cores=cores)
        try:
            _Driver(backend, {o.job.job_id: o for o in outcomes}, retries, on_event, save).drive(tasks)
        finally:
            backend.close()
    save(finished=True)
    return SweepResult(sweep.out_dir, outcomes)


def _backend(sweep: Sweep, executor: Executor, *, address: str | None, workers: int, cores: int) -> Backend:
    if executor != "ray":
        return LocalBackend(workers)
    res = sweep.spec.resources
    options: dict[str, float] = {"num_cpus": res.num_cpus, "num_gpus": res.num_gpus}
    if res.memory_gb:
        options["memory"] = res.memory_gb * 2**30
    return RayBackend(address=address, resources=options, local_cpus=cores)


@dataclass
class _Driver:
    """Submits ready tasks (a run once its shards are ok) and retries failed attempts."""

    backend: Backend
    by_job: dict[str, JobOutcome]
    retries: int
    on_event: Callable[[str], None]
    save: Callable[[], None]

    def drive(self, tasks: list[Task]) -> None:
        waiting = list(tasks)
        running: dict[Any, Task] = {}
        while waiting or running:
            ready = [t for t in waiting if all(d.status == "ok" for d in t.waits_for)]
            for t in ready[: max(0, self.backend.slots - len(running))]:
                waiting.remove(t)
                t.attempts += 1
                work = t.payload
                if isinstance(work, RunWork) and t.attempts == 1 and _kill_listed(t.job):
                    work = dataclasses.replace(work, test_kill=True)
                running[self.backend.submit(work)] = t
            for handle, result in self.backend.wait(list(running)):
                self._finished(running.pop(handle), result, waiting)
                self.save()

    def _finished(self, t: Task, result: TaskResult, waiting: list[Task]) -> None:
        t.wall_time_s += result.wall_time_s
        if result.ok:
            t.status = "ok"
            if t.kind == "run":
                self._finish_job(t, "ok", None)
        elif t.attempts <= self.retries:
            self.on_event(f"{t.describe()}: attempt {t.attempts} failed ({result.error}); retrying")
            waiting.insert(0, t)
        else:
            t.status, t.error = "failed", str(result.error)
            if t.kind == "run":
                self._finish_job(t, "failed", t.error)
                return
            self.on_event(f"{t.describe()}: failed after {t.attempts} attempt(s): {t.error}")
            for run in [w for w in waiting if t in w.waits_for]:
                waiting.remove(run)
                self._finish_job(run, "failed", f"{t.describe()} failed: {t.error}")

    def _finish_job(self, t: Task, status: str, error: str | None) -> None:
        outcome = self.by_job[t.job.job_id]
        outcome.status, outcome.error = status, error
        outcome.attempts, outcome.wall_time_s = t.attempts, t.wall_time_s
        suffix = f": {error}" if error else ""
        self.on_event(f"{outcome.job.name}: {status} after {t.attempts} attempt(s){suffix}")


def read_summary(out_dir: Path) -> dict[str, Any]:
    import json

    return dict(json.loads((out_dir / SWEEP_FILE).read_text(encoding="utf-8")))
