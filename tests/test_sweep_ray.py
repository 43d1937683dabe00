"""The Ray executor on a real local Ray instance (in-process ``ray.init(num_cpus=2)``): the
same results as the local executor, a killed worker's job retried, and a sharded attack equal
to the unsharded one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.errors import ExitCode
from harness.store import read_jsonl
from harness.sweep.execute import TEST_KILL_ENV, run_sweep
from harness.sweep.shard import shard_log
from harness.sweep.spec import load_sweep
from tests.test_sweep import (
    assert_close,
    comparable,
    folder,
    model_axis,
    models,
    predictions,
    write_sweep,
)

ray = pytest.importorskip("ray")

__all__ = ["folder", "models"]  # fixtures shared with test_sweep.py

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[None]:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def files_under(run_dir: Path, sub: str) -> dict[str, bytes]:
    root = run_dir / sub
    return {p.name: p.read_bytes() for p in sorted(root.glob("*"))} if root.is_dir() else {}


def test_ray_equals_local_and_retries_a_killed_worker(
    ray_instance: None, folder: Path, models: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    matrix = {"models": model_axis(models)}
    sweep_file = write_sweep(folder, "both", matrix=matrix, retries=1)
    local = run_sweep(load_sweep(sweep_file, out_dir=folder / "local"), workers=2)
    monkeypatch.setenv(TEST_KILL_ENV, "m1")  # m1's first Ray attempt is SIGKILLed mid-run
    events: list[str] = []
    on_ray = run_sweep(
        load_sweep(sweep_file, out_dir=folder / "ray"), executor="ray", on_event=events.append
    )
    assert local.exit_code == on_ray.exit_code == ExitCode.OK
    attempts = {j.job.name: j.attempts for j in on_ray.jobs}
    assert attempts == {"m0": 1, "m1": 2}
    assert any(e.startswith("m1: attempt 1 failed (the worker process died") for e in events)
    for a, b in zip(local.jobs, on_ray.jobs, strict=True):
        assert a.job.job_id == b.job.job_id and a.status == b.status == "ok"
        assert a.run_dir != b.run_dir
        assert predictions(a.run_dir) == predictions(b.run_dir)
        assert comparable(a.run_dir) == comparable(b.run_dir)
        assert files_under(a.run_dir, "examples") == files_under(b.run_dir, "examples")


ATTACK = {
    "name": "robustness",
    "params": {
        "recipes": ["deepwordbug"],
        "n_examples": 8,
        "query_budget": 300,
        "time_budget_s": None,  # a wall-clock budget would make outcomes machine-dependent
        "validity": False,
    },
}
# Figures that describe this run's own attack work (how long, how many attacked here), not the
# result: a merged run attacked nothing itself.
RUN_WORK = ("attack_wall_time_s", "jobs_run")


def without_run_work(run_dir: Path) -> dict[str, Any]:
    data = comparable(run_dir, drop_metrics=("seconds", "examples_per_second"))
    for suite in data["suites"]:
        for key in RUN_WORK:
            suite["details"].pop(key, None)
    return data


def rows_without_timing(file: Path) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in read_jsonl(file)]


def test_sharded_attack_on_ray_equals_unsharded(
    ray_instance: None, folder: Path, models: list[Path]
) -> None:
    matrix = {"models": model_axis(models[:1]), "suites": [{"label": "attack", "suites": [ATTACK]}]}
    plain = load_sweep(write_sweep(folder, "plain", matrix=matrix), out_dir=folder / "plain")
    sharded = load_sweep(
        write_sweep(folder, "sharded", matrix=matrix, shards={"robustness": 2}),
        out_dir=folder / "sharded",
    )
    a = run_sweep(plain, executor="ray")
    b = run_sweep(sharded, executor="ray")
    assert a.exit_code == b.exit_code == ExitCode.OK
    ja, jb = a.jobs[0], b.jobs[0]
    assert [t.status for t in jb.shards] == ["ok", "ok"]
    shard_rows = [
        rows_without_timing(shard_log(b.out_dir, jb.job.job_id, "robustness", k, 2))
        for k in range(2)
    ]
    assert all(shard_rows) and sum(map(len, shard_rows)) == 8
    merged = rows_without_timing(jb.run_dir / "examples" / "robustness.jsonl")
    assert_close(merged, rows_without_timing(ja.run_dir / "examples" / "robustness.jsonl"))
    assert {r["result"] for r in merged} - {"skipped"}  # something was actually attacked
    assert_close(without_run_work(ja.run_dir), without_run_work(jb.run_dir))
    assert predictions(ja.run_dir) == predictions(jb.run_dir)
