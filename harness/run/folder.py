"""Opening a run folder: where a run goes, whether the folder holds this config's results, and
what a resumed run may keep.

A folder with a record of another config is refused; so is one with per-example results but no
record (nothing says whose results they are) unless the caller vouches for them. ``--force``
clears earlier results so nothing leaks into the new run through resume. A resumed run must
also have the same model, data and harness version (checked once the model is loaded).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from harness import __version__
from harness.config import RunConfig
from harness.data import Dataset
from harness.errors import ConfigError, HarnessError
from harness.models.base import ModelAdapter
from harness.provenance import utc_now
from harness.records import PREDICTIONS_FILE, RECORD_FILE, RunRecord, SuiteRecord, load_record
from harness.store import EXAMPLES_DIR, atomic_write_text, sha256_json

LOG_FILE = "run.log"
CONFIG_FILE = "config.yaml"
RESULT_FILES = (RECORD_FILE, PREDICTIONS_FILE, "manifest.json")

MSG_OTHER_CONFIG = (
    "{run_dir}: holds a run of a different config (sha256 {digest}…); "
    "choose another --out or pass --force to start over"
)
MSG_NO_RECORD = (
    "{run_dir}: holds per-example results but no record, so their model and data cannot be "
    "checked; choose another --out or pass --force to start over"
)
MSG_OTHER_IDENTITY = (
    "{run_dir}: holds partial results of the same config but a different {problems}; "
    "pass --force to start over"
)


def config_digest(config: RunConfig) -> str:
    return sha256_json(config.model_dump(mode="json"))


def default_run_dir(config: RunConfig, base: Path) -> Path:
    out = Path(config.output_dir).expanduser()
    out = out if out.is_absolute() else base / out
    return out / f"{config.name}-{config_digest(config)[:12]}"


@dataclass(frozen=True)
class RunFolder:
    """An opened run folder and what an earlier run of the same config left there."""

    path: Path
    digest: str  # the config's sha256
    previous: RunRecord | None  # the record of an unfinished (or finished) run of this config
    started_utc: str  # an interrupted run keeps its first start

    @property
    def complete(self) -> bool:
        return self.previous is not None and self.previous.status == "complete"

    def finished_suites(self) -> list[SuiteRecord]:
        """The previous run's suites, in config order (same digest, so the same suites)."""
        return list(self.previous.suites) if self.previous is not None else []


def open_run_folder(
    config: RunConfig, run_dir: Path, *, force: bool = False, adopt_examples: bool = False
) -> RunFolder:
    """Check ``run_dir`` against ``config`` and prepare it (``config.yaml`` written). A folder
    whose run is complete is returned untouched (``complete``), for the caller to reuse."""
    digest = config_digest(config)
    previous = _previous_record(run_dir, digest, force)
    if previous is not None and previous.status == "complete":
        return RunFolder(run_dir, digest, previous, previous.provenance.started_utc)
    if force:
        _clear_results(run_dir)
    elif previous is None and _has_results(run_dir) and not adopt_examples:
        raise ConfigError(MSG_NO_RECORD.format(run_dir=run_dir))
    run_dir.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=True, allow_unicode=True)
    atomic_write_text(run_dir / CONFIG_FILE, text)
    started = previous.provenance.started_utc if previous is not None else utc_now()
    return RunFolder(run_dir, digest, previous, started)


def _previous_record(run_dir: Path, digest: str, force: bool) -> RunRecord | None:
    if not (run_dir / RECORD_FILE).is_file():
        return None
    try:
        previous = load_record(run_dir)
    except HarnessError:
        if force:
            return None
        raise
    recorded = previous.provenance.config_sha256
    if recorded != digest and not force:
        raise ConfigError(MSG_OTHER_CONFIG.format(run_dir=run_dir, digest=recorded[:12]))
    return None if force else previous


def _has_results(run_dir: Path) -> bool:
    return (run_dir / PREDICTIONS_FILE).exists() or any((run_dir / EXAMPLES_DIR).glob("*.jsonl"))


def _clear_results(run_dir: Path) -> None:
    """--force: start over; earlier results must not leak into the new run through resume."""
    for name in RESULT_FILES:
        (run_dir / name).unlink(missing_ok=True)
    shutil.rmtree(run_dir / EXAMPLES_DIR, ignore_errors=True)


def check_same_identity(folder: RunFolder, model: ModelAdapter, data: Dataset) -> None:
    """Resume only results of the same model, data and harness version (cache keys carry identity)."""
    previous = folder.previous
    if previous is None:
        return
    problems = []
    digest = model.info().digest
    if previous.model.digest != digest:
        problems.append(f"model digest {previous.model.digest[:12]}… there, {digest[:12]}… now")
    recorded = {s.name: s.sha256 for s in previous.dataset.splits}
    split_key = f"{data.split}@sample" if f"{data.split}@sample" in recorded else data.split
    if recorded.get(split_key) != data.digest():
        problems.append(
            f"evaluation data digest {str(recorded.get(split_key))[:12]}… there, "
            f"{data.digest()[:12]}… now"
        )
    if previous.provenance.harness_version != __version__:
        problems.append(f"harness {previous.provenance.harness_version} there, {__version__} now")
    if problems:
        raise ConfigError(MSG_OTHER_IDENTITY.format(run_dir=folder.path, problems="; ".join(problems)))


@contextmanager
def file_logger(name: str, file: Path) -> Iterator[logging.Logger]:
    """A logger writing INFO and above to ``file`` only (not to the console), for one run."""
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handler = logging.FileHandler(file, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    try:
        yield logger
    finally:
        logger.removeHandler(handler)
        handler.close()


def run_logger(run_dir: Path) -> AbstractContextManager[logging.Logger]:
    """The run's own log, ``RUN_DIR/run.log``."""
    return file_logger(f"harness.run.{run_dir.name}", run_dir / LOG_FILE)
