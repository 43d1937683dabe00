"""The fine-tune cache: what makes two fine-tunes the same (``cache_key``), what identifies a
checkpoint's content (``checkpoint_digest``) and the check that a cached checkpoint is complete
and untouched (``cached_checkpoint``).

The folder of a fine-tune is ``cache_root/finetune/<key>``; ``model_card.json`` is written last
there, atomically, so its presence marks a complete checkpoint. Changing what goes into the key
or the digest invalidates every cached fine-tune (the default benchmark's take minutes each):
raise ``CACHE_VERSION`` when that is meant.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import ModelError
from harness.models.finetune.card import TRAIN_LOG
from harness.store import digest_tree, sha256_json

if TYPE_CHECKING:
    from harness.config import FinetuneConfig
    from harness.data import Dataset
    from harness.models.finetune.prep import BaseModel

CARD = "model_card.json"
CACHE_VERSION = 1
MSG_TAMPERED = (
    "{folder}: the cached fine-tuned checkpoint does not match the digest in its model card "
    "(expected {expected}, got {actual}); rerun with --retrain"
)


def cache_key(
    base: BaseModel,
    train: Dataset,
    dev: Dataset | None,
    ft: FinetuneConfig,
    seed: int,
    world_size: int = 1,
    precision: str = "fp32",
) -> str:
    """What makes two fine-tunes the same. The base model is identified by its digest, not by
    where it lives, so moving a folder does not retrain. The number of processes multiplies
    the effective batch (and divides the steps per epoch), so it is part of the key; it is
    added only when > 1, which keeps the keys of single-process fine-tunes as they were. So is
    the resolved precision (``finetune.precision``, ``harness.models.precision``), only when it
    is not fp32: a bf16 fine-tune is a different checkpoint, fp32 ones keep their keys."""
    from harness import __version__

    identity: dict[str, Any] = {
        "cache_version": CACHE_VERSION,
        "harness": __version__,
        "base_digest": base.digest,
        "train": train.digest(),
        "dev": dev.digest() if dev is not None else None,
        "finetune": ft.model_dump(mode="json", exclude={"base", "precision"}),
        "seed": seed,
    }
    if world_size != 1:
        identity["world_size"] = world_size
    if precision != "fp32":
        identity["precision"] = precision
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


def cached_checkpoint(
    folder: Path, retrain: bool, logger: logging.Logger
) -> tuple[dict[str, Any], str] | None:
    """(model card, digest) of a complete cached fine-tune, or None (after --retrain: None).

    A card whose digest no longer matches the files is refused rather than retrained over: a
    checkpoint changed by hand should be noticed, and --retrain is one flag away."""
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
