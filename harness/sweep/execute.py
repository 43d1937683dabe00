"""Running a sweep's jobs: a local process pool or Ray tasks, with retries and a summary.

Each job runs ``harness.run.runner.execute`` in its own process (a fresh one per attempt: a
single-worker spawn pool locally, a ``max_calls=1`` task on Ray), into ``SWEEP/<job id>``.
Torch threads are pinned per job (``--set threads=N``) so parallel jobs do not oversubscribe
the cores. A job whose record is already complete is not started again; an unfinished one
resumes in its folder. A failed attempt (an error, a failed suite, or a worker process that
died) is retried up to ``retries`` times by this driver, the same way on both executors, then
the job is recorded as failed and the sweep goes on. Progress lands in ``SWEEP/sweep.json``
after every finished task. Nothing here imports torch or ray at module level.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import statistics
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor
from concurrent.futures import wait as futures_wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import yaml

from harness.errors import ConfigError, ExitCode, HarnessError
from harness.records import RECORD_FILE, load_record
from harness.store import atomic_write_json, atomic_write_text, sha256_json
from harness.sweep.shard import SHARDABLE, is_done, shard_log, suite_key
from harness.sweep.spec import Job, Sweep, available_cores

SWEEP_FILE = "sweep.json"
BASE_FILE = "base.yaml"
TEST_KILL_ENV = "HARNESS_SWEEP_TEST_KILL"  # tests only: job names whose first attempt is SIGKILLed
Executor = Literal["local", "ray"]
Result = dict[str, Any]

MSG_DIED = "the worker process died before returning ({detail}); killed, out of memory or crashed"
MSG_NO_RAY = "executor 'ray' needs Ray: pip install 'harness[ray]' (import failed: {error})"


# ------------------------------------------------------------------ inside the worker process


def run_task(payload: dict[str, Any]) -> Result:
    """Run one task (a job's run, or one shard of a suite) in a worker. Never raises: a result
    says ok or carries the error, so only a dead process reaches the driver as an exception."""
    started = time.perf_counter()
    cwd = payload.get("cwd")
    if cwd and Path(cwd).is_dir():
        os.chdir(cwd)  # relative paths in run files are relative to where the sweep was started
    try:
        result = _run_shard(payload) if payload["kind"] == "shard" else _run_job(payload)
    except HarnessError as exc:
        result = {"ok": False, "error": exc.message, "exit_code": int(exc.exit_code)}
    except Exception as exc:  # a bug in one job must not lose the sweep
        result = {
            "ok": False,
            "error": f"{type(exc).__name__}: {exc}",
            "exit_code": int(ExitCode.SUITE),
        }
    result["wall_time_s"] = time.perf_counter() - started
    return result


def _run_job(payload: dict[str, Any]) -> Result:
    from harness.run.runner import execute
    from harness.sweep.shard import merge_shards

    run_dir = Path(payload["run_dir"])
    for merge in payload.get("merge", []):
        merge_shards(run_dir, merge["key"], [Path(p) for p in merge["logs"]])
    factory = _die_after_predictions if payload.get("test_kill") else None
    result = execute(
        Path(payload["config_path"]),
        overrides=list(payload["overrides"]),
        out_dir=run_dir,
        progress_factory=factory,
        adopt_examples=bool(payload.get("merge")),
    )
    errors = [f"{s.name}: {s.error}" for s in result.record.suites if s.status != "ok"]
    return {
        "ok": result.record.status == "complete",
        "status": result.record.status,
        "exit_code": int(result.exit_code),
        "error": "; ".join(errors) or None,
    }


def _die_after_predictions(label: str, total: int) -> Callable[[int, int], None]:
    """Test hook: SIGKILL this process once the predictions are on disk (so the retry resumes)."""

    def progress(done: int, total_: int) -> None:
        if label == "predict" and done >= total_:
            os.kill(os.getpid(), signal.SIGKILL)

    return progress


def _run_shard(payload: dict[str, Any]) -> Result:
    from harness.sweep.shard import run_shard

    n = run_shard(
        Path(payload["config_path"]),
        list(payload["overrides"]),
        payload["suite_index"],
        payload["k"],
        payload["n_shards"],
        Path(payload["log"]),
    )
    return {"ok": True, "rows": n, "error": None}


# ------------------------------------------------------------------ backends


class Backend(Protocol):
    slots: int

    def submit(self, payload: dict[str, Any]) -> Any: ...

    def wait(self, handles: list[Any]) -> list[tuple[Any, Result]]: ...

    def close(self) -> None: ...


def _died(detail: str) -> Result:
    return {
        "ok": False,
        "error": MSG_DIED.format(detail=detail),
        "exit_code": int(ExitCode.SUITE),
        "died": True,
    }


@dataclass(eq=False)  # a handle is a dict key: hashed by identity
class _Local:
    future: Future[Result]
    pool: ProcessPoolExecutor


class LocalBackend:
    """One single-worker spawn pool per attempt: every job gets a fresh process (clean torch
    state, exact thread pinning), and a process that dies fails only its own job (in a shared
    pool a dead worker breaks every job in flight)."""

    def __init__(self, workers: int) -> None:
        self.slots = workers
        self._context = multiprocessing.get_context("spawn")
        self._open: list[_Local] = []

    def submit(self, payload: dict[str, Any]) -> _Local:
        pool = ProcessPoolExecutor(max_workers=1, mp_context=self._context)
        handle = _Local(pool.submit(run_task, payload), pool)
        self._open.append(handle)
        return handle

    def wait(self, handles: list[Any]) -> list[tuple[Any, Result]]:
        done, _ = futures_wait([h.future for h in handles], return_when=FIRST_COMPLETED)
        out = []
        for h in handles:
            if h.future not in done:
                continue
            try:
                result = h.future.result()
            except BrokenProcessPool as exc:
                result = _died(str(exc) or type(exc).__name__)
            h.pool.shutdown(wait=True)
            self._open.remove(h)
            out.append((h, result))
        return out

    def close(self) -> None:
        for h in self._open:
            h.pool.shutdown(wait=False, cancel_futures=True)
        self._open.clear()


class RayBackend:
    """Ray tasks on the cluster at ``address`` (or a local instance started here). Each task
    reserves the job's resources; ``max_calls=1`` gives every attempt a fresh worker process."""

    def __init__(
        self, *, address: str | None, resources: dict[str, float], local_cpus: int
    ) -> None:
        try:
            import ray
        except ImportError as exc:
            raise ConfigError(MSG_NO_RAY.format(error=exc)) from None
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address is None:
                kwargs["num_cpus"] = local_cpus
            ray.init(address=address, **kwargs)
            self._started = True
        self._remote = ray.remote(max_calls=1, max_retries=0)(run_task)
        self._options = resources
        self.slots = 1 << 30  # Ray queues tasks until the cluster has their resources

    def submit(self, payload: dict[str, Any]) -> Any:
        return self._remote.options(**self._options).remote(payload)

    def wait(self, handles: list[Any]) -> list[tuple[Any, Result]]:
        ray = self._ray
        ready, _ = ray.wait(handles, num_returns=1)
        out = []
        for ref in ready:
            try:
                result = ray.get(ref)
            except ray.exceptions.RayError as exc:
                result = _died(type(exc).__name__)
            out.append((ref, result))
        return out

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()


# ------------------------------------------------------------------ the driver


@dataclass
class Task:
    job: Job
    kind: Literal["run", "shard"]
    payload: dict[str, Any]
    attempts: int = 0
    status: str = "pending"
    error: str | None = None
    wall_time_s: float = 0.0
    waits_for: list[Task] = field(default_factory=list)


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
            "shards": [
                {
                    "suite_index": t.payload["suite_index"],
                    "k": t.payload["k"],
                    "n_shards": t.payload["n_shards"],
                    "status": t.status,
                    "attempts": t.attempts,
                    "error": t.error,
                }
                for t in self.shards
            ],
        }


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


def _pinned_threads(job: Job, run_dir: Path, threads: int) -> list[str]:
    """``--set threads=N`` unless the run file sets threads itself. A job resumed from an
    unfinished folder keeps the thread count it started with, so its config digest matches."""
    if job.config.threads is not None:
        return list(job.overrides)
    previous = run_dir / "config.yaml"
    if previous.is_file():
        saved = (yaml.safe_load(previous.read_text(encoding="utf-8")) or {}).get("threads")
        threads = int(saved) if saved else threads
    return [*job.overrides, f"threads={threads}"]


def _kill_listed(job: Job) -> bool:
    names = [n for n in os.environ.get(TEST_KILL_ENV, "").split(",") if n]
    return any(job.name == n or job.job_id == n for n in names)


def plan(sweep: Sweep, *, threads: int) -> tuple[list[JobOutcome], list[Task]]:
    """Outcomes for every job (finished ones already 'reused') and the tasks left to run."""
    base = sweep.out_dir / BASE_FILE
    outcomes, tasks = [], []
    for job in sweep.jobs:
        run_dir = sweep.out_dir / job.job_id
        outcome = JobOutcome(job, run_dir)
        outcomes.append(outcome)
        previous = load_record(run_dir) if (run_dir / RECORD_FILE).is_file() else None
        if previous is not None and previous.status == "complete":
            outcome.status = "reused"
            continue
        overrides = _pinned_threads(job, run_dir, threads)
        common = {
            "job_id": job.job_id,
            "config_path": str(base),
            "overrides": overrides,
            "cwd": str(Path.cwd()),
        }
        names = [s.name for s in job.config.suites]
        merges, shards = [], []
        for i, spec in enumerate(job.config.suites):
            n_shards = sweep.spec.shards.get(spec.name)
            already = (
                previous is not None
                and i < len(previous.suites)
                and previous.suites[i].status == "ok"
            )
            if n_shards is None or spec.name not in SHARDABLE or already:
                continue
            key = suite_key(names, i)
            logs = [shard_log(sweep.out_dir, job.job_id, key, k, n_shards) for k in range(n_shards)]
            merges.append({"key": key, "logs": [str(p) for p in logs]})
            for k, log in enumerate(logs):
                if not is_done(log):
                    payload = {
                        **common,
                        "kind": "shard",
                        "suite_index": i,
                        "k": k,
                        "n_shards": n_shards,
                        "log": str(log),
                    }
                    shards.append(Task(job, "shard", payload))
        run = Task(
            job,
            "run",
            {**common, "kind": "run", "run_dir": str(run_dir), "merge": merges},
            waits_for=shards,
        )
        outcome.shards = shards
        tasks += [*shards, run]
    return outcomes, tasks


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
    res = sweep.spec.resources
    if executor == "local":
        workers = workers or sweep.spec.workers or cores
        threads = sweep.spec.threads_per_job or max(1, cores // workers)
    else:
        threads = sweep.spec.threads_per_job or max(1, int(res.num_cpus))
    sweep.out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        sweep.out_dir / BASE_FILE,
        yaml.safe_dump(sweep.base_raw, sort_keys=True, allow_unicode=True),
    )
    outcomes, tasks = plan(sweep, threads=threads)
    by_job = {o.job.job_id: o for o in outcomes}
    write_summary(sweep, outcomes, executor=executor, finished=False)
    if not tasks:
        write_summary(sweep, outcomes, executor=executor, finished=True)
        return SweepResult(sweep.out_dir, outcomes)
    backend: Backend
    if executor == "ray":
        options: dict[str, float] = {"num_cpus": res.num_cpus, "num_gpus": res.num_gpus}
        if res.memory_gb:
            options["memory"] = res.memory_gb * 2**30
        backend = RayBackend(address=address, resources=options, local_cpus=cores)
    else:
        backend = LocalBackend(workers or cores)
    try:
        _drive(
            backend,
            tasks,
            by_job,
            retries,
            on_event,
            lambda: write_summary(sweep, outcomes, executor=executor, finished=False),
        )
    finally:
        backend.close()
    write_summary(sweep, outcomes, executor=executor, finished=True)
    return SweepResult(sweep.out_dir, outcomes)


def _drive(
    backend: Backend,
    tasks: list[Task],
    by_job: dict[str, JobOutcome],
    retries: int,
    on_event: Callable[[str], None],
    save: Callable[[], None],
) -> None:
    waiting = list(tasks)
    running: dict[Any, Task] = {}
    while waiting or running:
        ready = [t for t in waiting if all(d.status == "ok" for d in t.waits_for)]
        for t in ready[: max(0, backend.slots - len(running))]:
            waiting.remove(t)
            t.attempts += 1
            payload = {
                **t.payload,
                "test_kill": t.kind == "run" and t.attempts == 1 and _kill_listed(t.job),
            }
            running[backend.submit(payload)] = t
        for handle, result in backend.wait(list(running)):
            t = running.pop(handle)
            t.wall_time_s += float(result.get("wall_time_s") or 0.0)
            if result.get("ok"):
                t.status = "ok"
                if t.kind == "run":
                    _finish_job(by_job[t.job.job_id], t, "ok", None, on_event)
            elif t.attempts <= retries:
                on_event(
                    f"{_what(t)}: attempt {t.attempts} failed ({result.get('error')}); retrying"
                )
                waiting.insert(0, t)
            else:
                t.status, t.error = "failed", str(result.get("error"))
                if t.kind == "run":
                    _finish_job(by_job[t.job.job_id], t, "failed", t.error, on_event)
                else:
                    on_event(f"{_what(t)}: failed after {t.attempts} attempt(s): {t.error}")
                    for run in [w for w in waiting if t in w.waits_for]:
                        waiting.remove(run)
                        _finish_job(
                            by_job[run.job.job_id],
                            run,
                            "failed",
                            f"{_what(t)} failed: {t.error}",
                            on_event,
                        )
            save()


def _what(t: Task) -> str:
    if t.kind == "shard":
        return f"{t.job.name} shard {t.payload['k'] + 1}/{t.payload['n_shards']}"
    return t.job.name


def _finish_job(
    outcome: JobOutcome, t: Task, status: str, error: str | None, on_event: Callable[[str], None]
) -> None:
    outcome.status, outcome.error = status, error
    outcome.attempts, outcome.wall_time_s = t.attempts, t.wall_time_s
    on_event(
        f"{outcome.job.name}: {status} after {t.attempts} attempt(s)"
        + (f": {error}" if error else "")
    )


def read_summary(out_dir: Path) -> dict[str, Any]:
    import json

    return dict(json.loads((out_dir / SWEEP_FILE).read_text(encoding="utf-8")))
