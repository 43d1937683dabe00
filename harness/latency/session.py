"""Running jobs: threads pinned, inference mode, one row per measurement, resume.

A row holds the pytest-benchmark entry with its raw round times, a millisecond summary and the
conditions (threads, device, dtype). Rows are appended (and fsynced) as each job ends; a job
whose row a resumed run already holds is not measured again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from harness.latency.scenarios import Job
from harness.latency.timing import entry_seconds, pinned_threads, summarise
from harness.store import ExampleLog

Row = dict[str, Any]


@contextmanager
def measuring(threads: int) -> Iterator[None]:
    """Pinned torch threads, batches one at a time on all of them, and ``torch.inference_mode``
    (no autograd bookkeeping)."""
    import torch

    from harness.models.base import one_batch_at_a_time

    with pinned_threads(threads), one_batch_at_a_time(), torch.inference_mode():
        yield


class Session:
    """The rows of one suite run, in the order they were measured (or found)."""

    def __init__(
        self,
        examples: ExampleLog,
        *,
        info: Mapping[str, Any],
        progress: Callable[[int, int], None],
        total: int,
    ) -> None:
        self.examples = examples
        self.info = dict(info)
        self.progress = progress
        self.total = total
        self.rows: dict[str, Row] = {}
        self.observed_threads: set[int] = set()
        self.resumed = 0

    def execute(self, jobs: Sequence[Job], threads: int) -> None:
        import torch

        with measuring(threads):
            self.observed_threads.add(torch.get_num_threads())
            for job in jobs:
                done = self.examples.done.get(job.id)
                if done is not None:
                    self.resumed += 1
                    self.rows[job.id] = dict(done)
                    self.progress(len(self.rows), self.total)
                else:
                    entry = job.run()
                    self.observed_threads.add(torch.get_num_threads())
                    self.record(
                        {
                            "id": job.id,
                            "scenario": job.scenario,
                            "params": dict(job.params),
                            "summary": summarise(entry_seconds(entry)),
                            "iterations": int(entry["stats"]["iterations"]),
                            **self.info,
                            "benchmark": entry,
                        }
                    )

    def record(self, row: Row) -> None:
        self.examples.append(row)
        self.rows[str(row["id"])] = row
        self.progress(len(self.rows), self.total)

    def found(self, row_id: str) -> Row | None:
        """A row a resumed run already holds, also made part of this run's rows."""
        done = self.examples.done.get(row_id)
        if done is not None:
            self.rows[row_id] = dict(done)
        return self.rows.get(row_id)

    def entries(self) -> list[dict[str, Any]]:
        return [r["benchmark"] for r in self.rows.values() if "benchmark" in r]

    def seconds(self, row_id: str) -> list[float]:
        return entry_seconds(self.rows[row_id]["benchmark"])
