"""Running one suite of a run: its examples log, its context and its ``SuiteRecord``.

A suite's per-example rows go to ``examples/<key>.jsonl``, where the key is the suite's name,
or ``name-i`` when the run file names the suite more than once (``suite_key``; sweep shards
write their rows for the same key). A suite that raises becomes a record with status 'error';
the other suites still run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.predictions import Predictions
from harness.records import SuiteRecord
from harness.run.inputs import RunInputs
from harness.run.predictions import shared_predictions
from harness.store import EXAMPLES_DIR, ExampleLog
from harness.suites.base import ProgressFn, Suite, SuiteContext


def suite_key(names: list[str], i: int) -> str:
    """The name of suite ``i``'s examples file: its name, or ``name-i`` when it is repeated."""
    return names[i] if names.count(names[i]) == 1 else f"{names[i]}-{i}"


def examples_file(key: str) -> str:
    """A suite's per-example file, relative to the run folder."""
    return f"{EXAMPLES_DIR}/{key}.jsonl"


def suite_context(
    *,
    run_dir: Path,
    examples: ExampleLog,
    inputs: RunInputs,
    seed: int,
    logger: logging.Logger,
    predictions: Callable[[], Predictions],
    progress: ProgressFn | None = None,
) -> SuiteContext:
    """The context a suite runs in, for a run and for a sweep shard alike."""
    from harness.artifacts import cache_root

    ctx = SuiteContext(
        seed=seed, run_dir=run_dir, examples=examples, logger=logger, predictions=predictions,
        bundle=inputs.bundle, cache_dir=cache_root() / "suites",
    )  # fmt: skip
    if progress is not None:
        ctx.progress = progress
    return ctx


def run_suite(
    suite: Suite,
    key: str,
    inputs: RunInputs,
    *,
    run_dir: Path,
    seed: int,
    logger: logging.Logger,
    progress: ProgressFn,
) -> SuiteRecord:
    """Run ``suite`` on the run's evaluation data; never raises for a failing suite."""
    rel = examples_file(key)
    log = ExampleLog(run_dir / rel).open()
    data = inputs.eval_data
    ctx = suite_context(
        run_dir=run_dir, examples=log, inputs=inputs, seed=seed, logger=logger,
        predictions=lambda: shared_predictions(run_dir, data), progress=progress,
    )  # fmt: skip
    started = time.perf_counter()
    params = suite.params.model_dump(mode="json")
    logger.info("suite %s: start (%s)", key, params)
    try:
        outcome = suite.run(inputs.model, data, ctx)
    except HarnessError as exc:
        log.close()
        logger.error("suite %s failed: %s", key, exc.message)
        return _failed(suite, params, exc.message, started)
    except KeyboardInterrupt:
        log.close()
        raise
    except Exception as exc:  # a suite bug must not lose the other suites' results
        log.close()
        logger.exception("suite %s crashed", key)
        return _failed(suite, params, f"{type(exc).__name__}: {exc}", started)
    n_rows = len(log.done)
    if outcome.example_order is not None:
        log.rewrite_in_order(list(outcome.example_order))
    log.close()
    if n_rows == 0:
        (run_dir / rel).unlink(missing_ok=True)
    logger.info("suite %s: done in %.1f s", key, time.perf_counter() - started)
    return SuiteRecord(
        name=suite.name, version=suite.version, params=params, status="ok",
        metrics=outcome.metrics, wall_time_s=time.perf_counter() - started,
        examples_file=rel if n_rows else None, n_examples=n_rows, warnings=outcome.warnings,
        departures=outcome.departures, resources=outcome.resources, details=outcome.details,
        capabilities=type(suite).capabilities,
    )  # fmt: skip


def _failed(suite: Suite, params: dict[str, Any], error: str, started: float) -> SuiteRecord:
    return SuiteRecord(
        name=suite.name, version=suite.version, params=params, status="error", error=error,
        wall_time_s=time.perf_counter() - started, capabilities=type(suite).capabilities,
    )  # fmt: skip
