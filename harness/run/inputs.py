"""A run's inputs, set up once for the pipeline and for sweep shards alike: threads and seeds,
the dataset and its evaluation sample, and the model (loaded, or fine-tuned first).

Written once so that a shard of a suite sees exactly what the run sees: the same seeding
sequence, the same evaluation sample and the same model.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.config import RunConfig
from harness.data import Dataset, DatasetBundle, load_bundle
from harness.models.base import ModelAdapter
from harness.models.sources import LocatedModel


@dataclass(frozen=True)
class RunInputs:
    """What every suite of a run is given."""

    bundle: DatasetBundle  # every split (bias and explain read the train split)
    eval_data: Dataset  # the evaluation split, sampled when dataset.max_examples is set
    model: ModelAdapter


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
    return RunInputs(bundle=bundle, eval_data=eval_data, model=model)


def load_model(
    config: RunConfig,
    bundle: DatasetBundle,
    *,
    base_dir: Path,
    retrain: bool,
    logger: logging.Logger,
) -> ModelAdapter:
    """The evaluated model: located by ``harness.models.sources``, loaded with the run's
    inference settings."""
    from harness.artifacts import cache_root
    from harness.models.hf import HFClassifier

    found = locate_model(
        config, bundle, base_dir=base_dir, cache_root=cache_root(), retrain=retrain, logger=logger
    )
    m = config.model
    return HFClassifier.load(
        found.folder,
        name=found.name,
        source=found.source,
        label_names=bundle.label_names,
        device=config.device,
        max_length=m.max_length,
        batch_size=m.batch_size,
        precision=m.precision,
        allow_pickle=found.allow_pickle,
        trust_remote_code=found.trust_remote_code,
        model_card=found.model_card,
    )


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
    base_name = ft.base.artifact or ft.base.hub or Path(ft.base.path or "model").name
    # The checkpoint is this harness's own safetensors output: no pickle, no custom code.
    return LocatedModel(
        folder=result.checkpoint,
        name=f"{base_name} ({ft.method} fine-tune)",
        source="finetune",
        model_card=result.model_card,
    )
