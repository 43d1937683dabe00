"""Typed, validated run configuration.

A run file is YAML. ``load_run_config`` reports every problem at once, each with its path
(``suites[2].params.n_examples``), refuses unknown keys with a "did you mean", and applies
``--set key.path=value`` overrides before validation.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    Field,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    model_validator,
)

from harness.errors import ConfigError
from harness.records import StrictModel
from harness.registry import did_you_mean

Device = Literal["auto", "cpu", "cuda", "mps"]


class ModelSource(StrictModel):
    """Where model weights come from: exactly one of artifact, path or hub."""

    artifact: str | None = Field(default=None, description="Catalog model artifact, e.g. 'minilm-l6'.")
    path: str | None = Field(default=None, description="Local folder with config, weights and tokenizer.")
    hub: str | None = Field(default=None, description="Hugging Face Hub id (only when online).")
    revision: str | None = Field(default=None, description="Hub revision (commit) to pin.")
    allow_pickle: bool = Field(default=False, description="Allow pickle-based weights (.bin/.pt/.pkl).")
    trust_remote_code: bool = Field(default=False, description="Allow custom model code; needs a pinned revision.")

    def chosen(self) -> list[str]:
        return [k for k in ("artifact", "path", "hub") if getattr(self, k) is not None]

    @model_validator(mode="after")
    def _remote_code_needs_revision(self) -> ModelSource:
        if self.trust_remote_code and self.hub is not None and not self.revision:
            raise ValueError("trust_remote_code needs 'revision' pinned to a commit")
        return self


class ModelConfig(ModelSource):
    """The evaluated model and how to run inference. Without source it is the fine-tuned checkpoint."""

    max_length: PositiveInt = Field(default=128, description="Truncation length in tokens.")
    batch_size: PositiveInt = Field(default=32, description="Inference batch size.")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        default="auto", description="auto: bf16 autocast on CUDA, fp32 elsewhere."
    )


class ColumnsConfig(StrictModel):
    id: str | None = Field(default=None, description="Id column; row numbers when absent.")
    text: str = "text"
    label: str = "label"
    groups: list[str] = Field(default_factory=list, description="Sensitive / group columns.")


class DatasetConfig(StrictModel):
    """A catalog dataset (``name``) or local file(s) with column mapping."""

    name: str | None = Field(default=None, description="Catalog dataset, e.g. 'rotten-tomatoes'.")
    path: str | None = Field(default=None, description="One local file, split by split_fractions.")
    files: dict[str, str] | None = Field(default=None, description="Local file per split.")
    format: Literal["auto", "csv", "jsonl", "parquet"] = "auto"
    columns: ColumnsConfig = Field(default_factory=ColumnsConfig)
    labels: list[str] | None = Field(default=None, description="Declared label set, in index order.")
    split_fractions: dict[str, PositiveFloat] = Field(
        default_factory=lambda: {"train": 0.8, "dev": 0.1, "test": 0.1}
    )
    split_by: str | None = Field(default=None, description="Column whose values never straddle two splits.")
    split_seed: int = 0
    eval_split: str = Field(default="test", description="The split the suites evaluate.")
    max_examples: PositiveInt | None = Field(default=None, description="Evaluate a deterministic sample.")

    @model_validator(mode="after")
    def _one_source(self) -> DatasetConfig:
        chosen = [k for k in ("name", "path", "files") if getattr(self, k) is not None]
        if len(chosen) != 1:
            raise ValueError(f"give exactly one of name, path or files (got {', '.join(chosen) or 'none'})")
        return self


class LoraConfig(StrictModel):
    r: PositiveInt = 8
    alpha: PositiveInt = 16
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: ["query", "value"])
    merge: bool = Field(default=True, description="Merge the adapter into the weights when saving.")


class FinetuneConfig(StrictModel):
    """The fine-tuning stage; its checkpoint becomes the evaluated model."""

    base: ModelSource
    method: Literal["full", "lora", "head"] = "full"
    lora: LoraConfig = Field(default_factory=LoraConfig)
    train_split: str = "train"
    dev_split: str | None = "dev"
    max_train_examples: PositiveInt | None = None
    learning_rate: float = 1e-4
    weight_decay: float = Field(default=0.01, ge=0.0)
    warmup_ratio: float = Field(default=0.06, ge=0.0, lt=1.0)
    epochs: PositiveFloat = 1.0
    max_steps: PositiveInt | None = None
    batch_size: PositiveInt = 16
    gradient_accumulation: PositiveInt = 1
    max_length: PositiveInt = 128
    seed: int | None = Field(default=None, description="Defaults to the run seed.")
    early_stopping_patience: PositiveInt | None = None
    metric_for_best: Literal["accuracy", "f1_macro", "loss"] = "accuracy"
    group_by_length: bool = True
    eval_steps: PositiveInt | None = Field(default=None, description="Evaluate on dev every N steps (else each epoch).")
    save_steps: PositiveInt = Field(default=200, description="Checkpoint interval, for resume.")

    @model_validator(mode="after")
    def _lr_positive(self) -> FinetuneConfig:
        if not self.learning_rate > 0:
            raise ValueError(f"'learning_rate' must be > 0 (got {self.learning_rate})")
        return self


class SuiteSpec(StrictModel):
    """A suite named with its parameters (plain data, copied into the record)."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class RunConfig(StrictModel):
    name: str = Field(default="run", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    description: str | None = None
    seed: int = 0
    device: Device = "auto"
    threads: PositiveInt | None = Field(default=None, description="torch CPU threads; all cores when unset.")
    output_dir: str = "reports"
    dataset: DatasetConfig
    model: ModelConfig = Field(default_factory=ModelConfig)
    finetune: FinetuneConfig | None = None
    suites: list[SuiteSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _model_source(self) -> RunConfig:
        chosen = self.model.chosen()
        if self.finetune is None and len(chosen) != 1:
            raise ValueError("model: give exactly one of artifact, path or hub (or a finetune stage)")
        if self.finetune is not None and chosen:
            raise ValueError("model: with a finetune stage the model is its checkpoint; remove model." + chosen[0])
        return self


# ------------------------------------------------------------------ loading


def format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _fields_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """Field names of the model class reached by following ``loc`` (for did-you-mean)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return []
        current = _model_type(fields[part].annotation)
    fields = getattr(current, "model_fields", None)
    return list(fields) if fields else []


def _model_type(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_type(arg)
        if found is not None:
            return found
    return None


def validation_messages(exc: ValidationError, model: type[BaseModel], prefix: tuple[int | str, ...] = ()) -> list[str]:
    messages = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        path = format_loc(prefix + loc)
        if err["type"] == "extra_forbidden":
            known = _fields_at(model, loc[:-1])
            hint = did_you_mean(str(loc[-1]), known)
            messages.append(f"{path}: unknown key{hint}; allowed: {', '.join(known)}")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            got = err.get("input")
            shown = "" if isinstance(got, (dict, list)) or got is None else f" (got {got!r})"
            messages.append(f"{path}: {msg}{shown}")
    return messages


_OVERRIDE = re.compile(r"^(?P<key>[A-Za-z_][\w.\[\]-]*)=(?P<value>.*)$", re.S)
_KEY_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def apply_override(raw: dict[str, Any], override: str) -> None:
    """Apply ``a.b[2].c=value``; the value is parsed as YAML (``3`` is an int, ``x`` a string)."""
    match = _OVERRIDE.match(override)
    if not match:
        raise ConfigError(f"--set {override!r}: expected KEY=VALUE, e.g. seed=3 or suites[0].params.n=50")
    parts: list[str | int] = [
        int(idx) if idx else name for name, idx in _KEY_PART.findall(match["key"])
    ]
    value = yaml.safe_load(match["value"]) if match["value"] else ""
    node: Any = raw
    for i, part in enumerate(parts[:-1]):
        nxt = parts[i + 1]
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                raise ConfigError(f"--set {override!r}: {format_loc(tuple(parts[: i + 1]))} does not exist")
            node = node[part]
        else:
            if not isinstance(node, dict):
                raise ConfigError(f"--set {override!r}: {format_loc(tuple(parts[:i]))} is not a mapping")
            node = node.setdefault(part, [] if isinstance(nxt, int) else {})
    last = parts[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last >= len(node):
            raise ConfigError(f"--set {override!r}: {format_loc(tuple(parts))} does not exist")
        node[last] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise ConfigError(f"--set {override!r}: {format_loc(tuple(parts[:-1]))} is not a mapping")


def load_yaml(path: Path, *, what: str) -> Any:
    """Parse a YAML file; a missing file, bad bytes or bad syntax name the file, line and column."""
    if not path.is_file():
        raise ConfigError(f"{path}: {what} not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid UTF-8 at byte {exc.start}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: invalid YAML{where}: {problem}") from None
    return raw


def read_yaml(path: Path) -> dict[str, Any]:
    raw = load_yaml(path, what="run file")
    if raw is None:
        raise ConfigError(f"{path}: the run file is empty")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the run file must be a mapping of keys (got {type(raw).__name__})")
    return raw


def parse_run_config(raw: dict[str, Any], *, source: str) -> tuple[RunConfig, list[Any]]:
    """Validate a raw mapping. Returns the config and each suite's validated params object."""
    from harness import registry

    messages: list[str] = []
    config: RunConfig | None = None
    try:
        config = RunConfig.model_validate(raw)
    except ValidationError as exc:
        messages.extend(validation_messages(exc, RunConfig))
    suite_params: list[Any] = []
    specs: list[Any] = raw["suites"] if isinstance(raw.get("suites"), list) else []
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            continue
        try:
            suite_cls = registry.suites.get(spec["name"])
        except ConfigError as exc:
            messages.append(f"suites[{i}].name: {exc.message}")
            continue
        params = spec.get("params") or {}
        if not isinstance(params, dict):
            messages.append(f"suites[{i}].params: must be a mapping")
            continue
        try:
            suite_params.append(suite_cls.Params.model_validate(params))
        except ValidationError as exc:
            messages.extend(validation_messages(exc, suite_cls.Params, ("suites", i, "params")))
        problem = getattr(suite_cls, "unavailable_reason", lambda: None)()
        if problem:
            messages.append(f"suites[{i}].name: suite {spec['name']!r} cannot run here: {problem}")
    if messages or config is None:
        listing = "\n".join(f"  - {m}" for m in messages)
        raise ConfigError(f"{source}: {len(messages)} problem(s) in the run file:\n{listing}")
    return config, suite_params


def load_run_config(path: Path, overrides: list[str] | None = None) -> tuple[RunConfig, list[Any]]:
    raw = read_yaml(path)
    for override in overrides or []:
        apply_override(raw, override)
    return parse_run_config(raw, source=str(path))
