"""A 4-job sweep on 2 cores: the local executor against running the jobs one by one.

Jobs: the packaged MiniLM (max_length 64 and 128) x {accuracy, invariance} on 200
rotten-tomatoes test examples. Every job starts a fresh process in both arms (imports, model
load, predictions, suite), so the comparison is the scheduling alone:

- ours: ``harness sweep`` with the local executor, 2 workers x 1 torch thread each;
- peer: the jobs one by one, as a shell loop of ``harness run --set ... --out ...`` would run
  them, each with 2 torch threads (all cores for one job at a time).

Each round writes into fresh folders (a re-run would reuse finished jobs). HARNESS_BENCH_ROUNDS
sets the rounds (default 2).
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

ROUNDS = int(os.environ.get("HARNESS_BENCH_ROUNDS", "2"))
BASE = {
    "name": "bench",
    "seed": 0,
    "dataset": {"name": "rotten-tomatoes", "eval_split": "test", "max_examples": 200},
    "model": {"artifact": "minilm-l6", "max_length": 64, "batch_size": 32},
    "suites": [{"name": "accuracy"}],
}
MATRIX = {
    "models": [{"model.max_length": 64}, {"model.max_length": 128}],
    "suites": [
        {"label": "accuracy", "suites": [{"name": "accuracy"}]},
        {"label": "invariance", "suites": [{"name": "invariance", "params": {"n_examples": 60}}]},
    ],
}


@pytest.fixture(scope="module")
def files() -> dict[str, Any]:
    from harness import artifacts
    from harness.sweep.spec import load_sweep

    artifacts.fetch("minilm-l6")  # warm the artifact cache outside the timings
    artifacts.fetch("rotten-tomatoes")
    root = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    (root / "base.yaml").write_text(yaml.safe_dump(BASE), encoding="utf-8")
    spec = {"name": "bench", "base": "base.yaml", "matrix": MATRIX, "retries": 0}
    sweep_file = root / "sweep.yaml"
    sweep_file.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    jobs = load_sweep(sweep_file).jobs
    assert len(jobs) == 4
    return {"root": root, "sweep": sweep_file, "jobs": jobs, "counter": itertools.count()}


def harness(*args: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_ours_local_executor(benchmark: Any, files: dict[str, Any]) -> None:
    benchmark.group = "sweep-4-jobs-2-cores"
    benchmark.extra_info["role"] = "ours"
    benchmark.extra_info["setup"] = "harness sweep --workers 2 (1 torch thread per job)"

    def sweep() -> None:
        out = files["root"] / f"ours-{next(files['counter'])}"
        harness("sweep", str(files["sweep"]), "--workers", "2", "--out", str(out))

    benchmark.pedantic(sweep, rounds=ROUNDS, iterations=1)


def test_peer_one_by_one(benchmark: Any, files: dict[str, Any]) -> None:
    benchmark.group = "sweep-4-jobs-2-cores"
    benchmark.extra_info["role"] = "peer"
    benchmark.extra_info["setup"] = "harness run per job, sequential (2 torch threads per job)"
    base = str(files["root"] / "base.yaml")

    def one_by_one() -> None:
        out = files["root"] / f"peer-{next(files['counter'])}"
        for job in files["jobs"]:
            sets = [a for o in job.overrides for a in ("--set", o)]
            harness("run", base, *sets, "--set", "threads=2", "--out", str(out / job.job_id))

    benchmark.pedantic(one_by_one, rounds=ROUNDS, iterations=1)
