"""The fine-tuning stage: base model + train/dev splits + recipe -> a cached checkpoint.

``run_finetune`` checks everything that can fail first (``finetune_prep``), then trains with
the transformers ``Trainer`` (AdamW, linear warmup/decay, length-grouped batches, dev
evaluation, bf16 on CUDA) and writes a checkpoint folder that ``HFClassifier.load`` reads:
safetensors weights, config, tokenizer, ``labels.json``, ``train_log.jsonl`` and
``model_card.json`` (written last, atomically: its presence marks a complete checkpoint).

Cache: the folder is ``cache_root/finetune/<key>`` where key = sha256 of (base digest, train
and dev split digests, the fine-tune config, the effective seed, harness version), so the
same recipe never trains twice. While training, the Trainer writes ``checkpoint-N`` folders
there every ``save_steps``; an interrupted run resumes from the latest complete one. Those
folders hold the Trainer's optimizer / scheduler / RNG state as torch pickles (``*.pt``,
``*.pth``): transformers itself loads them on resume (``torch.load`` with
``weights_only=True`` for optimizer and scheduler; the RNG state needs numpy objects and is
loaded by transformers' own allow-listed path). They are our own files in our own cache, and
every ``checkpoint-N`` folder is deleted when training ends, so the final checkpoint never
holds a pickle.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.config import FinetuneConfig, RunConfig
from harness.data import Dataset, DatasetBundle
from harness.errors import ConfigError, ExitCode, HarnessError, ModelError
from harness.models.finetune_card import (
    BEST_DIR,
    TRAIN_LOG,
    build_card,
    eval_metrics,
    find_callback,
    hardware,
    make_callbacks,
    read_log,
)
from harness.models.finetune_prep import (
    BaseModel,
    apply_method,
    count_parameters,
    load_base,
    oom_error,
    probe_memory,
    resolve_base,
    select_splits,
    tokenize,
)
from harness.models.finetune_trainer import (
    folder_lock,
    graceful_sigint,
    last_checkpoint,
    seeded_trainer_class,
    training_args,
)
from harness.store import atomic_write_json, digest_tree, sha256_json

CARD = "model_card.json"
CACHE_VERSION = 1
MSG_INTERRUPTED = (
    "fine-tuning interrupted at step {step}; {kept}. Run the same command again to resume "
    "(or add --retrain to start over)"
)
MSG_TAMPERED = (
    "{folder}: the cached fine-tuned checkpoint does not match the digest in its model card "
    "(expected {expected}, got {actual}); rerun with --retrain"
)


class FinetuneInterrupted(HarnessError):
    """Ctrl-C during fine-tuning: the checkpoint is kept; exit code 130."""

    exit_code = ExitCode.INTERRUPTED


@dataclass(frozen=True)
class FinetuneResult:
    checkpoint: Path  # folder loadable by HFClassifier.load
    model_card: dict[str, Any]
    cache_hit: bool
    digest: str  # sha256 over the checkpoint's files except model_card.json and train_log.jsonl


def effective_seed(config: RunConfig) -> int:
    assert config.finetune is not None
    return config.finetune.seed if config.finetune.seed is not None else config.seed


def cache_key(
    base: BaseModel, train: Dataset, dev: Dataset | None, ft: FinetuneConfig, seed: int
) -> str:
    """What makes two fine-tunes the same. The base model is identified by its digest, not by
    where it lives, so moving a folder does not retrain."""
    from harness import __version__

    return sha256_json(
        {
            "cache_version": CACHE_VERSION,
            "harness": __version__,
            "base_digest": base.digest,
            "train": train.digest(),
            "dev": dev.digest() if dev is not None else None,
            "finetune": ft.model_dump(mode="json", exclude={"base"}),
            "seed": seed,
        }
    )


def checkpoint_digest(folder: Path) -> str:
    """sha256 over weights, config, tokenizer, labels and adapter files. The model card and the
    training log are left out: they hold wall times, so they differ between identical runs."""
    files = [
        p
        for p in folder.rglob("*")
        if p.is_file() and p.name not in (CARD, TRAIN_LOG) and not p.name.startswith(".")
    ]
    return digest_tree(folder, files)[0]


def run_finetune(
    config: RunConfig,
    bundle: DatasetBundle,
    *,
    cache_root: Path,
    retrain: bool = False,
    threads: int | None = None,
    device: str = "auto",
    logger: logging.Logger,
    progress: bool = True,
    base_dir: Path | None = None,
    callbacks: Sequence[Any] = (),
) -> FinetuneResult:
    """Fine-tune (or reuse the cached fine-tune of) ``config.finetune`` on ``bundle``.

    ``base_dir`` resolves a relative ``finetune.base.path`` (default: the working folder);
    ``callbacks`` are extra ``TrainerCallback`` objects (integrations, tests).
    """
    ft = config.finetune
    if ft is None:
        raise ConfigError("finetune: the run file has no 'finetune' stage")
    seed = effective_seed(config)
    base = resolve_base(ft.base, base_dir=base_dir or Path.cwd())
    train, dev = select_splits(bundle, ft, seed)
    key = cache_key(base, train, dev, ft, seed)
    folder = cache_root / "finetune" / key
    with folder_lock(cache_root / "finetune" / f".{key}.lock"):
        if retrain and folder.exists():
            logger.info("--retrain: discarding %s", folder)
            shutil.rmtree(folder)
        if (folder / CARD).is_file():
            card = json.loads((folder / CARD).read_text(encoding="utf-8"))
            digest = checkpoint_digest(folder)
            if digest != card.get("checkpoint_digest"):
                raise ModelError(
                    MSG_TAMPERED.format(
                        folder=folder, expected=card.get("checkpoint_digest"), actual=digest
                    )
                )
            logger.info("fine-tune cache hit: %s", folder)
            return FinetuneResult(checkpoint=folder, model_card=card, cache_hit=True, digest=digest)
        folder.mkdir(parents=True, exist_ok=True)
        job = _Job(
            ft=ft, seed=seed, base=base, bundle=bundle, train=train, dev=dev, folder=folder, key=key
        )
        return job.run(
            threads=threads, device=device, logger=logger, progress=progress, extra=callbacks
        )


@dataclass(frozen=True)
class _Job:
    ft: FinetuneConfig
    seed: int
    base: BaseModel
    bundle: DatasetBundle
    train: Dataset
    dev: Dataset | None
    folder: Path
    key: str

    def run(
        self,
        *,
        threads: int | None,
        device: str,
        logger: logging.Logger,
        progress: bool,
        extra: Sequence[Any],
    ) -> FinetuneResult:
        import torch

        from harness.models.hf import resolve_device

        resolved = resolve_device(device)
        previous_threads = torch.get_num_threads()
        if threads and resolved == "cpu":
            torch.set_num_threads(threads)
        try:
            return self._train(resolved, logger, progress, extra)
        finally:
            torch.set_num_threads(previous_threads)

    def _train(
        self, device: str, logger: logging.Logger, progress: bool, extra: Sequence[Any]
    ) -> FinetuneResult:
        import math

        import torch
        from transformers import DataCollatorWithPadding, PrinterCallback

        ft, label_names = self.ft, self.train.label_names
        model, tokenizer = load_base(self.base, label_names, self.seed)
        model = apply_method(model, ft, self.base.name)
        trainable, total = count_parameters(model)
        train_rows = tokenize(tokenizer, self.train, ft.max_length)
        dev_rows = (
            tokenize(tokenizer, self.dev, ft.max_length, sort=True)
            if self.dev is not None
            else None
        )
        collator = DataCollatorWithPadding(tokenizer)
        probe_memory(model, train_rows, collator, ft.batch_size, device)
        bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
        per_epoch = math.ceil(len(train_rows) / ft.batch_size / ft.gradient_accumulation)
        total_steps = ft.max_steps or math.ceil(per_epoch * ft.epochs)
        cbs = make_callbacks(
            folder=self.folder,
            metric=ft.metric_for_best,
            patience=ft.early_stopping_patience,
            logger=logger,
            progress=progress,
        )
        trainer = seeded_trainer_class()(
            model=model,
            args=training_args(
                ft,
                folder=self.folder,
                has_dev=self.dev is not None,
                seed=self.seed,
                device=device,
                bf16=bf16,
                total_steps=total_steps,
            ),
            train_dataset=train_rows,
            eval_dataset=dev_rows,
            data_collator=collator,
            processing_class=tokenizer,
            compute_metrics=lambda p: eval_metrics(p.predictions, p.label_ids),
            callbacks=[
                *(cbs[k] for k in ("log", "best", "stop", "epoch_eval", "progress")),
                *extra,
            ],
        )
        trainer.remove_callback(PrinterCallback)  # our JSONL log and progress bar replace it
        resume = last_checkpoint(self.folder)
        start_step = int(resume.name.split("-")[-1]) if resume is not None else 0
        if resume is not None:
            logger.info("resuming fine-tuning from %s", resume)
        logger.info(
            "fine-tuning %s (%s, %d/%d parameters trainable) on %d examples, %d steps, device %s",
            self.base.name,
            ft.method,
            trainable,
            total,
            len(train_rows),
            total_steps,
            device,
        )
        t0 = time.perf_counter()
        try:
            with graceful_sigint(cbs["stop"], logger), warnings.catch_warnings():
                # The Trainer warns about mtime ordering of checkpoints on some filesystems; it
                # then orders them by step number, which is what we want anyway.
                warnings.filterwarnings("ignore", message="mtime may not be reliable")
                trainer.train(resume_from_checkpoint=str(resume) if resume is not None else None)
                train_seconds = time.perf_counter() - t0
                if cbs["stop"].requested:
                    raise KeyboardInterrupt
                final_dev, selected = self._select_on_dev(trainer)
        except KeyboardInterrupt:
            raise self._interrupted(trainer.state.global_step) from None
        except torch.OutOfMemoryError:
            raise oom_error(ft.batch_size) from None
        lora_saved_as = self._save(trainer.model, tokenizer, label_names)
        digest = checkpoint_digest(self.folder)
        steps_run = trainer.state.global_step - start_step
        card = build_card(
            base={"name": self.base.name, "source": self.base.source, "digest": self.base.digest},
            data=self._data_card(),
            method=ft.method,
            hyperparameters={
                **ft.model_dump(mode="json", exclude={"base"}),
                "seed": self.seed,
                "total_steps": trainer.state.max_steps,
                "effective_batch_size": ft.batch_size * ft.gradient_accumulation,
                "optimizer": "adamw_torch",
                "scheduler": "linear",
                "trainable_parameters": trainable,
                "total_parameters": total,
            },
            log=read_log(self.folder / TRAIN_LOG),
            final_dev=final_dev,
            training={
                "steps": trainer.state.global_step,
                "epochs": trainer.state.epoch,
                "selected_step": selected,
                "resumed_from_step": start_step if resume is not None else None,
                "wall_time_s": round(train_seconds, 3),
                # approximate: the last batch of an epoch may be smaller than the batch size
                "examples_per_s": round(
                    steps_run * ft.batch_size * ft.gradient_accumulation / max(train_seconds, 1e-9),
                    2,
                ),
            },
            hardware_info=hardware(device, bf16),
            lora_saved_as=lora_saved_as,
            checkpoint_digest=digest,
            cache_key=self.key,
        )
        atomic_write_json(self.folder / CARD, card)  # last: marks the checkpoint complete
        logger.info("fine-tuned checkpoint written to %s", self.folder)
        return FinetuneResult(
            checkpoint=self.folder, model_card=card, cache_hit=False, digest=digest
        )

    def _select_on_dev(self, trainer: Any) -> tuple[dict[str, Any] | None, int]:
        """Make sure the final model was evaluated on dev, then restore the best dev weights."""
        step = trainer.state.global_step
        if self.dev is None:
            return None, step
        evals = {r["step"]: r for r in read_log(self.folder / TRAIN_LOG) if "eval_loss" in r}
        if step not in evals:
            trainer.evaluate()
            evals = {r["step"]: r for r in read_log(self.folder / TRAIN_LOG) if "eval_loss" in r}
        best = find_callback(trainer, "BestOnDev")
        selected = best.best_step if best.best_step is not None else step
        if selected != step:
            best.restore(trainer.model)
        row = evals[selected]
        final = {
            k.removeprefix("eval_"): row[k] for k in ("eval_loss", "eval_accuracy", "eval_f1_macro")
        }
        return {"step": selected, "split": self.ft.dev_split, "n": len(self.dev), **final}, selected

    def _save(self, model: Any, tokenizer: Any, label_names: tuple[str, ...]) -> str | None:
        """Write the final checkpoint files and remove everything training left behind."""
        from harness.models.hf import ADAPTER_DIR, PICKLE_SUFFIXES

        lora_saved_as = None
        if self.ft.method == "lora":
            if self.ft.lora.merge:
                model, lora_saved_as = model.merge_and_unload(), "merged"
            else:
                # The adapter's config would otherwise record this machine's cache path.
                model.peft_config["default"].base_model_name_or_path = self.base.name
                with warnings.catch_warnings():  # peft looks for the base's config by that name
                    warnings.filterwarnings("ignore", message="Could not find a config file")
                    model.save_pretrained(str(self.folder / ADAPTER_DIR), safe_serialization=True)
                model, lora_saved_as = model.unload(), "adapter"
        model.save_pretrained(str(self.folder), safe_serialization=True)
        tokenizer.save_pretrained(str(self.folder))
        atomic_write_json(self.folder / "labels.json", list(label_names))
        # Only now drop the resume points: a crash before this line resumes from them.
        for leftover in [
            *self.folder.glob("checkpoint-*"),
            self.folder / BEST_DIR,
            self.folder / "runs",
        ]:
            if leftover.is_dir():
                shutil.rmtree(leftover)
        pickles = [p for p in self.folder.rglob("*") if p.suffix.lower() in PICKLE_SUFFIXES]
        for p in pickles:  # e.g. training_args.bin; never part of a final checkpoint
            p.unlink()
        return lora_saved_as

    def _data_card(self) -> dict[str, Any]:
        def split(ds: Dataset | None, name: str | None) -> dict[str, Any] | None:
            return None if ds is None else {"split": name, "n": len(ds), "digest": ds.digest()}

        return {
            "name": self.bundle.name,
            "source": self.bundle.source,
            "label_names": list(self.train.label_names),
            "train": split(self.train, self.ft.train_split),
            "dev": split(self.dev, self.ft.dev_split),
            "max_train_examples": self.ft.max_train_examples,
        }

    def _interrupted(self, step: int) -> FinetuneInterrupted:
        ckpt = last_checkpoint(self.folder)
        kept = (
            f"checkpoint kept in {ckpt}"
            if ckpt is not None
            else f"no checkpoint saved yet (one is written every {self.ft.save_steps} steps)"
        )
        return FinetuneInterrupted(MSG_INTERRUPTED.format(step=step, kept=kept))
