"""Trainer plumbing for the fine-tuning stage: training arguments, an epoch-seeded sampler
(resume-exact data order), checkpoint discovery and writing, a per-key lock, graceful Ctrl-C,
and the few collective steps a multi-process (torchrun / accelerate launch) fine-tune needs."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import signal
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from harness.config import FinetuneConfig
from harness.errors import ConfigError, ExitCode, HarnessError
from harness.models.finetune.card import BEST_DIR
from harness.store import atomic_write_json

T = TypeVar("T")

# torch's fused AdamW: one kernel over all parameters instead of a Python loop per tensor. On
# this 2-core CPU the loop cost 45-63 ms of a 185-275 ms MiniLM step (a quarter of a bf16 step);
# fused, 11 ms (/tmp/17b/micro.py). Same update rule; transformers' own default since torch 2.8.
FUSED_OPTIMIZER_DEVICES = ("cpu", "cuda")


def optimizer_name(device: str) -> str:
    """The Trainer's ``optim`` for a device (fused where torch has the fused kernel)."""
    return "adamw_torch_fused" if device in FUSED_OPTIMIZER_DEVICES else "adamw_torch"


MSG_BAD_LAUNCH_ENV = (
    "{name}={value!r} in the environment is not a valid process count/rank; it is set by "
    "torchrun or accelerate launch. Unset it to fine-tune on one process"
)
MSG_DISTRIBUTED_DEVICE = (
    "device: multi-process fine-tuning (WORLD_SIZE={size}) runs on 'cuda' (one GPU per process) "
    "or 'cpu', not {device!r}"
)
MSG_MAIN_FAILED = "fine-tuning failed on rank 0 (see its output): {message}"


@dataclass(frozen=True)
class World:
    """This process's place among the processes of a launch (1 process unless launched by
    torchrun / accelerate launch, which set WORLD_SIZE, RANK and LOCAL_RANK)."""

    size: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def current_world() -> World:
    values = {}
    for name, default in (("WORLD_SIZE", 1), ("RANK", 0), ("LOCAL_RANK", 0)):
        raw = os.environ.get(name, "").strip()
        try:
            values[name] = int(raw) if raw else default
        except ValueError:
            raise ConfigError(MSG_BAD_LAUNCH_ENV.format(name=name, value=raw)) from None
    if values["WORLD_SIZE"] < 1 or not 0 <= values["RANK"] < values["WORLD_SIZE"]:
        name = "WORLD_SIZE" if values["WORLD_SIZE"] < 1 else "RANK"
        raise ConfigError(MSG_BAD_LAUNCH_ENV.format(name=name, value=str(values[name])))
    return World(size=values["WORLD_SIZE"], rank=values["RANK"], local_rank=values["LOCAL_RANK"])


@contextlib.contextmanager
def process_group(world: World, device: str) -> Iterator[None]:
    """Join the launch's process group before anything else needs it (the cache lock hand-off)
    and leave it when the fine-tune is over. The Trainer's accelerate state finds the group
    initialised and reuses it.

    Leaving matters: a gloo group still alive at interpreter exit can abort the process
    ("terminate called without an active exception") after all the work is done. A group that
    was already there when this began belongs to the caller and is left alone.
    """
    import torch
    import torch.distributed as dist

    if device not in ("cpu", "cuda"):
        raise ConfigError(MSG_DISTRIBUTED_DEVICE.format(size=world.size, device=device))
    if dist.is_initialized():
        yield
        return
    if device == "cuda":
        # One GPU per process, by local rank (what torchrun / accelerate expect).
        torch.cuda.set_device(world.local_rank)
        dist.init_process_group("nccl", device_id=torch.device("cuda", world.local_rank))
    else:
        dist.init_process_group("gloo")
    finished = False
    try:
        yield
        finished = True
    finally:
        if dist.is_initialized():
            if finished:
                dist.barrier()  # no rank tears down while another still talks to it
            dist.destroy_process_group()


def share_from_main(world: World, compute: Callable[[], T]) -> T:
    """Run ``compute`` on rank 0 only and hand its result (or its failure) to every rank.

    Used where only rank 0 may touch the cache folder (the cache check, writing the final
    checkpoint): the other ranks wait here, so they return only after rank 0 has finished, and
    a failure on rank 0 fails every rank with its message instead of leaving them waiting.
    """
    if not world.distributed:
        return compute()
    import torch.distributed as dist

    box: list[Any] = [None]
    if world.is_main:
        try:
            value = compute()
        except BaseException as exc:
            code = exc.exit_code if isinstance(exc, HarnessError) else ExitCode.MODEL
            message = (
                exc.message if isinstance(exc, HarnessError) else f"{type(exc).__name__}: {exc}"
            )
            box[0] = ("error", message, int(code))
            dist.broadcast_object_list(box, src=0)
            raise
        box[0] = ("ok", value)
        dist.broadcast_object_list(box, src=0)
        return value
    dist.broadcast_object_list(box, src=0)
    if box[0][0] == "error":
        _, message, code = box[0]
        raise HarnessError(MSG_MAIN_FAILED.format(message=message), exit_code=ExitCode(code))
    result: T = box[0][1]
    return result


def rank_logger(logger: logging.Logger, world: World) -> logging.Logger:
    """The main process logs as before; the others only log warnings (and say which rank)."""
    if world.is_main:
        return logger
    child = logger.getChild(f"rank{world.rank}")
    child.setLevel(logging.WARNING)
    return child


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


def save_checkpoint(
    folder: Path,
    model: Any,
    tokenizer: Any,
    label_names: tuple[str, ...],
    ft: FinetuneConfig,
    base_name: str,
) -> str | None:
    """Write the final checkpoint files (rank 0 only) and remove everything training left
    behind; returns how a peft adapter was saved ("merged" or "adapter"), else None."""
    from harness.models.finetune.methods import (
        is_prompt_learning,
        merges,
        method,
        unwrap_saved_modules,
    )
    from harness.models.hf import ADAPTER_DIR, PICKLE_SUFFIXES

    lora_saved_as = None
    if method(ft.method).peft:
        if merges(ft):
            model, lora_saved_as = model.merge_and_unload(), "merged"
        else:
            # The adapter's config would otherwise record this machine's cache path.
            model.peft_config["default"].base_model_name_or_path = base_name
            with warnings.catch_warnings():  # peft looks for the base's config by that name
                warnings.filterwarnings("ignore", message="Could not find a config file")
                model.save_pretrained(str(folder / ADAPTER_DIR), safe_serialization=True)
            model = unwrap_saved_modules(model) if is_prompt_learning(model) else model.unload()
            lora_saved_as = "adapter"
    model.save_pretrained(str(folder), safe_serialization=True)
    tokenizer.save_pretrained(str(folder))
    atomic_write_json(folder / "labels.json", list(label_names))
    # Only now drop the resume points: a crash before this line resumes from them.
    for leftover in [
        *folder.glob("checkpoint-*"),
        folder / BEST_DIR,
        folder / "runs",
    ]:
        if leftover.is_dir():
            shutil.rmtree(leftover)
    pickles = [p for p in folder.rglob("*") if p.suffix.lower() in PICKLE_SUFFIXES]
    for p in pickles:  # e.g. training_args.bin; never part of a final checkpoint
        p.unlink()
    return lora_saved_as


def seeded_trainer_class() -> Any:
    """A Trainer whose training order depends only on (data_seed, epoch): a run resumed
    mid-epoch is bitwise identical to an uninterrupted one (tested). It lives in ``seeded``,
    which imports torch and transformers, so it is imported only when a fine-tune starts."""
    from harness.models.finetune.seeded import SeededTrainer

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
    fp16: bool = False,
    world: World | None = None,
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
        optim=optimizer_name(device),
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
        # Several processes on CPU talk over gloo (accelerate would pick it too; say it).
        ddp_backend="gloo" if world is not None and world.distributed and device == "cpu" else None,
        bf16=bf16,
        fp16=fp16,  # CUDA only (resolve_train refuses it on CPU): the Trainer adds a GradScaler
        group_by_length=ft.group_by_length,
        dataloader_num_workers=0,
        restore_callback_states_from_checkpoint=True,
    )
