"""The fine-tuning stage: base model + train/dev splits + recipe -> a cached checkpoint.

``run_finetune`` checks everything that can fail first (``prep``), looks in the cache
(``cache``), and otherwise trains (``training``) with the transformers ``Trainer`` (AdamW,
linear warmup/decay, length-grouped batches, dev evaluation, bf16 on CUDA) and writes a
checkpoint folder that ``HFClassifier.load`` reads:
safetensors weights, config, tokenizer, ``labels.json``, ``train_log.jsonl`` and
``model_card.json`` (written last, atomically: its presence marks a complete checkpoint).

Cache (``cache``): the folder is ``cache_root/finetune/<key>`` where key = sha256 of (base
digest, train and dev split digests, the fine-tune config, the effective seed, harness version),
so the same recipe never trains twice. While training, the Trainer writes ``checkpoint-N`` folders
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
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.config import RunConfig
from harness.data import DatasetBundle
from harness.errors import ConfigError
from harness.models.finetune import adversarial
from harness.models.finetune.cache import cache_key, cached_checkpoint
from harness.models.finetune.prep import resolve_base, select_splits
from harness.models.finetune.trainer import (
    current_world,
    folder_lock,
    process_group,
    rank_logger,
    share_from_main,
)
from harness.models.finetune.training import TrainingJob
from harness.models.precision import Resolved, resolve_train

# What callers of the fine-tuning stage import from here. FinetuneInterrupted (defined in
# ``training``) is what run_finetune raises on Ctrl-C; CARD and cache_key (defined in ``cache``)
# let benchmarks/default_model.py find a cached fine-tune without training.

@dataclass(frozen=True)
class FinetuneResult:
    checkpoint: Path  # folder loadable by HFClassifier.load
    model_card: dict[str, Any]
    cache_hit: bool
    digest: str  # sha256 over the checkpoint's files except model_card.json and train_log.jsonl


def effective_seed(config: RunConfig) -> int:
    assert config.finetune is not None
    return config.finetune.seed if config.finetune.seed is not None else config.seed


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
    job = _plan(config, bundle, cache_root=cache_root, base_dir=base_dir or Path.cwd(), device=device)
    group: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
    if job.world.distributed:
        from harness.models.hf import resolve_device

        device = resolve_device(device)
        # Before the lock: rank 0 may wait for it while the others wait for rank 0.
        group = process_group(job.world, device)
        logger = rank_logger(logger, job.world)
    with group, _key_lock(job):
        hit = share_from_main(job.world, lambda: _check_cache(job.folder, retrain, logger))
        if hit is not None:
            card, digest = hit
            return FinetuneResult(
                checkpoint=job.folder, model_card=card, cache_hit=True, digest=digest
            )
        card, digest = job.run(
            threads=threads, device=device, logger=logger, progress=progress, extra=callbacks
        )
        return FinetuneResult(
            checkpoint=job.folder, model_card=card, cache_hit=False, digest=digest
        )


def _plan(
    config: RunConfig, bundle: DatasetBundle, *, cache_root: Path, base_dir: Path, device: str = "auto"
) -> TrainingJob:
    """Resolve everything a fine-tune depends on (checks that can fail come first, before any
    process group or lock): base model, splits, seed, world, hence the cache key and folder."""
    ft = config.finetune
    if ft is None:
        raise ConfigError("finetune: the run file has no 'finetune' stage")
    world = current_world()
    seed = effective_seed(config)
    base = resolve_base(ft.base, base_dir=base_dir)
    train, dev = select_splits(bundle, ft, seed)
    adversarial.check(ft, world.size)
    precision = train_precision(ft.precision, device)  # auto: bf16 where bf16 is native
    key = cache_key(base, train, dev, ft, seed, world.size, precision.precision)
    return TrainingJob(
        ft=ft,
        seed=seed,
        base=base,
        bundle=bundle,
        train=train,
        dev=dev,
        folder=cache_root / "finetune" / key,
        key=key,
        world=world,
        precision=precision,
    )


def train_precision(requested: str, device: str) -> Resolved:
    """The fine-tune's precision on ``device`` ('auto' resolved as the Trainer will)."""
    from harness.models.hf import resolve_device

    return resolve_train(requested, resolve_device(device))


def _key_lock(job: TrainingJob) -> contextlib.AbstractContextManager[None]:
    """One fine-tune per key at a time. Only rank 0 takes the lock: the ranks of one launch are
    one fine-tune (if every rank took it, rank 0 would hold it and wait in the process group
    for ranks that wait for the lock)."""
    if not job.world.is_main:
        return contextlib.nullcontext()
    return folder_lock(job.folder.parent / f".{job.key}.lock")


def _check_cache(
    folder: Path, retrain: bool, logger: logging.Logger
) -> tuple[dict[str, Any], str] | None:
    """The cached (card, digest), or None after creating the folder to train into (rank 0)."""
    hit = cached_checkpoint(folder, retrain, logger)
    if hit is None:
        folder.mkdir(parents=True, exist_ok=True)
    return hit
