"""The fine-tuning stage on the tiny BERT fixture: learning, reload, cache, resume, determinism,
and every bad input refused before training."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.config import parse_run_config
from harness.data import Dataset, DatasetBundle, load_bundle
from harness.errors import ConfigError, DataError, ExitCode, ModelError
from harness.models.finetune import prep
from harness.models.finetune.cache import CARD, checkpoint_digest
from harness.models.finetune.card import TRAIN_LOG, read_log
from harness.models.finetune.job import FinetuneResult, run_finetune
from harness.models.finetune.training import FinetuneInterrupted
from harness.models.hf import PICKLE_SUFFIXES, HFClassifier

LOG = logging.getLogger("test-finetune")
# Small but enough for the tiny model to learn the fixture's polar words (a few s each); with
# fewer steps or smaller batches it can sit on its initial plateau, depending on the split.
FAST = {
    "learning_rate": 1e-2,
    "max_steps": 40,
    "batch_size": 16,
    "max_length": 32,
    "save_steps": 1000,
    # fp32 whatever the machine: these tests compare in-training predictions with a reload
    # bit for bit (bf16 training is tested in tests/test_precision.py).
    "precision": "fp32",
}


def make_raw(model_dir: Path, csv: Path, **finetune: Any) -> dict[str, Any]:
    ft = {"base": {"path": str(model_dir)}, **FAST, **finetune}
    return {
        "name": "ft",
        "seed": 0,
        "threads": 1,
        "dataset": {
            "path": str(csv),
            "columns": {"id": "id", "text": "text", "label": "label"},
            "labels": ["neg", "pos"],
            "split_fractions": {"train": 0.6, "dev": 0.2, "test": 0.2},
        },
        "finetune": ft,
        "suites": [{"name": "accuracy"}],
    }


def finetune(
    raw: dict[str, Any], cache: Path, *, retrain: bool = False, callbacks: list[Any] | None = None
) -> tuple[FinetuneResult, DatasetBundle]:
    config, _ = parse_run_config(raw, source="test")
    bundle = load_bundle(config.dataset)
    result = run_finetune(
        config,
        bundle,
        cache_root=cache,
        retrain=retrain,
        threads=1,
        device="cpu",
        logger=LOG,
        progress=False,
        callbacks=callbacks or [],
    )
    return result, bundle


def callback(**handlers: Any) -> Any:
    """A TrainerCallback whose hooks are the given functions (step counting, interrupts)."""
    from transformers import TrainerCallback

    return type("TestHook", (TrainerCallback,), handlers)()


class StepCounter:
    def __init__(self) -> None:
        self.steps = 0
        self.first_step: int | None = None

    def hook(self) -> Any:
        def on_step_end(_: Any, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.steps += 1
            self.first_step = state.global_step if self.first_step is None else self.first_step

        return callback(on_step_end=on_step_end)


def predictions_in_memory() -> tuple[dict[str, Any], Any]:
    """A callback capturing the trained model's probabilities at the end of training."""
    store: dict[str, Any] = {}

    def on_train_end(
        _: Any,
        args: Any,
        state: Any,
        control: Any,
        model: Any = None,
        processing_class: Any = None,
        **kw: Any,
    ) -> None:
        import torch

        model.eval()
        probs = []
        with torch.no_grad():
            for text in store["texts"]:
                enc = processing_class(text, truncation=True, max_length=32, return_tensors="pt")
                probs.append(torch.softmax(model(**enc).logits, -1)[0].double().numpy())
        store["probs"] = np.stack(probs)

    return store, callback(on_train_end=on_train_end)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ft-cache")


@pytest.fixture(scope="module")
def trained(tiny_model_dir: Path, tiny_csv: Path, cache: Path) -> FinetuneResult:
    """One full fine-tune shared by the tests that only read its output."""
    return finetune(make_raw(tiny_model_dir, tiny_csv), cache)[0]


# ------------------------------------------------------------------ learning and output


def test_loss_goes_down_and_card_is_complete(trained: FinetuneResult) -> None:
    log = read_log(trained.checkpoint / TRAIN_LOG)
    losses = [r["loss"] for r in log if "loss" in r]
    assert len(losses) >= 10
    assert np.mean(losses[-4:]) < np.mean(losses[:4]) - 0.1
    curve = trained.model_card["dev_curve"]
    assert curve[-1]["loss"] < curve[0]["loss"]
    card = trained.model_card
    assert card["method"] == "full" and card["lora_saved_as"] is None
    assert card["base_model"]["digest"] and card["data"]["train"]["digest"]
    assert card["data"]["train"]["n"] + card["data"]["dev"]["n"] < 120
    assert card["hyperparameters"]["learning_rate"] == 1e-2 and card["hyperparameters"]["seed"] == 0
    assert card["final_dev"]["accuracy"] == max(p["accuracy"] for p in curve)
    assert card["training"]["wall_time_s"] > 0 and card["training"]["examples_per_s"] > 0
    assert card["hardware"]["device"] == "cpu" and card["hardware"]["torch_threads"] == 1
    assert {"harness", "torch", "transformers"} <= set(card["versions"])
    assert card["checkpoint_digest"] == trained.digest == checkpoint_digest(trained.checkpoint)
    on_disk = json.loads((trained.checkpoint / CARD).read_text())
    assert on_disk == card


def test_checkpoint_has_no_pickles_or_training_leftovers(trained: FinetuneResult) -> None:
    names = {p.relative_to(trained.checkpoint).as_posix() for p in trained.checkpoint.rglob("*")}
    assert {
        "model.safetensors",
        "config.json",
        "labels.json",
        CARD,
        TRAIN_LOG,
        "tokenizer.json",
    } <= names
    assert not [
        n
        for n in names
        if n.startswith(("checkpoint-", "best")) or Path(n).suffix in PICKLE_SUFFIXES
    ]
    assert json.loads((trained.checkpoint / "labels.json").read_text()) == ["neg", "pos"]


@pytest.mark.parametrize(
    ("method", "extra"),
    [
        ("full", {}),
        ("lora", {"lora": {"r": 4, "alpha": 8, "merge": True}}),
        ("lora", {"lora": {"r": 4, "alpha": 8, "merge": False}}),
        ("head", {"learning_rate": 5e-2}),
    ],
    ids=["full", "lora-merged", "lora-adapter", "head"],
)
def test_checkpoint_reloads_to_the_same_predictions(
    tiny_model_dir: Path, tiny_csv: Path, tmp_path: Path, method: str, extra: dict[str, Any]
) -> None:
    # No dev split: the model at the end of training is the one saved (no best-step restore).
    store, hook = predictions_in_memory()
    raw = make_raw(tiny_model_dir, tiny_csv, method=method, dev_split=None, **extra)
    config, _ = parse_run_config(raw, source="test")
    store["texts"] = list(load_bundle(config.dataset).splits["test"].texts)
    result, _ = finetune(raw, tmp_path, callbacks=[hook])
    loaded = HFClassifier.load(result.checkpoint, name="ft", source="finetune", max_length=32)
    if extra.get("lora", {}).get("merge") is False:
        assert result.model_card["lora_saved_as"] == "adapter"
        assert (result.checkpoint / "adapter" / "adapter_model.safetensors").is_file()
        # HFClassifier.load applied the unmerged adapter itself.
    probs = loaded.predict_proba(store["texts"])
    np.testing.assert_allclose(probs, store["probs"], atol=1e-5)
    hp = result.model_card["hyperparameters"]
    if method == "full":
        assert hp["trainable_parameters"] == hp["total_parameters"]
    else:  # LoRA and head-only train a small part of the model
        assert 0 < hp["trainable_parameters"] < hp["total_parameters"] / 2
    if method == "lora" and extra["lora"]["merge"]:
        assert result.model_card["lora_saved_as"] == "merged"


# ------------------------------------------------------------------ cache and determinism


def test_cache_hit_then_retrain_is_bitwise_identical(
    trained: FinetuneResult, tiny_model_dir: Path, tiny_csv: Path, cache: Path
) -> None:
    counter = StepCounter()
    again, _ = finetune(make_raw(tiny_model_dir, tiny_csv), cache, callbacks=[counter.hook()])
    assert again.cache_hit and counter.steps == 0
    assert again.digest == trained.digest and again.checkpoint == trained.checkpoint
    counter = StepCounter()
    retrained, _ = finetune(
        make_raw(tiny_model_dir, tiny_csv), cache, retrain=True, callbacks=[counter.hook()]
    )
    assert not retrained.cache_hit and counter.steps == FAST["max_steps"]
    # Determinism on CPU: same seed and thread count -> the same bytes.
    assert retrained.digest == trained.digest


def test_other_seed_or_recipe_is_another_cache_entry(
    trained: FinetuneResult, tiny_model_dir: Path, tiny_csv: Path, cache: Path
) -> None:
    other, _ = finetune(make_raw(tiny_model_dir, tiny_csv, seed=1), cache)
    assert not other.cache_hit and other.checkpoint != trained.checkpoint
    assert other.digest != trained.digest


def test_tampered_cache_entry_is_refused(
    tiny_model_dir: Path, tiny_csv: Path, tmp_path: Path
) -> None:
    result, _ = finetune(make_raw(tiny_model_dir, tiny_csv, max_steps=2), tmp_path)
    (result.checkpoint / "labels.json").write_text('["pos", "neg"]')
    with pytest.raises(ModelError, match="does not match the digest"):
        finetune(make_raw(tiny_model_dir, tiny_csv, max_steps=2), tmp_path)


# ------------------------------------------------------------------ interruption and resume


def _sigint_at(step: int) -> Any:
    def on_step_end(_: Any, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if state.global_step == step:
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does

    return callback(on_step_end=on_step_end)


def _raise_at(step: int) -> Any:
    def on_step_end(_: Any, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if state.global_step == step:
            raise KeyboardInterrupt  # a second Ctrl-C, or a kill mid-step

    return callback(on_step_end=on_step_end)


@pytest.mark.parametrize(
    ("how", "save_steps", "expected_checkpoint"),
    # Ctrl-C at step 9: the step in progress (10) finishes and is saved.
    # A hard interrupt at step 11: the last periodic checkpoint (8) is what is left.
    [("sigint", 1000, 10), ("raise", 4, 8)],
    ids=["ctrl-c-graceful", "hard-interrupt"],
)
def test_interrupted_run_resumes_from_its_checkpoint(
    trained: FinetuneResult,
    tiny_model_dir: Path,
    tiny_csv: Path,
    tmp_path: Path,
    how: str,
    save_steps: int,
    expected_checkpoint: int,
) -> None:
    raw = make_raw(tiny_model_dir, tiny_csv, save_steps=save_steps)
    hook = _sigint_at(9) if how == "sigint" else _raise_at(11)
    with pytest.raises(FinetuneInterrupted) as caught:
        finetune(raw, tmp_path, callbacks=[hook])
    assert caught.value.exit_code == ExitCode.INTERRUPTED
    assert f"checkpoint-{expected_checkpoint}" in caught.value.message
    assert "run the same command again to resume" in caught.value.message.lower()
    (folder,) = (tmp_path / "finetune").glob("[0-9a-f]*")
    assert (folder / f"checkpoint-{expected_checkpoint}").is_dir() and not (folder / CARD).exists()

    counter = StepCounter()
    resumed, _ = finetune(raw, tmp_path, callbacks=[counter.hook()])
    assert resumed.model_card["training"]["resumed_from_step"] == expected_checkpoint
    assert counter.first_step == expected_checkpoint + 1
    assert counter.steps == FAST["max_steps"] - expected_checkpoint
    steps_logged = [r["step"] for r in read_log(resumed.checkpoint / TRAIN_LOG) if "loss" in r]
    assert steps_logged == sorted(set(steps_logged))  # no duplicated entries after resume
    # No dev evaluation is lost or repeated across the interruption.
    curve = resumed.model_card["dev_curve"]
    assert [p["step"] for p in curve] == [p["step"] for p in trained.model_card["dev_curve"]]
    # Trainer restores optimizer, scheduler, RNG and data order: the same weights as a run
    # that was never interrupted (save_steps is not part of the weights, but of the key).
    if save_steps == FAST["save_steps"]:
        assert resumed.digest == trained.digest


# ------------------------------------------------------------------ bad input, before training


def _no_training(cache: Path) -> bool:
    root = cache / "finetune"
    return not root.exists() or not [p for p in root.rglob("*") if p.suffix == ".safetensors"]


def test_unknown_base_artifact_suggests_the_right_name(tiny_csv: Path, tmp_path: Path) -> None:
    raw = make_raw(tmp_path, tiny_csv)
    raw["finetune"]["base"] = {"artifact": "minilm-l7"}
    with pytest.raises(
        ConfigError,
        match=r"finetune\.base\.artifact: unknown artifact 'minilm-l7' \(did you mean 'minilm-l6'",
    ):
        finetune(raw, tmp_path)
    raw["finetune"]["base"] = {"artifact": "rotten-tomatoes"}
    with pytest.raises(ConfigError, match="is a dataset artifact, not a model"):
        finetune(raw, tmp_path)


def test_hub_base_refused_offline(
    tiny_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    raw = make_raw(tmp_path, tiny_csv)
    raw["finetune"]["base"] = {"hub": "someone/some-model"}
    with pytest.raises(ModelError, match="HF_HUB_OFFLINE is set"):
        finetune(raw, tmp_path)


def test_pickle_base_refused(tiny_model_dir: Path, tiny_csv: Path, tmp_path: Path) -> None:
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(b"not really")
    with pytest.raises(ModelError, match="refusing pickle-based weights"):
        finetune(make_raw(folder, tiny_csv), tmp_path)


def test_dataset_without_train_split(tiny_model_dir: Path, tiny_csv: Path, tmp_path: Path) -> None:
    raw = make_raw(tiny_model_dir, tiny_csv)
    raw["dataset"]["split_fractions"] = {"dev": 0.5, "test": 0.5}
    with pytest.raises(
        DataError, match=r"finetune\.train_split: dataset 'reviews' has no split 'train'"
    ):
        finetune(raw, tmp_path)
    assert _no_training(tmp_path)


def test_label_sets_differing_between_splits(
    tiny_model_dir: Path, tiny_csv: Path, tmp_path: Path
) -> None:
    config, _ = parse_run_config(make_raw(tiny_model_dir, tiny_csv), source="test")
    bundle = load_bundle(config.dataset)
    dev = bundle.splits["dev"]
    relabelled = Dataset(
        name=dev.name,
        split="dev",
        ids=dev.ids,
        texts=dev.texts,
        labels=dev.labels,
        label_names=("negative", "positive"),
    )
    odd = DatasetBundle(
        name=bundle.name, source=bundle.source, splits={**bundle.splits, "dev": relabelled}
    )
    with pytest.raises(DataError, match="label set differs between split 'train'"):
        run_finetune(config, odd, cache_root=tmp_path, logger=LOG, progress=False)
    assert _no_training(tmp_path)


def test_learning_rate_must_be_positive(tiny_model_dir: Path, tiny_csv: Path) -> None:
    with pytest.raises(ConfigError, match=r"finetune: 'learning_rate' must be > 0 \(got 0.0\)"):
        parse_run_config(make_raw(tiny_model_dir, tiny_csv, learning_rate=0.0), source="test")


def test_batch_larger_than_train_data(tiny_model_dir: Path, tiny_csv: Path, tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"finetune.batch_size: 500 is larger than the train split \(\d+ examples\)",
    ):
        finetune(make_raw(tiny_model_dir, tiny_csv, batch_size=500), tmp_path)
    with pytest.raises(
        ConfigError, match=r"finetune\.gradient_accumulation: one optimizer step would need"
    ):
        finetune(
            make_raw(tiny_model_dir, tiny_csv, batch_size=40, gradient_accumulation=4), tmp_path
        )
    assert _no_training(tmp_path)


def test_missing_lora_target_lists_available_modules(
    tiny_model_dir: Path, tiny_csv: Path, tmp_path: Path
) -> None:
    raw = make_raw(
        tiny_model_dir, tiny_csv, method="lora", lora={"target_modules": ["query", "qkv_proj"]}
    )
    with pytest.raises(ConfigError) as caught:
        finetune(raw, tmp_path)
    assert caught.value.message.startswith(
        "finetune.lora.target_modules: 'qkv_proj' not found in base model"
    )
    assert "Linear modules available: classifier, dense, key, query, value" in caught.value.message
    assert _no_training(tmp_path)


def test_early_stopping_needs_dev(tiny_model_dir: Path, tiny_csv: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="early stopping needs a dev split"):
        finetune(
            make_raw(tiny_model_dir, tiny_csv, dev_split=None, early_stopping_patience=1), tmp_path
        )


def test_out_of_memory_message_suggests_the_fix() -> None:
    # A CUDA OOM cannot happen on the CPU test machines; the GPU check exercises the probe.
    message = prep.oom_error(32).message
    assert (
        "lower finetune.batch_size (e.g. 16)" in message
        and "finetune.gradient_accumulation" in message
    )


# ------------------------------------------------------------------ early stopping and CLI


def test_early_stopping_stops_and_keeps_the_best(
    tiny_model_dir: Path, tiny_csv: Path, tmp_path: Path
) -> None:
    # A learning rate this small leaves dev accuracy unchanged, so it never improves after the
    # first evaluation (step 3): patience 2 stops training at the evaluation of step 9.
    raw = make_raw(
        tiny_model_dir,
        tiny_csv,
        learning_rate=1e-9,
        eval_steps=3,
        max_steps=30,
        early_stopping_patience=2,
        metric_for_best="accuracy",
    )
    result, _ = finetune(raw, tmp_path)
    assert [p["step"] for p in result.model_card["dev_curve"]] == [3, 6, 9]
    assert result.model_card["training"]["steps"] == 9
    assert result.model_card["training"]["selected_step"] == 3
    assert result.model_card["final_dev"]["step"] == 3


def test_cli_finetune(
    tiny_model_dir: Path, tiny_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml
    from typer.testing import CliRunner

    from harness.cli.app import app

    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    run_file = tmp_path / "run.yaml"
    run_file.write_text(yaml.safe_dump(make_raw(tiny_model_dir, tiny_csv, max_steps=4)))
    result = CliRunner().invoke(app, ["finetune", str(run_file), "--set", "finetune.max_steps=3"])
    assert result.exit_code == 0, result.output
    assert "checkpoint: " in result.output and "dev (dev, n=" in result.output
    card = json.loads(next((tmp_path / "cache" / "finetune").glob("*/model_card.json")).read_text())
    assert card["training"]["steps"] == 3
    bad = CliRunner().invoke(app, ["finetune", str(run_file), "--set", "finetune.batch_size=999"])
    assert bad.exit_code == ExitCode.USAGE and "finetune.batch_size: 999 is larger" in bad.output
