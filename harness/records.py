"""The run record: one versioned, documented schema for every consumer.

A record is frozen plain data. Numbers are numbers, NaN and infinities become ``null``, and every
metric says whether higher is better. ``schema/record.schema.json`` is generated from these
classes (``harness schema`` / ``nox -s golden``); a test fails when the committed file is stale.
Consumers (gate, report, leaderboard) read records only through ``load_record``, which
validates them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from harness.errors import RecordError

if TYPE_CHECKING:
    from harness.stats import Interval

# 1.1 adds model.forward and model.forward_probe_max_abs_diff; 1.2 adds suites[].capabilities
SCHEMA_VERSION = "1.2"
SUPPORTED_SCHEMA_VERSIONS = frozenset({"1.0", "1.1", SCHEMA_VERSION})

RECORD_FILE = "record.json"
MANIFEST_FILE = "manifest.json"
ATTESTATIONS_FILE = "attestations.jsonl"  # sign-off lines, appended after the manifest
PREDICTIONS_FILE = "predictions.jsonl"


def finite_or_none(value: float | None) -> float | None:
    """NaN and infinities are not numbers a reader can use: they become null."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None, recursively through dicts and
    lists (per-example rows must be strict JSON)."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    if isinstance(value, float):
        return finite_or_none(value)
    return value


class StrictModel(BaseModel):
    """The one strict pydantic base: unknown keys are refused and instances are frozen.

    Records, run configs (``harness.config``), sweep specs and suite parameters all derive from
    it, so "strict" means the same everywhere. It lives here, the lowest module that uses
    pydantic, so that consumers reading records import nothing of the config machinery.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")


class Metric(StrictModel):
    """One named figure of a suite."""

    name: str = Field(description="Dotted metric name, e.g. 'accuracy' or 'f1.positive'.")
    value: float | None = Field(description="The point estimate; null when undefined.")
    higher_is_better: bool | None = Field(
        description="Direction for ranking and gating; null for figures that are not scores."
    )
    ci_low: float | None = Field(default=None, description="Lower end of the 95% interval.")
    ci_high: float | None = Field(default=None, description="Upper end of the 95% interval.")
    ci_method: str | None = Field(default=None, description="How the interval was computed.")
    n: int | None = Field(default=None, description="Number of examples behind the value.")
    unit: str | None = Field(default=None, description="Unit, e.g. 's', 'examples/s', 'bytes'.")
    description: str | None = Field(default=None, description="What the figure means.")

    @field_validator("value", "ci_low", "ci_high", mode="before")
    @classmethod
    def _nan_to_none(cls, value: Any) -> Any:
        return finite_or_none(value) if isinstance(value, (int, float)) else value

    @classmethod
    def with_interval(
        cls,
        *,
        name: str,
        value: float | None,
        interval: Interval,
        higher_is_better: bool | None,
        n: int | None = None,
        unit: str | None = None,
        description: str | None = None,
    ) -> Metric:
        """A metric whose interval (bounds and method) comes from one ``harness.stats`` result."""
        return cls(
            name=name,
            value=value,
            higher_is_better=higher_is_better,
            ci_low=interval.low,
            ci_high=interval.high,
            ci_method=interval.method,
            n=n,
            unit=unit,
            description=description,
        )


def proportion_metric(name: str, k: int, n: int, *, higher: bool | None, description: str) -> Metric:
    """A share k/n with its Wilson 95% interval (null when n is 0)."""
    from harness.stats import wilson_interval

    ci = wilson_interval(k, n)
    return Metric(
        name=name, value=k / n if n else None, higher_is_better=higher, ci_low=ci.low, ci_high=ci.high,
        ci_method="wilson" if n else None, n=n, description=description,
    )



class Resource(StrictModel):
    """An external resource a suite used (lexicon, embedding, encoder), with its provenance."""

    name: str = Field(description="Catalog name or description of the resource.")
    source: str = Field(description="Where it came from (package==version:path, local path, hub).")
    sha256: str | None = Field(default=None, description="Digest of the content used.")
    license: str | None = Field(default=None, description="License of the resource, when known.")
    note: str | None = Field(default=None, description="How it departs from the original, if at all.")


class ChartSpec(StrictModel):
    """One chart the audit report draws for a suite, as plain data."""

    kind: str = Field(
        description="'metric_bars' (the named metrics with their intervals), 'outcome_counts' "
        "(per-example outcome counts per group), or the name of a chart the report knows for a "
        "built-in suite ('accuracy', 'robustness', 'invariance', 'bias', 'latency', 'explain')."
    )
    title: str | None = Field(default=None, description="Heading of the chart.")
    metrics: list[str] = Field(default_factory=list, description="Metric names (metric_bars).")
    group: str | None = Field(default=None, description="Per-example column to group by.")
    outcome: str | None = Field(default=None, description="Per-example column to count.")


class SuiteCapabilities(StrictModel):
    """What a suite declares about itself (its tags), copied into the record so that sweeps,
    the gate, the report and the leaderboard read them instead of keeping lists of suites."""

    shardable: bool = Field(
        default=False,
        description="Its per-example rows come from a seeded sample and merge across shards.",
    )
    shard_param: str | None = Field(
        default=None, description="The parameter holding how many examples the suite samples."
    )
    measures_machine: bool = Field(
        default=False,
        description="Its figures measure the machine (timings), not the model: expected to "
        "differ between otherwise identical runs.",
    )
    timing_dependent: bool = Field(
        default=False,
        description="Some outcomes depend on the machine's speed (time budgets), so two runs "
        "may differ there.",
    )
    headline: str | None = Field(
        default=None,
        description="The metric a reader looks for first (a metric name or its last component).",
    )
    prediction_metrics: bool = Field(
        default=False,
        description="Its metrics are classification metrics of predictions.jsonl, which the "
        "gate and verify recompute from the shared predictions.",
    )
    outcome_kinds: list[Literal["binary", "continuous", "samples"]] = Field(
        default_factory=list,
        description="Kinds of per-example values it declares in details.per_example for the gate.",
    )
    charts: list[ChartSpec] = Field(default_factory=list, description="Charts for the report.")

    def headline_metric(self, names: Sequence[str]) -> str | None:
        """The first of ``names`` that is the headline: the metric itself or a metric whose last
        components are it (``attack_success_rate`` names ``pwws.attack_success_rate``)."""
        hint = self.headline
        if hint is None:
            return None
        return next((n for n in names if n == hint or n.endswith("." + hint)), None)


# Records written before schema 1.2 carry no capabilities: these are the built-in suites' tags
# as they were then, used only to read such records (new records carry their own).
LEGACY_CAPABILITIES: dict[str, SuiteCapabilities] = {
    "accuracy": SuiteCapabilities(
        headline="accuracy", prediction_metrics=True, charts=[ChartSpec(kind="accuracy")]
    ),
    "robustness": SuiteCapabilities(
        shardable=True, shard_param="n_examples", timing_dependent=True,
        headline="attack_success_rate", outcome_kinds=["binary"],
        charts=[ChartSpec(kind="robustness")],
    ),
    "invariance": SuiteCapabilities(
        shardable=True, shard_param="n_examples", headline="flip_rate",
        outcome_kinds=["binary", "continuous"], charts=[ChartSpec(kind="invariance")],
    ),
    "bias": SuiteCapabilities(
        headline="demographic_parity_difference", charts=[ChartSpec(kind="bias")]
    ),
    "latency": SuiteCapabilities(
        measures_machine=True, timing_dependent=True, headline="p50_ms", outcome_kinds=["samples"],
        charts=[ChartSpec(kind="latency")],
    ),
    "explain": SuiteCapabilities(headline="comprehensiveness", charts=[ChartSpec(kind="explain")]),
}


class SuiteRecord(StrictModel):
    """The outcome of one suite."""

    name: str = Field(description="Registered suite name.")
    version: str = Field(description="Suite implementation version; results of different versions are not compared.")
    params: dict[str, Any] = Field(description="All parameters, defaults filled in, so the suite can be replayed.")
    status: Literal["ok", "error", "skipped"] = Field(description="'ok' when the suite finished.")
    error: str | None = Field(default=None, description="The error message when status is 'error'.")
    metrics: list[Metric] = Field(default_factory=list, description="Headline and detail figures.")
    wall_time_s: float = Field(description="Wall-clock seconds spent in the suite.")
    examples_file: str | None = Field(default=None, description="Per-example JSONL, relative to the run folder.")
    n_examples: int = Field(default=0, description="Number of per-example rows written.")
    warnings: list[str] = Field(default_factory=list, description="Recorded warnings (e.g. small groups).")
    departures: list[str] = Field(default_factory=list, description="Where the method departs from its reference.")
    resources: list[Resource] = Field(default_factory=list, description="Resources used, with provenance.")
    details: dict[str, Any] = Field(default_factory=dict, description="Suite-specific structured results (tables, curves).")
    capabilities: SuiteCapabilities | None = Field(
        default=None,
        description="The suite's declared capabilities (schema 1.2+); null in older records.",
    )

    def metric(self, name: str) -> Metric | None:
        return next((m for m in self.metrics if m.name == name), None)

    @property
    def base_name(self) -> str:
        """The registered suite name (a repeated suite is recorded as NAME-INDEX)."""
        return re.sub(r"-\d+$", "", self.name)

    def caps(self) -> SuiteCapabilities:
        """The recorded capabilities, or for a record older than 1.2 the built-in suite's."""
        if self.capabilities is not None:
            return self.capabilities
        return LEGACY_CAPABILITIES.get(self.base_name, SuiteCapabilities())


class FileDigest(StrictModel):
    path: str = Field(description="Path relative to the folder that was digested.")
    sha256: str
    size: int


class TrainingInfo(StrictModel):
    """How the evaluated model was adapted to the task: the figures a paradigm comparison needs
    (from the fine-tune's model card; a kind that classifies without training has zeros)."""

    method: str = Field(description="Fine-tuning method ('full', 'lora', 'setfit' ...), or 'none'.")
    shots: int | None = Field(default=None, description="Few-shot: examples per class trained on.")
    n_train: int = Field(default=0, description="Training examples used.")
    trainable_parameters: int = Field(description="Parameters the method trained.")
    total_parameters: int | None = Field(default=None, description="Parameters of the trained model.")
    train_wall_time_s: float = Field(description="Wall-clock seconds of training (0: none).")
    examples_per_s: float | None = Field(default=None, description="Training throughput.")


class ModelInfo(StrictModel):
    """Identity of the evaluated model."""

    name: str = Field(description="Human name (catalog name, folder name or hub id).")
    source: str = Field(description="'artifact', 'path', 'hub' or 'finetune'.")
    location: str = Field(description="Resolved folder or hub id.")
    digest: str = Field(description="sha256 over the model's weight, config and tokenizer files.")
    files: list[FileDigest] = Field(default_factory=list)
    tokenizer_digest: str | None = None
    n_parameters: int | None = None
    label_names: list[str] = Field(default_factory=list)
    max_length: int = Field(description="Truncation length used for inference.")
    dtype: str = Field(default="float32")
    model_card: dict[str, Any] | None = Field(default=None, description="Fine-tuning model card, when fine-tuned.")
    forward: str | None = Field(
        default=None,
        description="How logits were computed: 'full' (the model's own forward) or "
        "'cls-only-last-layer' (the last encoder layer for the [CLS] position only, used after a "
        "probe batch agreed with the full forward).",
    )
    forward_probe_max_abs_diff: float | None = Field(
        default=None,
        description="Largest |logit difference| between the two forwards on the probe batch.",
    )
    # Left out at their defaults, so records of sequence classifiers keep their bytes.
    kind: str = Field(
        default="hf-classifier", exclude_if=lambda v: v == "hf-classifier",
        description="Model kind (harness.registry.model_kinds) that loaded and scored the model.",
    )
    kind_details: dict[str, Any] | None = Field(
        default=None, exclude_if=lambda v: v is None,
        description="What the kind resolved (prompt, verbalizer token ids, label descriptions, "
        "temperature, demonstration ids, calibration), so a score can be reproduced.",
    )
    training: TrainingInfo | None = Field(
        default=None, exclude_if=lambda v: v is None,
        description="Method, trainable parameters and training time (null: not known).",
    )
    precision: dict[str, Any] | None = Field(
        default=None, exclude_if=lambda v: v is None,
        description="The precision the forwards ran in: requested, resolved, the reason in words, "
        "the hardware capability it was based on, and (reduced precision) the fp32 agreement "
        "probe (harness.models.agreement).",
    )


class SplitInfo(StrictModel):
    name: str
    n: int
    sha256: str = Field(description="Digest of the split's ids, texts and labels.")


class EvalSetInfo(StrictModel):
    """Identity of one extra evaluation set (``dataset.extra_eval``)."""

    name: str = Field(description="The set's name in the run file.")
    source: str = Field(description="Where it came from (file, folder or hub:ORG/NAME@commit).")
    split: str = Field(description="The split of the source that was evaluated.")
    n: int
    sha256: str = Field(description="Digest of the evaluated examples' ids, texts and labels.")
    revision: str | None = Field(default=None, description="Hub commit, for a Hub dataset.")
    predictions_file: str = Field(description="Its predictions, relative to the run folder.")


class DatasetInfo(StrictModel):
    """Identity of the evaluation data."""

    name: str
    source: str
    eval_split: str
    label_names: list[str]
    splits: list[SplitInfo]
    group_columns: list[str] = Field(default_factory=list)
    n_truncated: int | None = Field(default=None, description="Evaluation examples longer than max_length.")
    revision: str | None = Field(default=None, description="Hub commit the dataset was loaded at.")
    label_map: dict[str, str] | None = Field(
        default=None, description="Dataset label values -> the label names used (dataset.label_map)."
    )
    extra_eval: list[EvalSetInfo] = Field(
        default_factory=list, description="Extra evaluation sets, each with its own predictions."
    )

    def split(self, name: str) -> SplitInfo | None:
        return next((s for s in self.splits if s.name == name), None)


class Provenance(StrictModel):
    """Where, when and with what a run was made."""

    harness_version: str
    git_commit: str | None
    git_dirty: bool | None
    python: str
    packages: dict[str, str]
    os: str
    cpu: str
    gpu: str | None
    device: str
    torch_threads: int | None
    seed: int
    config_sha256: str
    started_utc: str
    finished_utc: str | None
    deterministic: bool = Field(description="True when the run used deterministic algorithms (CPU).")


class SweepJob(StrictModel):
    """The sweep a run was one job of (``harness sweep``): which sweep, which cell of its matrix,
    and where its folder is, so the run's report can link back to the sweep report."""

    name: str = Field(description="The sweep's name (its sweep file's 'name').")
    spec_sha256: str = Field(description="The sweep's id: digest of its spec and base run file.")
    job_id: str = Field(description="The job's id: its run folder's name in the sweep folder.")
    job: str = Field(description="The job's readable name (its matrix entries' labels).")
    index: int = Field(ge=1, description="The job's position in the sweep, 1-based.")
    n_jobs: int = Field(ge=1, description="Jobs in the sweep when this one ran.")
    labels: dict[str, str] = Field(default_factory=dict, description="Matrix axis -> entry label.")
    method: str = Field(description="Fine-tuning method, or the model kind without a fine-tune.")
    shots: int | None = Field(description="Examples per class trained on; null: all (0: none).")
    seed: int = Field(description="The run's seed.")
    sweep_dir: str = Field(description="The sweep folder, relative to the run folder ('..').")


class RunRecord(StrictModel):
    """One run: config, provenance, model, data and every suite's outcome."""

    schema_version: str = Field(default=SCHEMA_VERSION)
    run_id: str
    status: Literal["complete", "incomplete", "failed"]
    config: dict[str, Any] = Field(description="The exact, validated run configuration.")
    provenance: Provenance
    model: ModelInfo
    dataset: DatasetInfo
    suites: list[SuiteRecord]
    sweep: SweepJob | None = Field(
        default=None,
        exclude_if=lambda v: v is None,
        description="The sweep this run was a job of (null: a run of its own).",
    )

    def suite(self, name: str) -> SuiteRecord | None:
        return next((s for s in self.suites if s.name == name), None)


def record_json_schema() -> dict[str, Any]:
    schema = RunRecord.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"harness-record-{SCHEMA_VERSION}"
    return schema


def schema_path() -> Path:
    return Path(__file__).parent / "schema" / "record.schema.json"


def canonical_json(data: Any) -> str:
    """Stable JSON: sorted keys, no NaN, newline-terminated."""
    return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def dump_record(record: RunRecord) -> str:
    return canonical_json(record.model_dump(mode="json"))


def parse_record(text: str, *, source: str) -> RunRecord:
    """Parse and validate a record, refusing unknown schema versions with a clear message."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordError(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(raw, dict):
        raise RecordError(f"{source}: a record must be a JSON object")
    version = raw.get("schema_version")
    if not isinstance(version, str) or version not in SUPPORTED_SCHEMA_VERSIONS:
        raise RecordError(
            f"{source}: unsupported schema_version {version!r} "
            f"(this harness reads {', '.join(sorted(SUPPORTED_SCHEMA_VERSIONS))})"
        )
    try:
        return RunRecord.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise RecordError(f"{source}: invalid record at {where}: {first['msg']}") from None


def load_record(path: Path) -> RunRecord:
    """Load a record from a run folder or a record.json path."""
    file = path / RECORD_FILE if path.is_dir() else path
    if not file.is_file():
        raise RecordError(f"{path}: no {RECORD_FILE} found")
    return parse_record(file.read_text(encoding="utf-8"), source=str(file))
