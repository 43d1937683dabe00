"""``harness finetune FILE``: run only the fine-tuning stage of a run file.

Heavy imports (torch, transformers) happen inside the command so ``harness --help`` stays fast.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from harness.cli.console import out
from harness.cli.handler import command
from harness.errors import ConfigError

FileArgument = Annotated[Path, typer.Argument(help="Run file (YAML) with a 'finetune' stage.")]
RetrainOption = Annotated[
    bool, typer.Option("--retrain", help="Fine-tune again even if a cached checkpoint exists.")
]
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a config key, e.g. --set finetune.epochs=2 (repeatable)."),
]


def finetune(file: FileArgument, retrain: RetrainOption = False, set_: SetOption = None) -> None:
    """Fine-tune the run file's base model (cached); print the checkpoint and dev metrics.

    Multi-GPU: torchrun --nproc_per_node N -m harness finetune FILE (or accelerate launch).
    """
    from harness.artifacts import cache_root
    from harness.config import load_run_config
    from harness.data import load_bundle
    from harness.models.finetune.job import run_finetune
    from harness.models.finetune.trainer import current_world

    logger = finetune_logger()
    config, _ = load_run_config(file, set_ or [])
    if config.finetune is None:
        raise ConfigError(f"{file}: the run file has no 'finetune' stage")
    # Relative paths in a run file are relative to where harness runs (as in 'harness run').
    bundle = load_bundle(config.dataset, base_dir=Path.cwd())
    result = run_finetune(
        config,
        bundle,
        cache_root=cache_root(),
        retrain=retrain,
        threads=config.threads,
        device=config.device,
        logger=logger,
        base_dir=Path.cwd(),
    )
    world = current_world()
    if not world.is_main:
        # One line per other rank: each returns rank 0's checkpoint once rank 0 wrote it.
        out.print(
            f"rank {world.rank}/{world.size}: checkpoint {result.checkpoint} "
            f"digest {result.digest} (cache hit: {result.cache_hit})",
            highlight=False,
            soft_wrap=True,
        )
        return
    print_result(result)


def finetune_logger() -> logging.Logger:
    """``harness.finetune`` logging at INFO to stderr, unless someone set it up already."""
    logger = logging.getLogger("harness.finetune")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    return logger


def print_result(result: Any) -> None:
    """The checkpoint, its digest, the selected dev figures and the training throughput."""
    card = result.model_card
    out.print(f"checkpoint: {result.checkpoint}", highlight=False, soft_wrap=True)
    out.print(f"digest: {result.digest}  (cache hit: {result.cache_hit})", highlight=False)
    dev = card.get("final_dev")
    if dev:
        out.print(
            f"dev ({dev['split']}, n={dev['n']}, step {dev['step']}): "
            f"accuracy {dev['accuracy']:.4f}  "
            f"f1_macro {dev['f1_macro']:.4f}  loss {dev['loss']:.4f}",
            highlight=False,
        )
    training = card.get("training", {})
    out.print(
        f"trained {training.get('steps')} steps in {training.get('wall_time_s')} s "
        f"({training.get('examples_per_s')} examples/s) on {card['hardware']['device']}"
        f" x {card['hyperparameters'].get('world_size', 1)} process(es)",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    command(app, finetune)
