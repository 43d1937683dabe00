"""The model the benchmarks measure by default: the README main job's fine-tuned checkpoint.

The issues specify "the fine-tuned minilm-l6 default model". That checkpoint is whatever
``harness run suites/default.yaml`` (``make demo``) fine-tuned and cached; this finds it without
training (a benchmark must not start a 7-minute fine-tune). When it is not cached, callers fall
back to minilm-l6 with a fresh head and say so in their figures.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_RUN_FILE = REPO / "suites" / "default.yaml"


def default_checkpoint() -> Path | None:
    """The cached fine-tuned checkpoint of suites/default.yaml, or None if it is not cached."""
    from harness.artifacts import cache_root
    from harness.config import load_run_config
    from harness.data import load_bundle
    from harness.models.finetune.cache import CARD, cache_key
    from harness.models.finetune.job import effective_seed
    from harness.models.finetune.prep import resolve_base, select_splits

    config, _ = load_run_config(DEFAULT_RUN_FILE, [])
    if config.finetune is None:
        return None
    bundle = load_bundle(config.dataset)
    seed = effective_seed(config)
    base = resolve_base(config.finetune.base, base_dir=REPO)
    train, dev = select_splits(bundle, config.finetune, seed)
    folder = cache_root() / "finetune" / cache_key(base, train, dev, config.finetune, seed)
    return folder if (folder / CARD).is_file() else None


def bench_model_folder(env_var: str) -> tuple[Path | None, str]:
    """``$env_var`` if set, else the default run's cached checkpoint, else None (fresh head);
    with a description for the figures."""
    custom = os.environ.get(env_var)
    if custom:
        return Path(custom), f"checkpoint from ${env_var}: {custom}"
    found = default_checkpoint()
    if found is not None:
        return found, f"the default run's fine-tuned checkpoint {found}"
    return None, "minilm-l6 with a fresh seeded head (the default run's checkpoint is not cached: run `make demo` first)"
