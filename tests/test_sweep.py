"""Sweeps: expansion and validation, the local executor (retries, resume, failures, exit
code, leaderboard), and sharding a suite by example (equal to the unsharded run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.errors import ConfigError, ExitCode
from harness.records import PREDICTIONS_FILE, load_record
from harness.run.suites import suite_key
from harness.store import read_jsonl
from harness.sweep.execute import SWEEP_FILE, TEST_KILL_ENV, run_sweep
from harness.sweep.shard import shard_log
from harness.sweep.spec import MSG_DUPLICATE, load_sweep
from tests.conftest import build_tiny_bert


def write_base(folder: Path, model_dir: Path, csv: Path) -> Path:
    base = {
        "name": "tiny",
        "seed": 0,
        "dataset": {
            "path": str(csv),
            "columns": {"id": "id", "text": "text", "label": "label", "groups": ["group"]},
            "labels": ["neg", "pos"],
            "split_fractions": {"train": 0.5, "test": 0.5},
        },
        "model": {"path": str(model_dir), "max_length": 32, "batch_size": 16},
        "suites": [{"name": "accuracy", "params": {"n_bootstrap": 200}}],
    }
    path = folder / "base.yaml"
    path.write_text(yaml.safe_dump(base), encoding="utf-8")
    return path


def write_sweep(folder: Path, name: str, **spec: Any) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(
        yaml.safe_dump({"name": name, "base": "base.yaml", **spec}, sort_keys=False),
        encoding="utf-8",
    )
    return path


def comparable(run_dir: Path, drop_metrics: tuple[str, ...] = ()) -> dict[str, Any]:
    """A record without what differs between two equal runs: timings, timestamps, folders, and
    the sweep the run was a job of (its name and id)."""
    record = load_record(run_dir)
    data = record.model_dump(mode="json", exclude={"provenance", "sweep"})
    for suite in data["suites"]:
        suite.pop("wall_time_s")
        suite["metrics"] = [
            m for m in suite["metrics"] if not any(d in m["name"] for d in drop_metrics)
        ]
    return data


def assert_close(a: Any, b: Any, where: str = "") -> None:
    """Equal structure and equal non-float values; floats equal up to float32 rounding.

    A shard batches its examples with other neighbours than the whole sample does, and a
    transformer's float32 reductions round differently with the padded length: the last bits
    of a probability may differ (tiny models built in other sessions showed it), nothing else.
    """
    if isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-5, abs=1e-7), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            assert_close(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_close(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def predictions(run_dir: Path) -> bytes:
    return (run_dir / PREDICTIONS_FILE).read_bytes()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("models")
    return [build_tiny_bert(root / "m0", seed=0), build_tiny_bert(root / "m1", seed=1)]


@pytest.fixture()
def folder(tmp_path: Path, models: list[Path], tiny_csv: Path) -> Path:
    write_base(tmp_path, models[0], tiny_csv)
    return tmp_path


def model_axis(models: list[Path]) -> list[dict[str, str]]:
    return [{"model.path": str(m)} for m in models]


# ------------------------------------------------------------------ expansion and validation


def test_expansion_is_a_product_with_stable_ids(folder: Path, models: list[Path]) -> None:
    matrix = {
        "models": model_axis(models),
        "suites": [
            {"label": "acc", "suites": [{"name": "accuracy"}]},
            {
                "suites": [{"name": "invariance", "params": {"n_examples": 10}}],
                "grid": {"seed": [0, 1, 2]},
            },
        ],
        "names": [{"name": "1e3"}],  # looks like a number in YAML; must stay a string
    }
    first = load_sweep(write_sweep(folder, "s", matrix=matrix))
    again = load_sweep(write_sweep(folder, "s", matrix=matrix))
    assert len(first.jobs) == 2 * 4 * 1
    assert [j.job_id for j in first.jobs] == [j.job_id for j in again.jobs]
    assert len({j.job_id for j in first.jobs}) == 8
    names = [j.name for j in first.jobs]
    assert names[:4] == [
        "m0__acc__1e3",
        "m0__invariance_seed-0__1e3",
        "m0__invariance_seed-1__1e3",
        "m0__invariance_seed-2__1e3",
    ]
    assert all(j.config.name == "1e3" for j in first.jobs)
    assert [j.config.seed for j in first.jobs[1:4]] == [0, 1, 2]
    # Editing one entry changes that entry's job ids only.
    matrix["models"][1] = {"model.path": str(models[1]), "model.max_length": 16}
    edited = load_sweep(write_sweep(folder, "s", matrix=matrix))
    assert [j.job_id for j in edited.jobs[:4]] == [j.job_id for j in first.jobs[:4]]
    assert not {j.job_id for j in edited.jobs[4:]} & {j.job_id for j in first.jobs}


def test_every_problem_is_reported_with_job_and_key(folder: Path, models: list[Path]) -> None:
    matrix = {
        "models": [
            {"model.path": str(models[0])},
            {"model.path": str(models[1]), "model.max_lenght": 3},
        ],
        "suites": [
            {"label": "acc", "suites": [{"name": "accuracy"}]},
            {"label": "inv", "suites": [{"name": "invariance", "params": {"n_examples": 0}}]},
        ],
    }
    out = folder / "out"
    with pytest.raises(ConfigError) as info:
        load_sweep(write_sweep(folder, "bad", matrix=matrix, shards={"explain": 2}), out_dir=out)
    message = info.value.message
    assert "shards.explain: suite 'explain' cannot be sharded" in message
    assert (
        "job m1_3__acc" in message
        and "model.max_lenght: unknown key (did you mean 'max_length'?)" in message
    )
    assert "job m0__inv" in message and "suites[0].params.n_examples" in message
    assert "job m0__acc" not in message  # the valid job is not blamed
    assert not out.exists()  # nothing started


def test_duplicate_jobs_are_refused(folder: Path, models: list[Path]) -> None:
    matrix = {
        "models": [{"model.path": str(models[0])}, {"label": "again", "model.path": str(models[0])}]
    }
    with pytest.raises(ConfigError) as info:
        load_sweep(write_sweep(folder, "dup", matrix=matrix))
    assert MSG_DUPLICATE.format(a="m0", b="again") in info.value.message


def test_tasks_carry_the_validated_config_objects(folder: Path, models: list[Path]) -> None:
    """Workers get each job's validated config (threads pinned) and params objects, pickled:
    nothing is turned back into text for them to parse again."""
    import pickle

    from harness.sweep.plan import plan
    from harness.sweep.work import RunWork, ShardWork

    suites = [{"name": "accuracy"}, {"name": "invariance", "params": {"n_examples": 6}}]
    matrix = {"models": model_axis(models), "suites": [{"label": "inv", "suites": suites}]}
    sweep = load_sweep(
        write_sweep(folder, "objects", matrix=matrix, shards={"invariance": 2}), out_dir=folder / "o"
    )
    resumed = sweep.out_dir / sweep.jobs[1].job_id
    resumed.mkdir(parents=True)
    (resumed / "config.yaml").write_text("threads: 5\n", encoding="utf-8")  # started with 5
    outcomes, tasks = plan(sweep, threads=3)
    assert [o.status for o in outcomes] == ["pending", "pending"]
    assert [type(t.payload).__name__ for t in tasks] == ["ShardWork", "ShardWork", "RunWork"] * 2
    for job, threads in zip(sweep.jobs, (3, 5), strict=True):
        mine = [t.payload for t in tasks if t.job is job]
        assert all(w.config == job.config.model_copy(update={"threads": threads}) for w in mine)
        assert all(w.suite_params is job.suite_params for w in mine)
        shards = [w for w in mine if isinstance(w, ShardWork)]
        assert [(w.suite_index, w.k, w.n_shards) for w in shards] == [(1, 0, 2), (1, 1, 2)]
        (run,) = [w for w in mine if isinstance(w, RunWork)]
        assert [m.logs for m in run.merges] == [tuple(w.log for w in shards)]
        assert pickle.loads(pickle.dumps(run)) == run  # noqa: S301 (our own bytes, as spawn sends)


# ------------------------------------------------------------------ the local executor


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.slow
def test_local_sweep_retries_killed_job_records_failure_and_resumes(
    folder: Path, models: list[Path]
) -> None:
    matrix = {
        "models": [
            *model_axis(models),
            {"label": "missing", "model.path": str(folder / "no-such-model")},
        ]
    }
    sweep_file = write_sweep(folder, "local", matrix=matrix, retries=1, workers=2)
    out = folder / "out"
    # m1's first attempt is SIGKILLed once its predictions are on disk; the retry resumes.
    proc = run_cli("sweep", str(sweep_file), "--out", str(out), env={TEST_KILL_ENV: "m1"})
    assert proc.returncode == ExitCode.SUITE, proc.stderr
    summary = json.loads((out / SWEEP_FILE).read_text())
    jobs = {j["name"]: j for j in summary["jobs"]}
    assert summary["finished"] and summary["counts"] == {"ok": 2, "failed": 1}
    assert jobs["m0"]["status"] == "ok" and jobs["m0"]["attempts"] == 1
    assert jobs["m1"]["status"] == "ok" and jobs["m1"]["attempts"] == 2
    assert "attempt 1 failed (the worker process died" in proc.stderr
    assert jobs["missing"]["status"] == "failed" and jobs["missing"]["attempts"] == 2
    assert "no-such-model" in jobs["missing"]["error"]
    for name in ("m0", "m1"):
        record = load_record(Path(jobs[name]["run_dir"]))
        assert (
            record.status == "complete" and record.provenance.torch_threads == 1
        )  # 2 cores / 2 workers
        assert record.model.name == name
    assert "m1" in proc.stdout and "failed" in proc.stdout  # the summary table
    # The killed attempt left predictions only; the retry resumed: one record, one predictions file.
    m1 = load_record(Path(jobs["m1"]["run_dir"]))
    n_test = next(s.n for s in m1.dataset.splits if s.name == "test")
    assert len(list(read_jsonl(Path(jobs["m1"]["run_dir"]) / PREDICTIONS_FILE))) == n_test

    # Again: finished jobs are skipped, the failed one is tried again; results gathered.
    before = (Path(jobs["m0"]["run_dir"]) / "record.json").read_bytes()
    entries = folder / "entries"
    settings = folder / "site.yaml"
    settings.write_text("benchmark: {dataset: reviews, eval_split: test}\n", encoding="utf-8")
    proc = run_cli(
        "sweep", str(sweep_file), "--out", str(out), "--retries", "0",
        "--leaderboard", str(entries), "--leaderboard-settings", str(settings),
    )  # fmt: skip
    assert proc.returncode == ExitCode.SUITE, proc.stderr
    assert "leaderboard: added m0-" in proc.stderr
    again = {j["name"]: j for j in json.loads((out / SWEEP_FILE).read_text())["jobs"]}
    assert again["m0"]["status"] == again["m1"]["status"] == "reused"
    assert again["missing"]["status"] == "failed" and again["missing"]["attempts"] == 1
    assert (Path(jobs["m0"]["run_dir"]) / "record.json").read_bytes() == before
    added = sorted(p.name for p in entries.iterdir())
    assert len(added) == 2 and added[0].startswith("m0-") and added[1].startswith("m1-")


@pytest.mark.slow
def test_sharded_invariance_equals_unsharded(folder: Path, models: list[Path]) -> None:
    suites = [
        {"name": "accuracy", "params": {"n_bootstrap": 100}},
        {"name": "invariance", "params": {"n_examples": 25, "n_bootstrap": 200}},
    ]
    matrix = {"models": model_axis(models[:1]), "suites": [{"label": "inv", "suites": suites}]}
    plain = load_sweep(write_sweep(folder, "plain", matrix=matrix), out_dir=folder / "plain")
    sharded = load_sweep(
        write_sweep(folder, "sharded", matrix=matrix, shards={"invariance": 3}),
        out_dir=folder / "sharded",
    )
    assert [j.job_id for j in plain.jobs] == [
        j.job_id for j in sharded.jobs
    ]  # same run, other route
    a = run_sweep(plain, workers=2)
    b = run_sweep(sharded, workers=2)
    assert a.exit_code == b.exit_code == ExitCode.OK
    ja, jb = a.jobs[0], b.jobs[0]
    assert [(t.status, t.payload.k) for t in jb.shards] == [("ok", 0), ("ok", 1), ("ok", 2)]
    key = suite_key(["accuracy", "invariance"], 1)
    logs = [shard_log(b.out_dir, jb.job.job_id, key, k, 3) for k in range(3)]
    parts = [{r["example_id"] for r in read_jsonl(log)} for log in logs]
    assert all(parts) and sum(map(len, parts)) == len(set().union(*parts)) == 25  # a partition
    examples = f"examples/{key}.jsonl"
    assert_close(list(read_jsonl(ja.run_dir / examples)), list(read_jsonl(jb.run_dir / examples)))
    assert predictions(ja.run_dir) == predictions(jb.run_dir)
    assert_close(comparable(ja.run_dir), comparable(jb.run_dir))
    record = load_record(jb.run_dir)
    assert record.status == "complete" and record.suite("invariance") is not None
    # Re-running the sharded sweep reuses everything, shards included.
    again = run_sweep(load_sweep(folder / "sharded.yaml", out_dir=folder / "sharded"), workers=2)
    assert [j.status for j in again.jobs] == ["reused"] and again.jobs[0].shards == []
