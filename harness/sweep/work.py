"""What a sweep hands a worker process, and what the worker does with it.

A task is plain data: a job's validated ``RunConfig`` and suite params objects (pickled to the
worker, never turned back into ``--set`` text for the worker to parse again) with either the
run folder to run into (``RunWork``) or the shard of a suite to run (``ShardWork``). The worker
runs it with ``harness.run`` and answers with a ``TaskResult``; it never raises, so only a dead
process reaches the driver as an exception. Nothing here imports torch at module level.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.config import RunConfig
from harness.errors import ExitCode, HarnessError
from harness.records import SweepJob


@dataclass(frozen=True)
class Work:
    """A job's validated config, and the folder its relative paths start from."""

    job_id: str
    config: RunConfig  # threads pinned by the planner
    suite_params: tuple[Any, ...]  # each suite's validated params object, in config order
    cwd: Path  # where the sweep was started: relative paths in run files start there


@dataclass(frozen=True)
class Merge:
    """A sharded suite's shard logs, merged into the run folder before the run resumes."""

    key: str  # the suite's examples-file key (harness.run.suites.suite_key)
    logs: tuple[Path, ...]


@dataclass(frozen=True)
class RunWork(Work):
    """Run the job into ``run_dir`` (resuming what is there), after merging its shards."""

    run_dir: Path
    merges: tuple[Merge, ...] = ()
    test_kill: bool = False  # tests only: SIGKILL the worker once the predictions are on disk
    membership: SweepJob | None = None  # written into the record: the run's sweep and cell


@dataclass(frozen=True)
class ShardWork(Work):
    """Run shard ``k`` of ``n_shards`` of suite ``suite_index`` into the shard log ``log``."""

    suite_index: int
    k: int
    n_shards: int
    log: Path


@dataclass(frozen=True)
class TaskResult:
    ok: bool
    error: str | None = None
    exit_code: int = int(ExitCode.OK)
    wall_time_s: float = 0.0
    died: bool = False  # the worker process died (killed, out of memory, crashed)


def run_task(work: Work) -> TaskResult:
    """Run one task in a worker (a fresh process per attempt). Never raises."""
    started = time.perf_counter()
    if work.cwd.is_dir():
        os.chdir(work.cwd)
    try:
        result = _run(work)
    except HarnessError as exc:
        result = TaskResult(ok=False, error=exc.message, exit_code=int(exc.exit_code))
    except Exception as exc:  # a bug in one job must not lose the sweep
        result = TaskResult(ok=False, error=f"{type(exc).__name__}: {exc}", exit_code=int(ExitCode.SUITE))
    return TaskResult(result.ok, result.error, result.exit_code, time.perf_counter() - started)


def _run(work: Work) -> TaskResult:
    if isinstance(work, ShardWork):
        return _run_shard(work)
    if isinstance(work, RunWork):
        return _run_job(work)
    raise TypeError(f"not a sweep task: {type(work).__name__}")


def _run_job(work: RunWork) -> TaskResult:
    from harness.run.pipeline import RunOptions, execute_config
    from harness.sweep.shard import merge_shards

    for merge in work.merges:
        merge_shards(work.run_dir, merge.key, list(merge.logs))
    options = RunOptions(
        out_dir=work.run_dir, adopt_examples=bool(work.merges), sweep=work.membership
    )
    if work.test_kill:
        options = dataclasses.replace(options, progress_factory=_die_after_predictions)
    result = execute_config(work.config, work.suite_params, options)
    errors = [f"{s.name}: {s.error}" for s in result.record.suites if s.status != "ok"]
    return TaskResult(
        ok=result.record.status == "complete",
        error="; ".join(errors) or None,
        exit_code=int(result.exit_code),
    )


def _die_after_predictions(label: str, total: int) -> Callable[[int, int], None]:
    """Test hook: SIGKILL this process once the predictions are on disk (so the retry resumes)."""

    def progress(done: int, total_: int) -> None:
        if label == "predict" and done >= total_:
            os.kill(os.getpid(), signal.SIGKILL)

    return progress


def _run_shard(work: ShardWork) -> TaskResult:
    from harness.sweep.shard import run_shard

    run_shard(work)
    return TaskResult(ok=True)
