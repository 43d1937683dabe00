"""Sharding a long suite by example, merged so the result equals the unsharded run.

Shard k of K runs the suite on every K-th example of the suite's own sample and writes its
per-example rows into a shard log outside the run folder. The merge appends the shards' rows
to the run folder's ``examples/<suite>.jsonl``; the ordinary run then resumes from them: the
suite finds every example in ``ctx.examples.done``, attacks nothing new, and only aggregates.
The rows are the unsharded run's rows (below), so the record is the unsharded record, by
construction, except for figures that time this run's own work.

Only suites whose rows depend on nothing but (example, params, seed) can be sharded:

- ``invariance``: perturbations are seeded per example id; per-example predictions do not
  depend on the batch (the adapter pads each batch to its longest item under an attention mask;
  checked bitwise on CPU in tests/test_sweep.py).
- ``robustness``: every example is attacked from a clean state with RNGs seeded from
  (seed, recipe, example id) (see harness/suites/robustness.py).

Not ``explain`` (it draws sub-samples of its sample, which a shard would draw differently),
``bias``, ``latency`` or ``accuracy`` (whole-sample figures, nothing long to split).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.store import ExampleLog, read_jsonl

if TYPE_CHECKING:
    from harness.data import Dataset

SHARDABLE = frozenset({"invariance", "robustness"})
SHARD_DIR = ".shards"
DONE_SUFFIX = ".done"

MSG_SHARD_MISSING = "shard {path} did not finish (no {marker} marker); run the sweep again"
MSG_SHARD_CONFLICT = "shards disagree on example {row_id!r} of suite {key!r}"


def suite_key(names: list[str], i: int) -> str:
    """The examples-file name the runner gives suite ``i`` (name, or name-i when repeated).

    Mirrors harness.run.runner's private rule; tests/test_sweep.py checks the merged file lands
    where the runner reads it.
    """
    return names[i] if names.count(names[i]) == 1 else f"{names[i]}-{i}"


def shard_log(sweep_dir: Path, job_id: str, key: str, k: int, n_shards: int) -> Path:
    return sweep_dir / SHARD_DIR / job_id / f"{key}.{k}-of-{n_shards}.jsonl"


def is_done(log: Path) -> bool:
    return log.with_name(log.name + DONE_SUFFIX).is_file()


def shard_part(eval_data: Dataset, params: Any, run_seed: int, k: int, n_shards: int) -> Dataset:
    """Every ``n_shards``-th example of the suite's sample, starting at ``k``.

    The suite samples ``data.sample(params.n_examples, seed)``; the part is a subset of that
    sample no longer than n_examples, so the suite's own sampling returns the part unchanged.
    """
    n = getattr(params, "n_examples", None)
    seed = getattr(params, "seed", None)
    sample = eval_data.sample(n, run_seed if seed is None else seed)
    return sample.subset(list(range(k, len(sample), n_shards)))


def run_shard(
    config_path: Path, overrides: list[str], suite_index: int, k: int, n_shards: int, log_path: Path
) -> int:
    """Run shard k of suite ``suite_index`` of a run file into ``log_path``; returns its rows."""
    import numpy as np
    import torch

    from harness import registry
    from harness.artifacts import cache_root
    from harness.config import load_run_config
    from harness.data import load_bundle
    from harness.run.runner import load_model, seed_everything
    from harness.suites.base import Predictions, SuiteContext

    if is_done(log_path):
        return sum(1 for _ in read_jsonl(log_path))
    config, params = load_run_config(config_path, overrides)
    if config.threads:
        torch.set_num_threads(config.threads)
    seed_everything(config.seed)  # the same seeding sequence as the runner
    log_path.parent.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger(f"harness.sweep.shard.{log_path.name}")
    logger.propagate = False
    handler = logging.FileHandler(log_path.with_suffix(".log"), encoding="utf-8")
    logger.addHandler(handler)
    try:
        cwd = Path.cwd()
        bundle = load_bundle(config.dataset, base_dir=cwd)
        eval_data = bundle.get(config.dataset.eval_split).sample(
            config.dataset.max_examples, config.dataset.split_seed
        )
        model = load_model(
            config, bundle, base_dir=cwd, cache_root=cache_root(), retrain=False, logger=logger
        )
        part = shard_part(eval_data, params[suite_index], config.seed, k, n_shards)
        seed_everything(config.seed)
        suite = registry.suites.get(config.suites[suite_index].name)(params=params[suite_index])
        with ExampleLog(log_path) as log:

            def predictions() -> Predictions:
                probs = model.predict_proba(list(part.texts))
                return Predictions(
                    ids=part.ids,
                    labels=part.labels,
                    probabilities=np.asarray(probs, dtype=np.float64),
                )

            ctx = SuiteContext(
                seed=config.seed,
                run_dir=log_path.parent,
                examples=log,
                logger=logger,
                predictions=predictions,
                bundle=bundle,
                cache_dir=cache_root() / "suites",
            )
            suite.run(
                model, part, ctx
            )  # the shard's aggregate figures are discarded; rows are kept
            n_rows = len(log.done)
    finally:
        logger.removeHandler(handler)
        handler.close()
    log_path.with_name(log_path.name + DONE_SUFFIX).write_text(f"{n_rows}\n", encoding="utf-8")
    return n_rows


def merge_shards(run_dir: Path, key: str, logs: list[Path]) -> int:
    """Append every shard's rows to ``run_dir/examples/<key>.jsonl`` (shard order; the runner
    rewrites the file in the suite's example order at the end). Returns the rows added."""
    from harness.errors import SuiteError
    from harness.store import EXAMPLES_DIR

    rows: dict[str, dict[str, Any]] = {}
    for log in logs:
        if not is_done(log):
            raise SuiteError(MSG_SHARD_MISSING.format(path=log, marker=DONE_SUFFIX))
        for row in read_jsonl(log):
            row_id = str(row["id"])
            if row_id in rows and rows[row_id] != row:
                raise SuiteError(MSG_SHARD_CONFLICT.format(row_id=row_id, key=key))
            rows[row_id] = row
    with ExampleLog(run_dir / EXAMPLES_DIR / f"{key}.jsonl") as target:
        before = len(target.done)
        target.extend(rows.values())
        return len(target.done) - before
