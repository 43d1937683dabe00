"""The run pipeline: config -> data -> model (or fine-tune) -> predictions -> suites -> record.

A run folder is resumable: predictions and every suite's per-example rows are appended and
fsynced as they finish, and ``record.json`` is rewritten (atomically, status 'incomplete') after
each suite, so a re-run with the same config into the same folder continues where it stopped.
The record is marked 'complete' only when every suite ended; the manifest is written last.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from harness import __version__, registry
from harness.config import RunConfig, load_run_config
from harness.data import Dataset, DatasetBundle, load_bundle
from harness.errors import ConfigError, ExitCode, HarnessError, ModelError
from harness.provenance import (
    cpu_name,
    git_state,
    gpu_name,
    os_name,
    package_versions,
    python_version,
    utc_now,
)
from harness.records import (
    PREDICTIONS_FILE,
    RECORD_FILE,
    DatasetInfo,
    Provenance,
    RunRecord,
    SplitInfo,
    SuiteRecord,
    dump_record,
    load_record,
)
from harness.store import EXAMPLES_DIR, ExampleLog, atomic_write_text, sha256_json, write_manifest
from harness.suites.base import Predictions, Suite, SuiteContext

LOG_FILE = "run.log"
CONFIG_FILE = "config.yaml"
PREDICTION_CHUNK = 512  # predictions are computed and flushed per fixed chunk of the eval split

ProgressFactory = Callable[[str, int], Callable[[int, int], None]]


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    record: RunRecord
    exit_code: ExitCode
    reused: bool = False


def config_digest(config: RunConfig) -> str:
    return sha256_json(config.model_dump(mode="json"))


def default_run_dir(config: RunConfig, base: Path) -> Path:
    out = Path(config.output_dir).expanduser()
    out = out if out.is_absolute() else base / out
    return out / f"{config.name}-{config_digest(config)[:12]}"


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@contextmanager
def run_logger(run_dir: Path) -> Iterator[logging.Logger]:
    logger = logging.getLogger(f"harness.run.{run_dir.name}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handler = logging.FileHandler(run_dir / LOG_FILE, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    try:
        yield logger
    finally:
        logger.removeHandler(handler)
        handler.close()


def load_model(config: RunConfig, bundle: DatasetBundle, *, base_dir: Path, cache_root: Path, retrain: bool, logger: logging.Logger) -> Any:
    from harness import artifacts
    from harness.models.hf import HFClassifier

    m = config.model
    common: dict[str, Any] = {
        "label_names": bundle.label_names,
        "device": config.device,
        "max_length": m.max_length,
        "batch_size": m.batch_size,
        "precision": m.precision,
    }
    if config.finetune is not None:
        from harness.models.finetune.job import run_finetune

        result = run_finetune(
            config, bundle, cache_root=cache_root, retrain=retrain, threads=config.threads,
            device=config.device, logger=logger, base_dir=base_dir,
        )
        logger.info("fine-tuned checkpoint %s (cache hit: %s)", result.checkpoint, result.cache_hit)
        base = config.finetune.base
        base_name = base.artifact or base.hub or Path(base.path or "model").name
        return HFClassifier.load(
            result.checkpoint, name=f"{base_name} ({config.finetune.method} fine-tune)", source="finetune",
            model_card=result.model_card, **common,
        )
    if m.artifact is not None:
        folder = artifacts.fetch(m.artifact)
        return HFClassifier.load(folder, name=m.artifact, source="artifact", **common)
    if m.path is not None:
        folder = Path(m.path).expanduser()
        folder = folder if folder.is_absolute() else base_dir / folder
        return HFClassifier.load(
            folder, name=folder.name, source="path", allow_pickle=m.allow_pickle,
            trust_remote_code=m.trust_remote_code, **common,
        )
    assert m.hub is not None
    return HFClassifier.load(hub_snapshot(m.hub, m.revision), name=m.hub, source="hub", allow_pickle=m.allow_pickle, trust_remote_code=m.trust_remote_code, **common)


def hub_snapshot(repo: str, revision: str | None) -> Path:
    import os

    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise ModelError(f"model.hub: {repo!r} needs the Hugging Face Hub, but HF_HUB_OFFLINE=1; use model.artifact or model.path")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo, revision=revision, allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model"]))
    except Exception as exc:  # the hub client raises many types; all mean "not available"
        raise ModelError(f"model.hub: cannot download {repo!r} ({type(exc).__name__}: {exc})") from None


def _predict_rows(model: Any, texts: tuple[str, ...], ids: tuple[str, ...], labels: list[str], names: tuple[str, ...]) -> list[dict[str, Any]]:
    """Predict one chunk; a chunk that fails is retried example by example so one bad input
    costs one ``error`` row, not the run."""
    try:
        probs_list: list[Any] = list(model.predict_proba(list(texts)))
        failures: dict[int, str] = {}
    except (KeyboardInterrupt, HarnessError):
        raise
    except Exception:
        probs_list, failures = [], {}
        for j, text in enumerate(texts):
            try:
                probs_list.append(model.predict_proba([text])[0])
            except (KeyboardInterrupt, HarnessError):
                raise
            except Exception as exc:  # a model that raises on this input
                probs_list.append(None)
                failures[j] = f"model raised {type(exc).__name__}: {exc}"[:500]
    rows: list[dict[str, Any]] = []
    for j, ident in enumerate(ids):
        p = probs_list[j]
        reason = failures.get(j)
        if reason is None and not np.all(np.isfinite(p)):
            reason = "model returned non-finite scores (NaN or infinite logits)"
        if reason is not None:
            rows.append({"id": ident, "label": labels[j], "predicted": None, "probabilities": None, "error": reason})
        else:
            rows.append({
                "id": ident, "label": labels[j], "predicted": names[int(np.argmax(p))],
                "probabilities": [float(v) for v in p],
            })
    return rows


def compute_predictions(model: Any, data: Dataset, run_dir: Path, progress: Callable[[int, int], None]) -> Predictions:
    """Predict the eval split in fixed chunks, appending each finished chunk; resume skips done ones.

    Chunks are fixed slices of the split (not of the remaining ids), so a resumed run batches
    exactly as an uninterrupted one and produces the same bytes.
    """
    log = ExampleLog(run_dir / PREDICTIONS_FILE).open()
    names = data.label_names
    try:
        for start in range(0, len(data), PREDICTION_CHUNK):
            end = min(start + PREDICTION_CHUNK, len(data))
            ids = data.ids[start:end]
            if not all(i in log.done for i in ids):
                labels = [names[y] for y in data.labels[start:end]]
                log.extend(_predict_rows(model, data.texts[start:end], ids, labels, names))
            progress(end, len(data))
        log.rewrite_in_order(list(data.ids))
    finally:
        log.close()
    _PRED_CACHE.pop(run_dir, None)
    return _shared_predictions(run_dir, data)


def _suite_key(names: list[str], i: int) -> str:
    return names[i] if names.count(names[i]) == 1 else f"{names[i]}-{i}"


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
    """Run a run file end to end. Raises ``HarnessError`` for anything a person must fix.

    ``adopt_examples``: the caller vouches that per-example files already in a folder without a
    record were written for this very config (a sharded sweep merges its shards' rows there);
    without it such a folder is refused, since nothing says whose results they are.
    """
    import os

    from harness.artifacts import cache_root

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError(
            "harness run evaluates in one process; under torchrun / accelerate launch every rank would "
            "write the same run folder. Launch `harness finetune FILE` that way, then `harness run FILE`"
        )
    config, suite_params = load_run_config(config_path, overrides)
    base_dir = Path.cwd()  # relative paths in a run file are relative to where harness runs
    run_dir = (out_dir or default_run_dir(config, base_dir)).resolve()
    digest = config_digest(config)
    previous = _previous_record(run_dir, digest, force)
    if previous is not None and previous.status == "complete":
        return RunResult(run_dir, previous, ExitCode.OK, reused=True)
    if force:
        _clear_results(run_dir)
    elif previous is None and _has_results(run_dir) and not adopt_examples:
        raise ConfigError(
            f"{run_dir}: holds per-example results but no record, so their model and data cannot be "
            "checked; choose another --out or pass --force to start over"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / CONFIG_FILE, yaml.safe_dump(config.model_dump(mode="json"), sort_keys=True, allow_unicode=True))
    progress_factory = progress_factory or (lambda label, total: lambda done, total_: None)
    started = previous.provenance.started_utc if previous is not None else utc_now()

    import torch

    if config.threads:
        torch.set_num_threads(config.threads)
    seed_everything(config.seed)
    with run_logger(run_dir) as logger:
        logger.info("run %s (config sha256 %s) into %s", config.name, digest, run_dir)
        bundle = load_bundle(config.dataset, base_dir=base_dir)
        eval_data = bundle.get(config.dataset.eval_split).sample(config.dataset.max_examples, config.dataset.split_seed)
        model = load_model(config, bundle, base_dir=base_dir, cache_root=cache_root(), retrain=retrain, logger=logger)
        n_truncated = _count_truncated(model, eval_data)
        if previous is not None:
            _check_same_identity(run_dir, previous, model, eval_data)
        # Written before any result: a resumed run can always check whose results it continues.
        atomic_write_text(
            run_dir / RECORD_FILE,
            dump_record(_record(config, digest, model, bundle, eval_data, n_truncated, list(previous.suites) if previous else [], "incomplete", started, None)),
        )
        seed_everything(config.seed)
        compute_predictions(model, eval_data, run_dir, progress_factory("predict", len(eval_data)))

        names = [s.name for s in config.suites]
        # Same config digest, so previous.suites[i] is config.suites[i]: reuse the finished ones.
        finished = list(previous.suites) if previous is not None else []
        suite_records: list[SuiteRecord] = []
        for i, (spec, params) in enumerate(zip(config.suites, suite_params, strict=True)):
            key = _suite_key(names, i)
            if i < len(finished) and finished[i].status == "ok":
                suite_records.append(finished[i])
                continue
            suite_cls: type[Suite] = registry.suites.get(spec.name)
            suite = suite_cls(params=params)
            seed_everything(config.seed)
            suite_records.append(
                _run_suite(suite, key, model, eval_data, bundle, run_dir, config.seed, logger, progress_factory(key, len(eval_data)))
            )
            record = _record(config, digest, model, bundle, eval_data, n_truncated, suite_records, "incomplete", started, None)
            atomic_write_text(run_dir / RECORD_FILE, dump_record(record))
        status = "complete" if all(s.status == "ok" for s in suite_records) else "failed"
        record = _record(config, digest, model, bundle, eval_data, n_truncated, suite_records, status, started, utc_now())
        atomic_write_text(run_dir / RECORD_FILE, dump_record(record))
        logger.info("run %s: %s", config.name, status)
    write_manifest(run_dir)
    return RunResult(run_dir, record, ExitCode.OK if status == "complete" else ExitCode.SUITE)


def _previous_record(run_dir: Path, digest: str, force: bool) -> RunRecord | None:
    if not (run_dir / RECORD_FILE).is_file():
        return None
    try:
        previous = load_record(run_dir)
    except HarnessError:
        if force:
            return None
        raise
    if previous.provenance.config_sha256 != digest and not force:
        raise ConfigError(
            f"{run_dir}: holds a run of a different config (sha256 {previous.provenance.config_sha256[:12]}…); "
            "choose another --out or pass --force to start over"
        )
    if force:
        return None
    return previous


RESULT_FILES = (RECORD_FILE, PREDICTIONS_FILE, "manifest.json")


def _has_results(run_dir: Path) -> bool:
    return (run_dir / PREDICTIONS_FILE).exists() or any((run_dir / EXAMPLES_DIR).glob("*.jsonl"))


def _clear_results(run_dir: Path) -> None:
    """--force: start over; earlier results must not leak into the new run through resume."""
    import shutil

    for name in RESULT_FILES:
        (run_dir / name).unlink(missing_ok=True)
    shutil.rmtree(run_dir / EXAMPLES_DIR, ignore_errors=True)


def _check_same_identity(run_dir: Path, previous: RunRecord, model: Any, data: Dataset) -> None:
    """Resume only results of the same model, data and harness version (cache keys carry identity)."""
    problems = []
    digest = model.info().digest
    if previous.model.digest != digest:
        problems.append(f"model digest {previous.model.digest[:12]}… there, {digest[:12]}… now")
    recorded = {s.name: s.sha256 for s in previous.dataset.splits}
    split_key = f"{data.split}@sample" if f"{data.split}@sample" in recorded else data.split
    if recorded.get(split_key) != data.digest():
        problems.append(f"evaluation data digest {str(recorded.get(split_key))[:12]}… there, {data.digest()[:12]}… now")
    if previous.provenance.harness_version != __version__:
        problems.append(f"harness {previous.provenance.harness_version} there, {__version__} now")
    if problems:
        raise ConfigError(
            f"{run_dir}: holds partial results of the same config but a different "
            f"{'; '.join(problems)}; pass --force to start over"
        )


def _count_truncated(model: Any, data: Dataset) -> int | None:
    tokenize = getattr(model, "tokenize", None)
    if tokenize is None:
        return None
    return int(sum(tokenize(data.texts)[1]))


def _run_suite(
    suite: Suite, key: str, model: Any, data: Dataset, bundle: DatasetBundle, run_dir: Path, seed: int,
    logger: logging.Logger, progress: Callable[[int, int], None],
) -> SuiteRecord:
    from harness.artifacts import cache_root

    rel = f"{EXAMPLES_DIR}/{key}.jsonl"
    log = ExampleLog(run_dir / rel).open()
    ctx = SuiteContext(
        seed=seed, run_dir=run_dir, examples=log, logger=logger,
        predictions=lambda: _shared_predictions(run_dir, data), bundle=bundle,
        cache_dir=cache_root() / "suites", progress=progress,
    )
    started = time.perf_counter()
    params = suite.params.model_dump(mode="json")
    logger.info("suite %s: start (%s)", key, params)
    try:
        outcome = suite.run(model, data, ctx)
    except HarnessError as exc:
        log.close()
        logger.error("suite %s failed: %s", key, exc.message)
        return SuiteRecord(name=suite.name, version=suite.version, params=params, status="error", error=exc.message, wall_time_s=time.perf_counter() - started, capabilities=type(suite).capabilities)
    except KeyboardInterrupt:
        log.close()
        raise
    except Exception as exc:  # a suite bug must not lose the other suites' results
        log.close()
        logger.exception("suite %s crashed", key)
        return SuiteRecord(name=suite.name, version=suite.version, params=params, status="error", error=f"{type(exc).__name__}: {exc}", wall_time_s=time.perf_counter() - started, capabilities=type(suite).capabilities)
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
    )


_PRED_CACHE: dict[Path, Predictions] = {}


def _shared_predictions(run_dir: Path, data: Dataset) -> Predictions:
    from harness.store import read_jsonl

    cached = _PRED_CACHE.get(run_dir)
    if cached is not None:
        return cached
    rows = {r["id"]: r for r in read_jsonl(run_dir / PREDICTIONS_FILE)}
    index = {n: k for k, n in enumerate(data.label_names)}
    ordered = [rows[i] for i in data.ids]
    ok = [r for r in ordered if r.get("error") is None]
    preds = Predictions(
        ids=tuple(r["id"] for r in ok),
        labels=tuple(index[r["label"]] for r in ok),
        probabilities=np.array([r["probabilities"] for r in ok], dtype=np.float64).reshape(len(ok), len(index)),
        errors={r["id"]: r["error"] for r in ordered if r.get("error") is not None},
    )
    _PRED_CACHE[run_dir] = preds
    return preds


def _record(
    config: RunConfig, digest: str, model: Any, bundle: DatasetBundle, eval_data: Dataset, n_truncated: int | None,
    suites: list[SuiteRecord], status: str, started: str, finished: str | None,
) -> RunRecord:
    import torch

    commit, dirty = git_state()
    info = model.info()
    device = model.device
    return RunRecord(
        run_id=f"{config.name}-{digest[:12]}",
        status=status,  # type: ignore[arg-type]
        config=config.model_dump(mode="json"),
        provenance=Provenance(
            harness_version=__version__, git_commit=commit, git_dirty=dirty, python=python_version(),
            packages=package_versions(), os=os_name(), cpu=cpu_name(), gpu=gpu_name(), device=device,
            torch_threads=torch.get_num_threads(), seed=config.seed, config_sha256=digest,
            started_utc=started, finished_utc=finished, deterministic=device == "cpu",
        ),
        model=info,
        dataset=DatasetInfo(
            name=bundle.name, source=bundle.source, eval_split=config.dataset.eval_split,
            label_names=list(bundle.label_names),
            splits=[SplitInfo(name=k, n=len(v), sha256=v.digest()) for k, v in bundle.splits.items()]
            + ([SplitInfo(name=f"{config.dataset.eval_split}@sample", n=len(eval_data), sha256=eval_data.digest())] if config.dataset.max_examples else []),
            group_columns=sorted(eval_data.groups), n_truncated=n_truncated,
        ),
        suites=list(suites),
    )
