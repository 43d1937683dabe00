"""Trainer plumbing for the fine-tuning stage: training arguments, an epoch-seeded sampler
(resume-exact data order), checkpoint discovery, a per-key lock and graceful Ctrl-C."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.config import FinetuneConfig


def last_checkpoint(folder: Path) -> Path | None:
    """The latest complete ``checkpoint-N`` (the Trainer writes trainer_state.json last)."""
    done = [
        p
        for p in folder.glob("checkpoint-*")
        if p.name.split("-")[-1].isdigit() and (p / "trainer_state.json").is_file()
    ]
    return max(done, key=lambda p: int(p.name.split("-")[-1]), default=None)


@contextlib.contextmanager
def folder_lock(path: Path) -> Iterator[None]:
    """One fine-tune per cache key at a time (two runs of the same recipe would collide)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def graceful_sigint(stop: Any, logger: logging.Logger) -> Iterator[None]:
    """First Ctrl-C: finish the step, save a checkpoint, stop. Second Ctrl-C: stop at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        stop.requested = True
        logger.warning("Ctrl-C: saving a checkpoint after this step (Ctrl-C again to stop at once)")
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def seeded_trainer_class() -> Any:
    """A Trainer whose training order depends only on (data_seed, epoch).

    The stock length-grouped sampler draws its permutation from the global torch RNG when an
    epoch starts, so a run resumed mid-epoch sees a different order than the run it continues.
    This sampler takes a generator seeded per epoch (the Trainer calls ``set_epoch``), which
    makes a resumed run bitwise identical to an uninterrupted one (tested).
    """
    import torch
    from transformers import Trainer, trainer_pt_utils

    # Untyped in transformers; typed here through Any.
    grouped_indices: Any = trainer_pt_utils.get_length_grouped_indices

    class EpochSeededSampler(torch.utils.data.Sampler[int]):
        def __init__(self, lengths: list[int], group_size: int, seed: int, grouped: bool) -> None:
            self.lengths, self.group_size, self.seed, self.grouped = (
                lengths,
                group_size,
                seed,
                grouped,
            )
            self.epoch = 0

        def set_epoch(self, epoch: int) -> None:
            self.epoch = epoch

        def __len__(self) -> int:
            return len(self.lengths)

        def __iter__(self) -> Iterator[int]:
            gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            if self.grouped:
                return iter(grouped_indices(self.lengths, self.group_size, generator=gen))
            return iter(torch.randperm(len(self.lengths), generator=gen).tolist())

    class SeededTrainer(Trainer):
        def _get_train_sampler(self, train_dataset: Any = None) -> Any:
            data: Any = train_dataset if train_dataset is not None else self.train_dataset
            args = self.args
            return EpochSeededSampler(
                [len(row["input_ids"]) for row in data],
                args.train_batch_size * args.gradient_accumulation_steps,
                args.data_seed if args.data_seed is not None else args.seed,
                args.group_by_length,
            )

        def evaluate(self, *args: Any, **kwargs: Any) -> Any:
            # Evaluation draws from the global torch RNG (the dataloader's base seed). Undo
            # that, so dev evaluation never changes the training trajectory: a run resumed
            # from a checkpoint saved just before an evaluation continues exactly as the
            # uninterrupted run did (tested at an epoch boundary and mid-epoch).
            cpu_state = torch.random.get_rng_state()
            cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
            try:
                return super().evaluate(*args, **kwargs)
            finally:
                torch.random.set_rng_state(cpu_state)
                if cuda_states is not None:
                    torch.cuda.set_rng_state_all(cuda_states)

    return SeededTrainer


def training_args(
    ft: FinetuneConfig,
    *,
    folder: Path,
    has_dev: bool,
    seed: int,
    device: str,
    bf16: bool,
    total_steps: int,
) -> Any:
    """The Trainer's arguments for a recipe. Saving is by steps (for resume), evaluation by
    epoch or eval_steps; selecting the best dev step is done by BestOnDev, not the Trainer."""
    from transformers import TrainingArguments

    evaluate = "no" if not has_dev else ("steps" if ft.eval_steps else "epoch")
    return TrainingArguments(
        output_dir=str(folder),
        per_device_train_batch_size=ft.batch_size,
        per_device_eval_batch_size=min(128, ft.batch_size * 4),
        gradient_accumulation_steps=ft.gradient_accumulation,
        learning_rate=ft.learning_rate,
        weight_decay=ft.weight_decay,
        warmup_ratio=ft.warmup_ratio,
        num_train_epochs=ft.epochs,
        max_steps=ft.max_steps or -1,
        lr_scheduler_type="linear",
        optim="adamw_torch",
        eval_strategy=evaluate,
        eval_steps=ft.eval_steps,
        save_strategy="steps",
        save_steps=ft.save_steps,
        save_total_limit=2,
        save_safetensors=True,
        logging_strategy="steps",
        logging_steps=max(1, min(50, total_steps // 50)),
        logging_first_step=True,
        report_to=[],
        disable_tqdm=True,
        seed=seed,
        data_seed=seed,
        use_cpu=device == "cpu",
        bf16=bf16,
        group_by_length=ft.group_by_length,
        dataloader_num_workers=0,
        restore_callback_states_from_checkpoint=True,
    )
