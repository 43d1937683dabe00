"""Sharding a long suite by example, merged so the result equals the unsharded run.

Shard k of K runs the suite on every K-th example of the suite's own sample and writes its
per-example rows into a shard log outside the run folder. The merge appends the shards' rows
to the run folder's ``examples/<suite>.jsonl``; the ordinary run then resumes from them: the
suite finds every example in ``ctx.examples.done``, attacks nothing new, and only aggregates.
The rows are the unsharded run's rows (below), so the record is the unsharded record, by
construction, except for figures that time this run's own work.

Only suites whose rows depend on nothing but (example, params, seed) can be sharded; a suite
says so with ``capabilities.shardable`` and names its sample-size parameter in
``capabilities.shard_param``. The built-in ones:

- ``invariance``: perturbations are seeded per example id; per-example predictions do not
  depend on the batch (the adapter pads each batch to its longest item under an attention mask;
  checked bitwise on CPU in tests/test_sweep.py).
- ``robustness``: every example is attacked from a clean state with RNGs seeded from
  (seed, recipe, example id) (see harness/suites/robustness.py).

Not ``explain`` (it draws sub-samples of its sample, which a shard would draw differently),
``bias``, ``latency`` or ``accuracy`` (whole-sample figures, nothing long to split).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.store import ExampleLog, read_jsonl

if TYPE_CHECKING:
    from harness.data import Dataset
    from harness.suites.base import Suite
    from harness.sweep.work import ShardWork

SHARD_DIR = ".shards"
DONE_SUFFIX = ".done"

MSG_SHARD_MISSING = "shard {path} did not finish (no {marker} marker); run the sweep again"
MSG_SHARD_CONFLICT = "shards disagree on example {row_id!r} of suite {key!r}"


def shardable_suites() -> list[str]:
    """Registered suites that declare ``capabilities.shardable``."""
    from harness import registry

    return [n for n in registry.suites.names() if registry.suites.get(n).capabilities.shardable]


def shard_log(sweep_dir: Path, job_id: str, key: str, k: int, n_shards: int) -> Path:
    return sweep_dir / SHARD_DIR / job_id / f"{key}.{k}-of-{n_shards}.jsonl"


def is_done(log: Path) -> bool:
    return log.with_name(log.name + DONE_SUFFIX).is_file()


def shard_part(eval_data: Dataset, suite: Suite, run_seed: int, k: int, n_shards: int) -> Dataset:
    """Every ``n_shards``-th example of the suite's sample, starting at ``k``.

    The suite samples ``data.sample(params.<shard_param>, seed)``, its ``capabilities`` name the
    parameter; the part is a subset of that sample no longer than it, so the suite's own
    sampling returns the part unchanged. A suite's own ``seed`` parameter, when it has one and
    sets it, replaces the run seed (as in the built-in suites).
    """
    param = type(suite).capabilities.shard_param
    n = getattr(suite.params, param) if param is not None else None
    seed = getattr(suite.params, "seed", None)
    sample = eval_data.sample(n, run_seed if seed is None else seed)
    return sample.subset(list(range(k, len(sample), n_shards)))


def run_shard(work: ShardWork) -> int:
    """Run shard ``work.k`` of suite ``work.suite_index`` into ``work.log``; returns its rows.

    The run's set-up (threads, seeds, data, model) and the suite's context are built by the
    same ``harness.run`` functions as an ordinary run; only the examples differ (the part).
    """
    from harness import registry
    from harness.run.folder import file_logger
    from harness.run.inputs import prepare_inputs, seed_everything
    from harness.run.predictions import predictions_of
    from harness.run.suites import suite_context

    log_path, config = work.log, work.config
    if is_done(log_path):
        return sum(1 for _ in read_jsonl(log_path))
    log_path.parent.mkdir(parents=True, exist_ok=True)
    name = f"harness.sweep.shard.{log_path.name}"
    with file_logger(name, log_path.with_suffix(".log")) as logger:
        inputs = prepare_inputs(config, base_dir=Path.cwd(), retrain=False, logger=logger)
        spec = config.suites[work.suite_index]
        suite = registry.suites.get(spec.name)(params=work.suite_params[work.suite_index])
        part = shard_part(inputs.eval_data, suite, config.seed, work.k, work.n_shards)
        seed_everything(config.seed)  # the same seeding sequence as the runner
        with ExampleLog(log_path) as log:
            ctx = suite_context(
                run_dir=log_path.parent, examples=log, inputs=inputs, seed=config.seed,
                logger=logger, predictions=lambda: predictions_of(inputs.model, part),
            )  # fmt: skip
            suite.run(inputs.model, part, ctx)  # the aggregate figures are discarded; rows kept
            n_rows = len(log.done)
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
