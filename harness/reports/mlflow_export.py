"""``harness export mlflow RUN``: one run's record as an MLflow run.

What goes where (MLflow's own vocabulary):

- **params**: the run file as recorded (``record.config``), flattened to dotted keys
  (``dataset.name``, ``suites.0.params.n_examples``), plus each suite's parameters with
  defaults filled in (``suite.<suite>.<param>``);
- **metrics**: every defined figure as ``<suite>.<metric>``, with its interval as
  ``<suite>.<metric>.ci_low`` / ``.ci_high`` and its n as ``<suite>.<metric>.n``;
- **tags**: the digests (model, tokenizer, each data split, config, record), the harness
  version and commit, the run id and status;
- **artifacts**: ``record.json``, ``manifest.json`` and the audit report (HTML).

MLflow restricts keys (letters, digits, ``_ - . / :`` and spaces; at most 250 characters) and
parameter values (6000 characters). A key that breaks a rule is rewritten (characters replaced by
``_``; an over-long key shortened with a digest suffix) and the mapping is kept in the tag
``harness.renamed_keys``; an over-long value is cut and flagged in ``harness.truncated_params``,
so nothing is lost without saying so. Exporting the same record twice to the same experiment
finds the first export (tag ``harness.record_sha256``) instead of making a duplicate.

mlflow is imported only here, when the command runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, HarnessError
from harness.records import RunRecord, load_record

KEY_OK = re.compile(r"[^A-Za-z0-9_\-./: ]")
MAX_KEY = 250
MAX_VALUE = 6000
BATCH = 100  # MLflow's limit on params/tags per log_batch call (metrics: 1000)
DEFAULT_EXPERIMENT = "harness"
DB_NAME = "mlflow.db"
MSG_NO_MLFLOW = (
    "harness export mlflow needs the mlflow package: pip install 'mlflow>=3,<4' "
    "(it is in harness's [mlflow] and [dev] extras)"
)


MSG_REFUSED = "mlflow refused part of the export (run {run} at {uri}, marked FAILED): {problem}"


@dataclass(frozen=True)
class Exported:
    run_id: str
    experiment_id: str
    tracking_uri: str
    reused: bool  # the record had already been exported there


def mlflow_key(key: str, renamed: dict[str, str]) -> str:
    """``key`` made acceptable to MLflow; a changed key is noted in ``renamed``."""
    safe = KEY_OK.sub("_", key)
    if len(safe) > MAX_KEY:
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]
        safe = f"{safe[: MAX_KEY - 13]}-{digest}"
    if safe != key:
        renamed[safe] = key
    return safe


def flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Nested mappings and lists as (dotted key, leaf) pairs; an empty container is a leaf."""
    if isinstance(value, Mapping) and value:
        for k in sorted(value, key=str):
            yield from flatten(value[k], f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(value, list) and value:
        for i, item in enumerate(value):
            yield from flatten(item, f"{prefix}.{i}" if prefix else str(i))
    else:
        yield prefix, value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def params_of(record: RunRecord) -> dict[str, str]:
    params = {k: _text(v) for k, v in flatten(record.config, "config")}
    for suite in record.suites:
        for k, v in flatten(suite.params, f"suite.{suite.name}"):
            params[k] = _text(v)
    return params


def metrics_of(record: RunRecord) -> dict[str, float]:
    """Every defined figure, its interval bounds and its n."""
    out: dict[str, float] = {}
    for suite in record.suites:
        for m in suite.metrics:
            if m.value is None:
                continue
            key = f"{suite.name}.{m.name}"
            out[key] = float(m.value)
            # each bound on its own: some intervals are one-sided (a p99's has no lower end)
            if m.ci_low is not None:
                out[f"{key}.ci_low"] = float(m.ci_low)
            if m.ci_high is not None:
                out[f"{key}.ci_high"] = float(m.ci_high)
            if m.n is not None:
                out[f"{key}.n"] = float(m.n)
    return out


def tags_of(record: RunRecord, record_sha256: str) -> dict[str, str]:
    p = record.provenance
    tags = {
        "harness.run_id": record.run_id,
        "harness.status": record.status,
        "harness.schema_version": str(record.schema_version),
        "harness.version": p.harness_version,
        "harness.git_commit": p.git_commit or "",
        "harness.record_sha256": record_sha256,
        "harness.config_sha256": p.config_sha256,
        "harness.model.name": record.model.name,
        "harness.model.digest": record.model.digest,
        "harness.dataset.name": record.dataset.name,
        "harness.dataset.eval_split": record.dataset.eval_split,
        "mlflow.runName": record.run_id,
    }
    if record.model.tokenizer_digest:
        tags["harness.model.tokenizer_digest"] = record.model.tokenizer_digest
    for split in record.dataset.splits:
        tags[f"harness.dataset.split.{split.name}.sha256"] = split.sha256
    return tags


def default_tracking_uri(run_dir: Path) -> str:
    """A sqlite store beside the run folder (never the working directory)."""
    folder = run_dir.parent if run_dir.is_file() else run_dir
    return f"sqlite:///{(folder.parent / DB_NAME).resolve()}"


def _artifact_root(tracking_uri: str) -> str | None:
    """For a local sqlite store, artifacts beside the database (MLflow's default is ./mlruns
    in the working directory); other stores choose their own."""
    if tracking_uri.startswith("sqlite:///"):
        return (Path(tracking_uri[len("sqlite:///") :]).parent / "mlartifacts").resolve().as_uri()
    return None


def _record_file(run_dir: Path) -> Path:
    return run_dir if run_dir.is_file() else run_dir / "record.json"


def _checked_params(
    params: dict[str, str], renamed: dict[str, str]
) -> tuple[dict[str, str], list[str]]:
    out: dict[str, str] = {}
    truncated: list[str] = []
    for key, value in params.items():
        safe = mlflow_key(key, renamed)
        if len(value) > MAX_VALUE:
            value = value[: MAX_VALUE - 1] + "…"
            truncated.append(safe)
        out[safe] = value
    return out, truncated


def _log_all(client: Any, run_id: str, record: RunRecord, record_sha256: str) -> None:
    from mlflow.entities import Metric, Param, RunTag

    renamed: dict[str, str] = {}
    params, truncated = _checked_params(params_of(record), renamed)
    metrics = {mlflow_key(k, renamed): v for k, v in metrics_of(record).items()}
    tags = {
        mlflow_key(k, renamed): v[:MAX_VALUE] for k, v in tags_of(record, record_sha256).items()
    }
    if renamed:
        tags["harness.renamed_keys"] = json.dumps(renamed, sort_keys=True)[:MAX_VALUE]
    if truncated:
        tags["harness.truncated_params"] = json.dumps(sorted(truncated))[:MAX_VALUE]
    param_items = [Param(k, v) for k, v in sorted(params.items())]
    tag_items = [RunTag(k, v) for k, v in sorted(tags.items())]
    metric_items = [Metric(k, v, 0, 0) for k, v in sorted(metrics.items())]
    for i in range(0, max(len(param_items), len(tag_items), len(metric_items)), BATCH):
        client.log_batch(
            run_id,
            metrics=metric_items[i : i + BATCH],
            params=param_items[i : i + BATCH],
            tags=tag_items[i : i + BATCH],
        )


@contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """mlflow's INFO lines off for the block, its level restored after."""
    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _experiment_id(client: Any, name: str, tracking_uri: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return str(experiment.experiment_id)
    return str(client.create_experiment(name, artifact_location=_artifact_root(tracking_uri)))


def export_run(
    run_dir: Path, *, tracking_uri: str | None = None, experiment: str = DEFAULT_EXPERIMENT
) -> Exported:
    """Log one run folder's record as an MLflow run; returns where it went."""
    try:
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise HarnessError(MSG_NO_MLFLOW) from None
    record = load_record(run_dir)  # RecordError (exit 2) names the file when it is not a record
    record_file = _record_file(run_dir)
    record_sha256 = hashlib.sha256(record_file.read_bytes()).hexdigest()
    uri = tracking_uri or default_tracking_uri(run_dir)
    if not experiment.strip():
        raise ConfigError("--experiment: the experiment name must not be empty")
    with _quiet_mlflow():  # creating a sqlite store logs its schema migrations at INFO
        client = MlflowClient(tracking_uri=uri)
        experiment_id = _experiment_id(client, experiment, uri)
    found = client.search_runs(
        [experiment_id], filter_string=f"tags.`harness.record_sha256` = '{record_sha256}'"
    )
    if found:
        return Exported(found[0].info.run_id, experiment_id, uri, reused=True)
    run = client.create_run(experiment_id, run_name=record.run_id)
    run_id = run.info.run_id
    try:
        _log_all(client, run_id, record, record_sha256)
        _log_files(client, run_id, run_dir, record_file)
    except MlflowException as exc:
        client.set_terminated(run_id, status="FAILED")
        raise HarnessError(MSG_REFUSED.format(run=run_id, uri=uri, problem=exc.message)) from None
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")
    return Exported(run_id, experiment_id, uri, reused=False)


def _log_files(client: Any, run_id: str, run_dir: Path, record_file: Path) -> None:
    from harness.reports.audit import build_report

    client.log_artifact(run_id, str(record_file))
    manifest = record_file.parent / "manifest.json"
    if manifest.is_file():
        client.log_artifact(run_id, str(manifest))
    with tempfile.TemporaryDirectory(prefix="harness-mlflow-") as tmp:
        report = Path(tmp) / f"{load_record(run_dir).run_id}.report.html"
        report.write_text(build_report(run_dir), encoding="utf-8")
        client.log_artifact(run_id, str(report))
