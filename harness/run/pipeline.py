"""The run pipeline: config -> data -> model (or fine-tune) -> predictions -> suites -> record.

A run folder is resumable: predictions and every suite's per-example rows are appended and
fsynced as they finish, and ``record.json`` is rewritten (atomically, status 'incomplete') after
each suite, so a re-run with the same config into the same folder continues where it stopped.
The record is marked 'complete' only when every suite ended; the manifest is written last.

``execute`` runs a run file; ``execute_config`` runs an already validated config (a sweep's
workers are handed their job's config objects and never parse text again).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import registry
from harness.config import RunConfig, load_run_config
from harness.errors import ConfigError, ExitCode
from harness.models import agreement
from harness.provenance import utc_now
from harness.records import RunRecord, SuiteRecord, SweepJob
from harness.run.folder import check_same_identity, default_run_dir, open_run_folder, run_logger
from harness.run.inputs import prepare_inputs, seed_everything
from harness.run.predictions import compute_predictions
from harness.run.record import RunState, count_truncated, write_record
from harness.run.suites import run_suite, suite_key
from harness.run.views import apply_views, predict_eval_sets
from harness.store import write_manifest
from harness.suites.base import ProgressFn, Suite

ProgressFactory = Callable[[str, int], ProgressFn]  # (label, total) -> progress callback

MSG_DISTRIBUTED = (
    "harness run evaluates in one process; under torchrun / accelerate launch every rank would "
    "write the same run folder. Launch `harness finetune FILE` that way, then `harness run FILE`"
)


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    record: RunRecord
    exit_code: ExitCode
    reused: bool = False


def _no_progress(label: str, total: int) -> ProgressFn:
    return lambda done, total_: None


@dataclass(frozen=True)
class RunOptions:
    """How to run a config (not what it runs)."""

    out_dir: Path | None = None  # default: OUTPUT_DIR/NAME-DIGEST, relative to the working folder
    force: bool = False  # start over: earlier results in the folder are removed
    retrain: bool = False  # discard a cached fine-tune
    progress_factory: ProgressFactory = _no_progress
    # The caller vouches that per-example files already in a folder without a record were
    # written for this very config (a sharded sweep merges its shards' rows there); without it
    # such a folder is refused, since nothing says whose results they are.
    adopt_examples: bool = False
    sweep: SweepJob | None = None  # the sweep this run is a job of (``harness.sweep.plan``)


def refuse_distributed() -> None:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError(MSG_DISTRIBUTED)


def execute(
    config_path: Path,
    *,
    overrides: list[str] | None = None,
    out_dir: Path | None = None,
    force: bool = False,
    retrain: bool = False,
    progress_factory: ProgressFactory | None = None,
    adopt_examples: bool = False,
) -> RunResult:
    """Run a run file (with ``--set`` overrides) end to end; see ``RunOptions``."""
    refuse_distributed()
    config, suite_params = load_run_config(config_path, overrides)
    options = RunOptions(
        out_dir=out_dir, force=force, retrain=retrain,
        progress_factory=progress_factory or _no_progress, adopt_examples=adopt_examples,
    )  # fmt: skip
    return execute_config(config, suite_params, options)


def execute_config(
    config: RunConfig, suite_params: Sequence[Any], options: RunOptions = RunOptions()
) -> RunResult:
    """Run a validated config end to end. Raises ``HarnessError`` for anything a person must fix.

    ``suite_params``: each suite's validated params object, in config order.
    """
    refuse_distributed()
    base_dir = Path.cwd()  # relative paths in a run file are relative to where harness runs
    run_dir = (options.out_dir or default_run_dir(config, base_dir)).resolve()
    folder = open_run_folder(config, run_dir, force=options.force, adopt_examples=options.adopt_examples)
    if folder.complete:
        assert folder.previous is not None
        return RunResult(run_dir, folder.previous, ExitCode.OK, reused=True)
    progress = options.progress_factory
    with run_logger(run_dir) as logger:
        logger.info("run %s (config sha256 %s) into %s", config.name, folder.digest, run_dir)
        inputs = prepare_inputs(config, base_dir=base_dir, retrain=options.retrain, logger=logger)
        check_same_identity(folder, inputs.model, inputs.eval_data)
        run = RunState(config, folder, inputs, count_truncated(inputs), folder.finished_suites(),
                       sweep=options.sweep)  # fmt: skip
        write_record(run)  # before any result: a resumed run can check whose results it continues
        seed_everything(config.seed)
        preds = compute_predictions(inputs.model, inputs.eval_data, run_dir, progress("predict", len(inputs.eval_data)))
        agreement.attach(inputs.model, agreement.probe(inputs.model, inputs.eval_data, preds, config.model.agreement, seed=config.seed, logger=logger))  # fmt: skip
        predict_eval_sets(run, progress)  # dataset.extra_eval
        _run_suites(run, suite_params, logger, progress)
        apply_views(run, suite_params, logger)  # extra sets and published subsets, scored
        run.status = "complete" if all(s.status == "ok" for s in run.suites) else "failed"
        run.finished_utc = utc_now()
        record = write_record(run)
        logger.info("run %s: %s", config.name, run.status)
    write_manifest(run_dir)
    return RunResult(run_dir, record, ExitCode.OK if run.status == "complete" else ExitCode.SUITE)


def _run_suites(
    run: RunState, suite_params: Sequence[Any], logger: logging.Logger, progress: ProgressFactory
) -> None:
    """Every suite in config order into ``run.suites``; those the previous attempt finished are
    kept (same config digest, so ``finished[i]`` is suite ``i``). The record is rewritten after
    each suite that runs."""
    config, n = run.config, len(run.inputs.eval_data)
    names = [s.name for s in config.suites]
    finished = run.folder.finished_suites()
    done: list[SuiteRecord] = []
    run.suites = done
    for i, (spec, params) in enumerate(zip(config.suites, suite_params, strict=True)):
        if i < len(finished) and finished[i].status == "ok":
            done.append(finished[i])
            continue
        key = suite_key(names, i)
        suite: Suite = registry.suites.get(spec.name)(params=params)
        seed_everything(config.seed)
        done.append(
            run_suite(suite, key, run.inputs, run_dir=run.folder.path, seed=config.seed,
                      logger=logger, progress=progress(key, n))
        )  # fmt: skip
        write_record(run)
