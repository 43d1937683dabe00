"""A Trainer whose training order depends only on (data_seed, epoch).

The stock length-grouped sampler draws its permutation from the global torch RNG when an
epoch starts, so a run resumed mid-epoch sees a different order than the run it continues.
``EpochSeededSampler`` takes a generator seeded per epoch (the Trainer calls ``set_epoch``),
which makes a resumed run bitwise identical to an uninterrupted one (tested).

Importing this module imports torch and transformers; ``trainer.seeded_trainer_class`` imports
it when a fine-tune starts.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import torch
from transformers import Trainer, trainer_pt_utils

# Untyped in transformers; typed here through Any.
grouped_indices: Any = trainer_pt_utils.get_length_grouped_indices


class EpochSeededSampler(torch.utils.data.Sampler[int]):
    """Length-grouped (or plain random) order drawn from a generator seeded by (seed, epoch)."""

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
    """The Trainer with ``EpochSeededSampler``, a CPU-safe optimizer reload and an RNG-neutral
    evaluation (each departure from the stock Trainer says why below)."""

    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        data: Any = train_dataset if train_dataset is not None else self.train_dataset
        args = self.args
        return EpochSeededSampler(
            [len(row["input_ids"]) for row in data],
            args.train_batch_size * args.gradient_accumulation_steps,
            args.data_seed if args.data_seed is not None else args.seed,
            args.group_by_length,
        )

    def _load_optimizer_and_scheduler(self, checkpoint: str | None) -> None:
        # Several processes on CPU: transformers maps the saved optimizer state to
        # args.device, which accelerate sets to torch.device("cpu", 0) there, and
        # torch.load cannot restore to "cpu:0" (a RuntimeError on resume). Load the state
        # on plain "cpu" instead; every other case is the Trainer's own code.
        args, untyped = self.args, cast(Any, self)
        if checkpoint is None or args.world_size == 1 or args.device.type != "cpu":
            cast(Any, super())._load_optimizer_and_scheduler(checkpoint)
            return
        from transformers.trainer import OPTIMIZER_NAME, SCHEDULER_NAME

        optimizer = Path(checkpoint, OPTIMIZER_NAME)
        scheduler = Path(checkpoint, SCHEDULER_NAME)
        if optimizer.is_file() and scheduler.is_file():
            state = torch.load(optimizer, map_location="cpu", weights_only=True)
            untyped.optimizer.load_state_dict(state)
            untyped.lr_scheduler.load_state_dict(torch.load(scheduler, weights_only=True))

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
