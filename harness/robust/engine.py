"""Attack many examples: in-process or in forked worker processes, deterministically.

Every (recipe, example) job is attacked from a clean state: TextAttack's caches are cleared and
random/numpy/torch are seeded from (seed, recipe, example id). So an example's outcome does not
depend on which worker ran it, in what order, or whether the run was resumed; the merge order is
fixed by the caller. Workers are forked after the model, the attacks and the warmed query cache
exist, so they share them copy-on-write and start in milliseconds; each worker uses one torch
thread (several single-threaded searches beat one search on several threads for the small
batches attacks send). A job whose time budget runs out is recorded as 'timed_out'.
"""

from __future__ import annotations

import hashlib
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

from harness.robust.victim import VictimWrapper


@dataclass(frozen=True)
class Job:
    recipe: str
    example_id: str
    text: str
    label: int
    seed: int

    @property
    def row_id(self) -> str:
        return f"{self.recipe}:{self.example_id}"


def example_seed(seed: int, recipe: str, example_id: str) -> int:
    digest = hashlib.sha256(f"{seed}\0{recipe}\0{example_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


# Set in the parent before forking; workers read it (fork shares it without pickling).
_STATE: dict[str, Any] = {}


def _worker_init() -> None:
    import torch

    from harness.robust.textattack_adapter import reopen_inherited_corpus_files

    torch.set_num_threads(1)
    reopen_inherited_corpus_files()


def _run_job(job: Job) -> tuple[Job, dict[str, Any]]:
    from harness.robust.attacks import attack_example

    attack = _STATE["attacks"][job.recipe]
    victim: VictimWrapper = _STATE["victim"]
    row = attack_example(
        attack, victim, job.text, job.label, seed=job.seed, time_budget_s=_STATE["time_budget_s"]
    )
    return job, row


def run_jobs(
    jobs: Sequence[Job],
    *,
    attacks: dict[str, Any],
    victim: VictimWrapper,
    time_budget_s: float | None,
    workers: int,
    on_result: Callable[[Job, dict[str, Any]], None],
) -> None:
    """Attack every job; ``on_result`` is called in this process as each one finishes."""
    _STATE.update(attacks=attacks, victim=victim, time_budget_s=time_budget_s)
    try:
        if workers <= 1 or len(jobs) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
            for job in jobs:
                on_result(*_run_job(job))
            return
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(
            max_workers=min(workers, len(jobs)), mp_context=context, initializer=_worker_init
        ) as pool:
            futures = [pool.submit(_run_job, job) for job in jobs]
            for future in as_completed(futures):
                on_result(*future.result())
    finally:
        _STATE.clear()
