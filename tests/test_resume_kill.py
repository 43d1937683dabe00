"""Resume without loss: SIGKILL a real `harness run` subprocess at random moments, resume each time.

The final record and per-example files must equal an uninterrupted run's (timings aside): no
example lost, none duplicated. Kills land both at random times after start (loading, predicting)
and right after a new per-example row appears (mid-suite: accuracy, robustness, attribution).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from harness.records import PREDICTIONS_FILE, load_record
from harness.store import read_jsonl

TIMING_KEYS = ("seconds", "time", "wall")
MIN_KILLS = 10


def run_file(tmp_path: Path, model: Path, data: Path) -> Path:
    run = tmp_path / "run.yaml"
    config = {
        "name": "killme",
        "seed": 3,
        "threads": 1,
        "dataset": {"path": str(data), "columns": {"id": "id"}, "labels": ["neg", "pos"], "split_fractions": {"train": 0.5, "test": 0.5}},
        "model": {"path": str(model), "max_length": 32, "batch_size": 8},
        "suites": [
            {"name": "accuracy", "params": {"n_bootstrap": 200}},
            {"name": "robustness", "params": {"recipes": ["deepwordbug", "pwws"], "n_examples": 16, "workers": 1}},
            {"name": "explain", "params": {"methods": ["ig", "ablation"], "n_examples": 16, "n_steps": 8, "max_n_steps": 8}},
        ],
    }
    run.write_text(json.dumps(config))
    return run


def start(run: Path, out: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "harness", "run", str(run), "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


def progress_mark(out: Path) -> int:
    """Rows finished so far, across predictions and every suite's per-example file."""
    total = 0
    for path in [out / PREDICTIONS_FILE, *sorted((out / "examples").glob("*.jsonl"))]:
        if path.exists():
            total += path.read_bytes().count(b"\n")
    if (out / "record.json").exists():
        total += len(json.loads((out / "record.json").read_text() or "{}").get("suites", []))
    return total


def strip_timing(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip_timing(v) for k, v in value.items() if not any(t in k for t in TIMING_KEYS)}
    if isinstance(value, list):
        return [strip_timing(v) for v in value]
    return value


def comparable_suites(out: Path) -> list[Any]:
    record = load_record(out)
    suites = []
    for s in record.suites:
        d = s.model_dump(mode="json")
        d["metrics"] = [m for m in d["metrics"] if not any(t in m["name"] for t in TIMING_KEYS) and m.get("unit") not in ("s", "ms", "examples/s")]
        suites.append(strip_timing(d))
    return suites


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume(tmp_path: Path, tiny_model_dir: Path, tiny_csv: Path) -> None:
    run = run_file(tmp_path, tiny_model_dir, tiny_csv)
    reference = tmp_path / "reference"
    assert subprocess.run([sys.executable, "-m", "harness", "run", str(run), "--out", str(reference)], capture_output=True, check=False, timeout=600).returncode == 0

    rng = random.Random(20261128)
    kills = 0
    completed: list[Path] = []
    out = tmp_path / "killed-0"
    deadline = time.monotonic() + 900
    while kills < MIN_KILLS and time.monotonic() < deadline:
        proc = start(run, out)
        before = progress_mark(out)
        by_progress = kills % 2 == 1  # alternate: a random moment, then right after new work lands
        wait_until = time.monotonic() + rng.uniform(0.3, 4.0)
        while proc.poll() is None:
            if by_progress and progress_mark(out) > before:
                time.sleep(rng.uniform(0.0, 0.2))
                break
            if not by_progress and time.monotonic() >= wait_until:
                break
            time.sleep(0.05)
        if proc.poll() is not None:
            # The run outpaced the kills: keep it for comparison, go on in a fresh folder.
            assert proc.returncode == 0, f"run failed after {kills} kills"
            completed.append(out)
            out = tmp_path / f"killed-{len(completed)}"
            continue
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
    assert kills >= MIN_KILLS, f"only {kills} kills before the deadline"
    final = subprocess.run([sys.executable, "-m", "harness", "run", str(run), "--out", str(out)], capture_output=True, check=False, timeout=600)
    assert final.returncode == 0, final.stderr
    completed.append(out)
    for out in completed:
        assert load_record(out).status == "complete"
        assert (out / PREDICTIONS_FILE).read_bytes() == (reference / PREDICTIONS_FILE).read_bytes()
        assert comparable_suites(out) == comparable_suites(reference)
        check_examples(out, reference)


def check_examples(out: Path, reference: Path) -> None:
    for path in sorted((reference / "examples").glob("*.jsonl")):
        ours = list(read_jsonl(out / "examples" / path.name))
        ids = [r["id"] for r in ours]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicated examples"
        assert strip_timing(ours) == strip_timing(list(read_jsonl(path))), f"{path.name} differs"
