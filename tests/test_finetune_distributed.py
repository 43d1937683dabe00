"""Multi-process fine-tuning: real ``torchrun --nproc_per_node 2`` launches on CPU (gloo) with the
tiny BERT fixture. One fine-tune however many ranks: one lock holder, one writer, one log line
per step, the same result on every rank; the world size in the cache key; a cache hit on the
second launch; a hard interrupt resumed to the same weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.config import parse_run_config
from harness.data import load_bundle
from harness.models.finetune import prep
from harness.models.finetune.cache import CARD, cache_key, checkpoint_digest
from harness.models.finetune.card import TRAIN_LOG, read_log
from harness.models.hf import PICKLE_SUFFIXES, HFClassifier

pytestmark = pytest.mark.slow

TORCHRUN = Path(sys.executable).with_name("torchrun")
LAUNCH = [str(TORCHRUN), "--nproc_per_node", "2", "--standalone"]
TIMEOUT_S = 300  # a deadlock fails the test instead of hanging it
STEPS = 6
FINETUNE = {
    "method": "full",
    "max_steps": STEPS,
    "batch_size": 4,
    "max_length": 32,
    "learning_rate": 1e-2,
    "save_steps": 1000,
}

# Under torchrun on every rank: run_finetune with a hard interrupt (a kill mid-step) at step
# STOP, then write this rank's result to its own JSON file in the working folder (not stdout: two
# ranks share one pipe, and another rank's unterminated output can land inside a printed line).
WORKER = """
import json, logging, os, sys
from pathlib import Path
from transformers import TrainerCallback
from harness.config import load_run_config
from harness.data import load_bundle
from harness.models.finetune.job import run_finetune
from harness.models.finetune.training import FinetuneInterrupted

run_file, cache, stop = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])

class Kill(TrainerCallback):
    def on_step_end(self, args, state, control, **kw):
        if state.global_step == stop:
            raise KeyboardInterrupt

config, _ = load_run_config(run_file, [])
try:
    r = run_finetune(config, load_bundle(config.dataset), cache_root=cache, threads=1,
                     device="cpu", logger=logging.getLogger("worker"), progress=False,
                     callbacks=[Kill()] if stop else [])
    out = {"digest": r.digest, "checkpoint": str(r.checkpoint), "hit": r.cache_hit,
           "resumed": r.model_card["training"]["resumed_from_step"]}
except FinetuneInterrupted as exc:
    out = {"interrupted": exc.message}
rank = int(os.environ["RANK"])
Path(f"result-{rank}.json").write_text(json.dumps({"rank": rank, **out}))
"""


def run_file(folder: Path, model_dir: Path, csv: Path, **finetune: Any) -> Path:
    raw = {
        "name": "ddp",
        "seed": 0,
        "threads": 1,
        "device": "cpu",
        "dataset": {
            "path": str(csv),
            "columns": {"id": "id", "text": "text", "label": "label"},
            "labels": ["neg", "pos"],
            "split_fractions": {"train": 0.6, "dev": 0.2, "test": 0.2},
        },
        "finetune": {"base": {"path": str(model_dir)}, **FINETUNE, **finetune},
        "suites": [{"name": "accuracy"}],
    }
    path = folder / "run.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def launch(args: list[str], cwd: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HARNESS_CACHE": str(cache),
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "COLUMNS": "250",  # one output line per message
    }
    proc = subprocess.run(
        [*LAUNCH, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def results(proc: subprocess.CompletedProcess[str], folder: Path) -> dict[int, dict[str, Any]]:
    """Each rank's result file from one launch in ``folder``, consumed so the next launch starts
    clean."""
    files = sorted(folder.glob("result-*.json"))
    rows = [json.loads(f.read_text()) for f in files]
    for f in files:
        f.unlink()
    by_rank = {r.pop("rank"): r for r in rows}
    assert sorted(by_rank) == [0, 1], proc.stdout[-3000:] + proc.stderr[-3000:]
    return by_rank


@pytest.fixture(scope="module")
def cli_runs(
    tiny_model_dir: Path, tiny_csv: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """``torchrun ... -m harness finetune RUNFILE`` twice: a fine-tune, then a cache hit."""
    work = tmp_path_factory.mktemp("ddp-cli")
    cache = work / "cache"
    path = run_file(work, tiny_model_dir, tiny_csv)
    first = launch(["-m", "harness", "finetune", str(path)], work, cache)
    folders = [p for p in (cache / "finetune").iterdir() if p.is_dir()]
    assert len(folders) == 1, folders
    folder = folders[0]
    card_bytes = (folder / CARD).read_bytes()
    log_bytes = (folder / TRAIN_LOG).read_bytes()
    second = launch(["-m", "harness", "finetune", str(path)], work, cache)
    return {
        "path": path,
        "folder": folder,
        "first": first.stdout,
        "second": second.stdout,
        "card_bytes": card_bytes,
        "log_bytes": log_bytes,
    }


def test_two_process_finetune_writes_one_checkpoint(cli_runs: dict[str, Any]) -> None:
    folder: Path = cli_runs["folder"]
    card = json.loads((folder / CARD).read_text())
    assert card["hyperparameters"]["world_size"] == 2
    assert card["hyperparameters"]["effective_batch_size"] == 2 * FINETUNE["batch_size"]
    assert card["training"]["steps"] == STEPS and card["training"]["examples_per_s"] > 0
    assert card["checkpoint_digest"] == checkpoint_digest(folder)
    # One log line per logged step (not one per rank), and one final dev evaluation.
    log = read_log(folder / TRAIN_LOG)
    assert [r["step"] for r in log if "loss" in r] == list(range(1, STEPS + 1))
    assert [r["step"] for r in log if "eval_loss" in r] == [STEPS]
    assert [p["step"] for p in card["dev_curve"]] == [STEPS]
    names = {p.relative_to(folder).as_posix() for p in folder.rglob("*")}
    assert not [
        n
        for n in names
        if n.startswith(("checkpoint-", "best")) or Path(n).suffix in PICKLE_SUFFIXES
    ]
    # Both ranks return rank 0's checkpoint, after it was written.
    first = cli_runs["first"]
    assert first.count("(cache hit: False)") == 2, first
    assert f"rank 1/2: checkpoint {folder} digest {card['checkpoint_digest']}" in first
    assert f"digest: {card['checkpoint_digest']}" in first
    model = HFClassifier.load(folder, name="ddp", source="finetune", max_length=32)
    assert model.predict_proba(["a fine film", "dull"]).shape == (2, 2)


def test_world_size_is_part_of_the_cache_key(cli_runs: dict[str, Any]) -> None:
    config, _ = parse_run_config(yaml.safe_load(cli_runs["path"].read_text()), source="test")
    assert config.finetune is not None
    base = prep.resolve_base(config.finetune.base, base_dir=Path.cwd())
    train, dev = prep.select_splits(load_bundle(config.dataset), config.finetune, 0)
    from harness.models.finetune.job import train_precision

    prec = train_precision(config.finetune.precision, "cpu").precision  # auto: bf16 where native
    keys = {n: cache_key(base, train, dev, config.finetune, 0, n, prec) for n in (1, 2)}
    assert cli_runs["folder"].name == keys[2] != keys[1]


def test_second_launch_is_a_cache_hit_on_every_rank(cli_runs: dict[str, Any]) -> None:
    second, folder = cli_runs["second"], cli_runs["folder"]
    assert second.count("(cache hit: True)") == 2, second
    assert f"rank 1/2: checkpoint {folder}" in second
    # Nothing was trained or rewritten.
    assert (folder / CARD).read_bytes() == cli_runs["card_bytes"]
    assert (folder / TRAIN_LOG).read_bytes() == cli_runs["log_bytes"]


def test_interrupted_two_process_finetune_resumes_to_the_same_weights(
    cli_runs: dict[str, Any], tiny_model_dir: Path, tiny_csv: Path, tmp_path: Path
) -> None:
    # Same recipe as the CLI run but a checkpoint every 2 steps (save_steps is in the key but
    # not in the weights); every rank is killed mid-step 5, so checkpoint-4 is what is left.
    path = run_file(tmp_path, tiny_model_dir, tiny_csv, save_steps=2)
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    cache = tmp_path / "cache"
    stopped = results(launch([str(script), str(path), str(cache), "5"], tmp_path, cache), tmp_path)
    for rank in (0, 1):
        assert "interrupted at step 5" in stopped[rank]["interrupted"]
        assert "checkpoint-4" in stopped[rank]["interrupted"]
    resumed = results(launch([str(script), str(path), str(cache), "0"], tmp_path, cache), tmp_path)
    assert resumed[0] == resumed[1]
    assert resumed[0]["resumed"] == 4 and not resumed[0]["hit"]
    folder = Path(resumed[0]["checkpoint"])
    steps = [r["step"] for r in read_log(folder / TRAIN_LOG) if "loss" in r]
    assert steps == list(range(1, STEPS + 1))
    # Optimizer, scheduler, per-rank RNG and data order restored: the uninterrupted weights.
    expected = json.loads((cli_runs["folder"] / CARD).read_text())["checkpoint_digest"]
    assert resumed[0]["digest"] == expected
