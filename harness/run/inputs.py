"""A run's inputs, set up once for the pipeline and for sweep shards alike: threads and seeds,
the dataset and its evaluation sample, and the model (loaded, or fine-tuned first).

Written once so that a shard of a suite sees exactly what the run sees: the same seeding
sequence, the same evaluation sample and the same model.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.config import RunConfig
from harness.data import Dataset, DatasetBundle, load_bundle
from harness.models.base import ModelAdapter
from harness.models.sources import LocatedModel
from harness.run.views import EvalSet, load_eval_sets


@dataclass(frozen=True)
class RunInputs:
    """What every suite of a run is given."""

    bundle: DatasetBundle  # every split (bias and explain read the train split)
    eval_data: Dataset  # the evaluation split, sampled when dataset.max_examples is set
    model: ModelAdapter
    # dataset.extra_eval: more evaluation sets, each with its own predictions (run.views)
    eval_sets: Mapping[str, EvalSet] = field(default_factory=dict)


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def prepare_inputs(
    config: RunConfig, *, base_dir: Path, retrain: bool, logger: logging.Logger
) -> RunInputs:
    """Pin torch threads, seed, read the dataset, sample the evaluation split, load the model.

    ``base_dir``: where relative paths of the run file start (the folder harness runs in).
    """
    import torch

    if config.threads:
        torch.set_num_threads(config.threads)
    seed_everything(config.seed)
    bundle = load_bundle(config.dataset, base_dir=base_dir)
    ds = config.dataset
    eval_data = bundle.get(ds.eval_split).sample(ds.max_examples, ds.split_seed)
    model = load_model(config, bundle, base_dir=base_dir, retrain=retrain, logger=logger)
    eval_sets = load_eval_sets(config, model.label_names, base_dir)
    return RunInputs(bundle=bundle, eval_data=eval_data, model=model, eval_sets=eval_sets)


def load_model(
    config: RunConfig,
    bundle: DatasetBundle,
    *,
    base_dir: Path,
    retrain: bool,
    logger: logging.Logger,
) -> ModelAdapter:
    """The evaluated model: located by ``harness.models.sources``, loaded by its model kind
    (``model.kind``, or the kind a fine-tune method produces) with the run's inference settings."""
    from harness.artifacts import cache_root
    from harness.models.kinds.base import load_kind

    found = locate_model(
        config, bundle, base_dir=base_dir, cache_root=cache_root(), retrain=retrain, logger=logger
    )
    return load_kind(config, found, bundle)


def locate_model(
    config: RunConfig,
    bundle: DatasetBundle,
    *,
    base_dir: Path,
    cache_root: Path,
    retrain: bool,
    logger: logging.Logger,
) -> LocatedModel:
    """The evaluated model of a run: ``model``'s source, or the checkpoint of its finetune stage
    (fine-tuned now, or found in the cache; the stage resolves its base through ``resolve``)."""
    from harness.models.sources import resolve

    ft = config.finetune
    if ft is None:
        return resolve(config.model, where="model", base_dir=base_dir)
    from harness.models.finetune.job import run_finetune

    result = run_finetune(
        config, bundle, cache_root=cache_root, retrain=retrain, threads=config.threads,
        device=config.device, logger=logger, base_dir=base_dir,
    )  # fmt: skip
    logger.info("fine-tuned checkpoint %s (cache hit: %s)", result.checkpoint, result.cache_hit)
    base_name = ft.base.artifact or ft.base.hub or _path_base_name(Path(ft.base.path or "model"))
    adv = ft.adversarial
    what = None if adv is None else (f"{adv.recipe} attacks" if adv.method == "attack" else adv.method)
    adversarial = f", adversarial: {what}" if what else ""
    shots = f", {ft.shots}-shot" if ft.shots is not None else ""  # few-shot is not the full recipe
    # The checkpoint is this harness's own safetensors output: no pickle, no custom code.
    return LocatedModel(
        folder=result.checkpoint,
        name=f"{base_name} ({ft.method} fine-tune{shots}{adversarial})",
        source="finetune",
        model_card=result.model_card,
    )


def _path_base_name(folder: Path) -> str:
    """A base folder's name; for a harness fine-tune (a cache folder named by its key) the name
    its model card records, e.g. 'minilm-l6 (full fine-tune)'."""
    import json

    try:
        card = json.loads((folder / "model_card.json").read_text(encoding="utf-8"))
        return f"{card['base_model']['name']} ({card['method']} fine-tune)"
    except (OSError, ValueError, KeyError, TypeError):
        return folder.name
