"""The fine-tuning stage: base model + train/dev splits + recipe -> a cached checkpoint.

``run_finetune`` checks everything that can fail first (``prep``), then trains with
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

Several processes (``torchrun`` / ``accelerate launch``): the Trainer trains data-parallel.
Only rank 0 takes the cache lock, checks the cache and writes files (checkpoint, log, card,
best-on-dev weights); the other ranks get its decision and its result through the process
group, so every rank returns the same ``FinetuneResult``. The number of processes is part of
the cache key: it changes the effective batch, hence the result.
"""

from __future__ import annotations

import contextlib
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
from harness.models.finetune.card import (
    TRAIN_LOG,
    build_card,
    data_card,
    eval_metrics,
    find_callback,
    hardware,
    make_callbacks,
    read_log,
)
from harness.models.finetune.prep import (
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
from harness.models.finetune.trainer import (
    World,
    current_world,
    folder_lock,
    graceful_sigint,
    last_checkpoint,
    process_group,
    rank_logger,
    save_checkpoint,
    seeded_trainer_class,
    share_from_main,
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
    base: BaseModel,
    train: Dataset,
    dev: Dataset | None,
    ft: FinetuneConfig,
    seed: int,
    world_size: int = 1,
) -> str:
    """What makes two fine-tunes the same. The base model is identified by its digest, not by
    where it lives, so moving a folder does not retrain. The number of processes multiplies
    the effective batch (and divides the steps per epoch), so it is part of the key; it is
    added only when > 1, which keeps the keys of single-process fine-tunes as they were."""
    from harness import __version__

    identity: dict[str, Any] = {
        "cache_version": CACHE_VERSION,
        "harness": __version__,
        "base_digest": base.digest,
        "train": train.digest(),
        "dev": dev.digest() if dev is not None else None,
        "finetune": ft.model_dump(mode="json", exclude={"base"}),
        "seed": seed,
    }
    if world_size != 1:
        identity["world_size"] = world_size
    return sha256_json(identity)


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
    ``callbacks`` are extra ``TrainerCallback`` objects (integrations, tests). Under
    ``torchrun`` / ``accelerate launch`` every rank calls this and gets the same result.
    """
    ft = config.finetune
    if ft is None:
        raise ConfigError("finetune: the run file has no 'finetune' stage")
    world = current_world()
    seed = effective_seed(config)
    base = resolve_base(ft.base, base_dir=base_dir or Path.cwd())
    train, dev = select_splits(bundle, ft, seed)
    key = cache_key(base, train, dev, ft, seed, world.size)
    folder = cache_root / "finetune" / key
    job = _Job(
        ft=ft,
        seed=seed,
        base=base,
        bundle=bundle,
        train=train,
        dev=dev,
        folder=folder,
        key=key,
        world=world,
    )
    group: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
    if world.distributed:
        from harness.models.hf import resolve_device

        device = resolve_device(device)
        # Before the lock: rank 0 may wait for it while the others wait for rank 0.
        group = process_group(world, device)
        logger = rank_logger(logger, world)
    with group:
        # One fine-tune per key at a time. Only rank 0 takes the lock: the ranks of one launch
        # are one fine-tune (if every rank took it, rank 0 would hold it and wait in the
        # process group for ranks that wait for the lock).
        lock = (
            folder_lock(folder.parent / f".{key}.lock")
            if world.is_main
            else contextlib.nullcontext()
        )
        with lock:

            def check_cache() -> tuple[dict[str, Any], str] | None:
                hit = _cached(folder, retrain, logger)
                if hit is None:
                    folder.mkdir(parents=True, exist_ok=True)
                return hit

            hit = share_from_main(world, check_cache)
            if hit is not None:
                card, digest = hit
                return FinetuneResult(
                    checkpoint=folder, model_card=card, cache_hit=True, digest=digest
                )
            return job.run(
                threads=threads, device=device, logger=logger, progress=progress, extra=callbacks
            )


def _cached(
    folder: Path, retrain: bool, logger: logging.Logger
) -> tuple[dict[str, Any], str] | None:
    """(model card, digest) of a complete cached fine-tune, or None (after --retrain: None)."""
    if retrain and folder.exists():
        logger.info("--retrain: discarding %s", folder)
        shutil.rmtree(folder)
    if not (folder / CARD).is_file():
        return None
    card = json.loads((folder / CARD).read_text(encoding="utf-8"))
    digest = checkpoint_digest(folder)
    if digest != card.get("checkpoint_digest"):
        raise ModelError(
            MSG_TAMPERED.format(
                folder=folder, expected=card.get("checkpoint_digest"), actual=digest
            )
        )
    logger.info("fine-tune cache hit: %s", folder)
    return card, digest


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
    world: World

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
        probe_memory(model, train_rows, collator, ft.batch_size, device, self.world.local_rank)
        bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
        global_batch = ft.batch_size * ft.gradient_accumulation * self.world.size
        per_epoch = math.ceil(len(train_rows) / global_batch)
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
                world=self.world,
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
            "fine-tuning %s (%s, %d/%d parameters trainable) on %d examples, %d steps, "
            "device %s, %d process(es)",
            self.base.name,
            ft.method,
            trainable,
            total,
            len(train_rows),
            total_steps,
            device,
            self.world.size,
        )
        # A graceful stop must happen at the same step on every rank, and a Ctrl-C does not
        # reach them all at the same step: with several processes Ctrl-C stops at once, and
        # a rerun resumes from the last periodic checkpoint (save_steps).
        sigint = (
            contextlib.nullcontext()
            if self.world.distributed
            else graceful_sigint(cbs["stop"], logger)
        )
        t0 = time.perf_counter()
        try:
            with sigint, warnings.catch_warnings():
                # The Trainer warns about mtime ordering of checkpoints on some filesystems; it
                # then orders them by step number, which is what we want anyway.
                warnings.filterwarnings("ignore", message="mtime may not be reliable")
                trainer.train(resume_from_checkpoint=str(resume) if resume is not None else None)
                train_seconds = time.perf_counter() - t0
                if cbs["stop"].requested:
                    raise KeyboardInterrupt
                self._evaluate_final_step(trainer)
        except KeyboardInterrupt:
            raise self._interrupted(trainer.state.global_step) from None
        except torch.OutOfMemoryError:
            raise oom_error(ft.batch_size) from None

        def write_checkpoint() -> tuple[dict[str, Any], str]:  # rank 0 only
            card = self._finish(
                trainer,
                tokenizer,
                parameters=(trainable, total),
                start_step=start_step,
                resume=resume,
                train_seconds=train_seconds,
                hardware_info=hardware(device, bf16),
            )
            return card, card["checkpoint_digest"]

        card, digest = share_from_main(self.world, write_checkpoint)
        logger.info("fine-tuned checkpoint written to %s", self.folder)
        return FinetuneResult(
            checkpoint=self.folder, model_card=card, cache_hit=False, digest=digest
        )

    def _finish(
        self,
        trainer: Any,
        tokenizer: Any,
        *,
        parameters: tuple[int, int],
        start_step: int,
        resume: Path | None,
        train_seconds: float,
        hardware_info: dict[str, Any],
    ) -> dict[str, Any]:
        """Select on dev, write the final checkpoint and its model card (on rank 0 only)."""
        ft, label_names = self.ft, self.train.label_names
        trainable, total = parameters
        final_dev, selected = self._select_on_dev(trainer)
        lora_saved_as = save_checkpoint(
            self.folder, trainer.model, tokenizer, label_names, ft, self.base.name
        )
        digest = checkpoint_digest(self.folder)
        steps_run = trainer.state.global_step - start_step
        global_batch = ft.batch_size * ft.gradient_accumulation * self.world.size
        card = build_card(
            base={"name": self.base.name, "source": self.base.source, "digest": self.base.digest},
            data=data_card(self.bundle, self.train, self.dev, ft),
            method=ft.method,
            hyperparameters={
                **ft.model_dump(mode="json", exclude={"base"}),
                "seed": self.seed,
                "total_steps": trainer.state.max_steps,
                "world_size": self.world.size,
                "effective_batch_size": global_batch,
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
                "examples_per_s": round(steps_run * global_batch / max(train_seconds, 1e-9), 2),
            },
            hardware_info=hardware_info,
            lora_saved_as=lora_saved_as,
            checkpoint_digest=digest,
            cache_key=self.key,
        )
        atomic_write_json(self.folder / CARD, card)  # last: marks the checkpoint complete
        return card

    def _evaluate_final_step(self, trainer: Any) -> None:
        """Make sure the final model was evaluated on dev. Every rank runs this: evaluation is
        a collective step under DDP. The Trainer's log history (restored on resume) is the
        same on every rank; the JSONL log exists on rank 0 only."""
        if self.dev is None:
            return
        done = {r.get("step") for r in trainer.state.log_history if "eval_loss" in r}
        if trainer.state.global_step not in done:
            trainer.evaluate()

    def _select_on_dev(self, trainer: Any) -> tuple[dict[str, Any] | None, int]:
        """Restore the best dev weights; the dev figures of the selected step."""
        step = trainer.state.global_step
        if self.dev is None:
            return None, step
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

    def _interrupted(self, step: int) -> FinetuneInterrupted:
        ckpt = last_checkpoint(self.folder)
        kept = (
            f"checkpoint kept in {ckpt}"
            if ckpt is not None
            else f"no checkpoint saved yet (one is written every {self.ft.save_steps} steps)"
        )
        return FinetuneInterrupted(MSG_INTERRUPTED.format(step=step, kept=kept))
