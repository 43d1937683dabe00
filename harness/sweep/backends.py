"""Where a sweep's tasks run: a local spawn pool or Ray tasks, behind one small protocol.

Both give every attempt a fresh worker process (clean torch state, exact thread pinning) and
report a worker that died as a failed ``TaskResult`` (``died``), so the driver retries it the
same way on both. Nothing here imports ray until ``RayBackend`` is made.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor
from concurrent.futures import wait as futures_wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Protocol

from harness.errors import ConfigError, ExitCode
from harness.sweep.work import TaskResult, Work, run_task

MSG_DIED = "the worker process died before returning ({detail}); killed, out of memory or crashed"
MSG_NO_RAY = "executor 'ray' needs Ray: pip install 'harness[ray]' (import failed: {error})"


class Backend(Protocol):
    slots: int

    def submit(self, work: Work) -> Any: ...

    def wait(self, handles: list[Any]) -> list[tuple[Any, TaskResult]]: ...

    def close(self) -> None: ...


def died(detail: str) -> TaskResult:
    return TaskResult(
        ok=False, error=MSG_DIED.format(detail=detail), exit_code=int(ExitCode.SUITE), died=True
    )


@dataclass(eq=False)  # a handle is a dict key: hashed by identity
class _Local:
    future: Future[TaskResult]
    pool: ProcessPoolExecutor


class LocalBackend:
    """One single-worker spawn pool per attempt: every job gets a fresh process (clean torch
    state, exact thread pinning), and a process that dies fails only its own job (in a shared
    pool a dead worker breaks every job in flight)."""

    def __init__(self, workers: int) -> None:
        self.slots = workers
        self._context = multiprocessing.get_context("spawn")
        self._open: list[_Local] = []

    def submit(self, work: Work) -> _Local:
        pool = ProcessPoolExecutor(max_workers=1, mp_context=self._context)
        handle = _Local(pool.submit(run_task, work), pool)
        self._open.append(handle)
        return handle

    def wait(self, handles: list[Any]) -> list[tuple[Any, TaskResult]]:
        done, _ = futures_wait([h.future for h in handles], return_when=FIRST_COMPLETED)
        out = []
        for h in handles:
            if h.future not in done:
                continue
            try:
                result = h.future.result()
            except BrokenProcessPool as exc:
                result = died(str(exc) or type(exc).__name__)
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

    def submit(self, work: Work) -> Any:
        return self._remote.options(**self._options).remote(work)

    def wait(self, handles: list[Any]) -> list[tuple[Any, TaskResult]]:
        ray = self._ray
        ready, _ = ray.wait(handles, num_returns=1)
        out = []
        for ref in ready:
            try:
                result = ray.get(ref)
            except ray.exceptions.RayError as exc:
                result = died(type(exc).__name__)
            out.append((ref, result))
        return out

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()
