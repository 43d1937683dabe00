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
from harness.frameworks import AuditConfig
from harness.records import StrictModel
from harness.registry import did_you_mean
from harness.report_config import ReportConfig

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


class AgreementConfig(StrictModel):
    """How a reduced-precision evaluation is checked against fp32 (harness/models/agreement.py)."""

    sample: PositiveInt = Field(default=512, description="Evaluation examples re-run in fp32 (seeded sample).")
    min_agreement: float = Field(
        default=0.995, ge=0.0, le=1.0, description="Argmax agreement with fp32 below which the run warns."
    )
    strict: bool = Field(default=False, description="Below min_agreement: an error instead of a warning.")
    # Unused since the accuracy-difference interval became Tango's (exact counts, no resampling);
    # kept so run files that set it still load and every config digest stays what it was.
    n_bootstrap: int = Field(
        default=1000, ge=100, description="Not used (the interval is Tango's score interval); kept for old run files."
    )


class ModelConfig(ModelSource):
    """The evaluated model and how to run inference. Without source it is the fine-tuned checkpoint."""

    max_length: PositiveInt = Field(default=128, description="Truncation length in tokens.")
    batch_size: PositiveInt = Field(default=32, description="Inference batch size.")
    precision: Literal["auto", "fp32", "bf16", "fp16", "int8"] = Field(
        default="auto",
        description="Evaluation forwards: auto = fp32 (the reference); bf16 / fp16 autocast (CPU "
        "and CUDA); int8 = dynamic int8 nn.Linear (CPU). Reduced precision runs the fp32 agreement "
        "probe (model.agreement). See harness/models/precision.py.",
    )
    agreement: AgreementConfig = Field(
        default_factory=lambda: AgreementConfig(), exclude_if=lambda v: v == AgreementConfig(),
        description="The fp32 agreement probe of a reduced-precision evaluation.",
    )
    # Left out of the dump at their defaults, so configs without them keep their digests.
    kind: str = Field(
        default="hf-classifier", exclude_if=lambda v: v == "hf-classifier",
        description="Model kind (harness.registry.model_kinds): 'hf-classifier' (a sequence "
        "classifier), 'zero-shot-embedding', 'zero-shot-nli', 'masked-lm', 'causal-lm', 'setfit'.",
    )
    params: dict[str, Any] = Field(
        default_factory=dict, exclude_if=lambda v: not v,
        description="The kind's parameters (prompt, verbalizer, label descriptions ...).",
    )


class ColumnsConfig(StrictModel):
    id: str | None = Field(default=None, description="Id column; row numbers when absent.")
    text: str = "text"
    label: str = "label"
    groups: list[str] = Field(default_factory=list, description="Sensitive / group columns.")


EVAL_SET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
DataFormat = Literal["auto", "csv", "jsonl", "parquet", "arrow", "disk"]


class DataSourceConfig(StrictModel):
    """Where rows come from: exactly one of a catalog name, local file(s) or a Hub dataset."""

    name: str | None = Field(default=None, description="Catalog dataset, e.g. 'rotten-tomatoes'.")
    path: str | None = Field(
        default=None,
        description="One local file (CSV, JSONL, Parquet, Arrow) or a datasets save_to_disk folder.",
    )
    files: dict[str, str] | None = Field(default=None, description="Local file per split.")
    hub: str | None = Field(default=None, description="Hugging Face Hub dataset ORG/NAME (only when online).")
    config: str | None = Field(default=None, description="Hub dataset configuration (subset) name.")
    revision: str | None = Field(
        default=None, description="Hub revision to pin (branch, tag or commit); the commit is recorded."
    )
    format: DataFormat = Field(default="auto", description="auto: from the suffix; a folder is 'disk'.")
    label_map: dict[str, str] | None = Field(
        default=None,
        description="Dataset label values -> the model's label names (as HF evaluator's "
        "label_mapping); every value must be mapped. Kept in the record.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> DataSourceConfig:
        chosen = [k for k in ("name", "path", "files", "hub") if getattr(self, k) is not None]
        if len(chosen) != 1:
            raise ValueError(f"give exactly one of name, path, files or hub (got {', '.join(chosen) or 'none'})")
        if self.hub is None and (self.config is not None or self.revision is not None):
            raise ValueError("'config' and 'revision' belong to a hub dataset (set 'hub')")
        if self.label_map is not None and not self.label_map:
            raise ValueError("'label_map' is empty; remove it or map every label value")
        return self


class EvalSetConfig(DataSourceConfig):
    """One more evaluation set (out-of-domain, out-of-time): a source and which of its splits."""

    split: str | None = Field(
        default=None,
        description="Split of the source to evaluate; default: the main eval_split when the "
        "source has it, else its only split (a single file is one split).",
    )
    columns: ColumnsConfig | None = Field(default=None, description="Default: the main dataset's.")
    max_examples: PositiveInt | None = Field(default=None, description="Evaluate a deterministic sample.")


class DatasetConfig(DataSourceConfig):
    """A catalog dataset (``name``), local file(s) or a Hub dataset, with column mapping."""

    columns: ColumnsConfig = Field(default_factory=ColumnsConfig)
    labels: list[str] | None = Field(default=None, description="Declared label set, in index order.")
    split_fractions: dict[str, PositiveFloat] = Field(
        default_factory=lambda: {"train": 0.8, "dev": 0.1, "test": 0.1}
    )
    split_by: str | None = Field(default=None, description="Column whose values never straddle two splits.")
    split_seed: int = 0
    eval_split: str = Field(default="test", description="The split the suites evaluate.")
    max_examples: PositiveInt | None = Field(default=None, description="Evaluate a deterministic sample.")
    extra_eval: dict[str, EvalSetConfig] = Field(
        default_factory=dict,
        description="More evaluation sets by name, each with its own predictions, metrics and "
        "gap to the main split (label set: the main dataset's).",
    )

    @model_validator(mode="after")
    def _labels_and_sets(self) -> DatasetConfig:
        bad = [k for k in self.extra_eval if not EVAL_SET_NAME.match(k)]
        if bad:
            raise ValueError(f"extra_eval: name {bad[0]!r} must be letters, digits, '_' or '-'")
        if self.labels is not None:
            for where, mapping in [("label_map", self.label_map)] + [
                (f"extra_eval.{k}.label_map", v.label_map) for k, v in self.extra_eval.items()
            ]:
                unknown = sorted({v for v in (mapping or {}).values()} - set(self.labels))
                if unknown:
                    raise ValueError(f"{where}: {unknown[0]!r} is not in dataset.labels {self.labels}")
        return self


class LoraConfig(StrictModel):
    r: PositiveInt = 8
    alpha: PositiveInt = 16
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: ["query", "value"])
    merge: bool = Field(default=True, description="Merge the adapter into the weights when saving.")


ADVERSARIAL_ATTACK_KEYS = ("recipe", "warmup_epochs", "ratio", "query_budget", "time_budget_s", "workers")
ADVERSARIAL_EMBEDDING_KEYS = ("epsilon", "alpha", "steps", "adv_weight")


class AdversarialConfig(StrictModel):
    """Adversarial fine-tuning (``finetune.adversarial``): attack-based augmentation, or
    embedding-space perturbations (FGM, PGD, FreeLB). See harness/models/finetune/adversarial.py."""

    method: Literal["attack", "fgm", "pgd", "freelb"] = Field(
        description="attack: add successful adversarial examples of a recipe each epoch after a clean "
        "warm-up; fgm / pgd / freelb: perturb the input embeddings in the loss's ascent direction."
    )
    recipe: str = Field(default="deepwordbug", description="attack: the attack recipe (robustness suite names).")
    warmup_epochs: int = Field(default=1, ge=0, description="attack: clean epochs before the first attack.")
    ratio: float = Field(default=0.1, gt=0.0, le=1.0, description="attack: share of the training set attacked per epoch.")
    query_budget: PositiveInt = Field(default=200, description="attack: model queries per attacked example.")
    time_budget_s: PositiveFloat | None = Field(default=10.0, description="attack: seconds per attacked example.")
    workers: PositiveInt = Field(default=1, description="attack: worker processes for the attacks.")
    epsilon: PositiveFloat = Field(default=1.0, description="fgm/pgd/freelb: L2 radius of the perturbation per example.")
    alpha: PositiveFloat = Field(default=0.3, description="pgd/freelb: ascent step size.")
    steps: PositiveInt = Field(default=3, description="pgd/freelb: ascent steps per batch.")
    adv_weight: float = Field(default=1.0, ge=0.0, description="fgm/pgd: weight of the adversarial loss beside the clean loss.")

    @model_validator(mode="after")
    def _keys_of_the_method(self) -> AdversarialConfig:
        wrong = ADVERSARIAL_EMBEDDING_KEYS if self.method == "attack" else ADVERSARIAL_ATTACK_KEYS
        if self.method == "fgm":
            wrong = (*wrong, "alpha", "steps")
        if self.method == "freelb":
            wrong = (*wrong, "adv_weight")  # FreeLB averages its ascent steps' losses
        given = [k for k in wrong if k in self.model_fields_set]
        if given:
            raise ValueError(f"{', '.join(given)}: not a parameter of method {self.method!r}")
        return self


class FinetuneConfig(StrictModel):
    """The fine-tuning stage; its checkpoint becomes the evaluated model."""

    base: ModelSource
    method: str = Field(
        default="full",
        description="full, head, lora, adalora, ia3, prompt_tuning, prefix_tuning or setfit "
        "(harness.registry.finetune_methods).",
    )
    lora: LoraConfig = Field(default_factory=LoraConfig)
    # Left out of the dump when unset, so the cache keys of earlier fine-tunes do not change.
    params: dict[str, Any] = Field(
        default_factory=dict, exclude_if=lambda v: not v,
        description="The method's parameters (all methods but lora, whose are in 'lora').",
    )
    shots: PositiveInt | None = Field(
        default=None, exclude_if=lambda v: v is None,
        description="Few-shot: train on K examples per class, drawn with the seed (ids recorded).",
    )
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
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        default="auto", exclude_if=lambda v: v == "auto",
        description="auto: bf16 autocast where the device has native bf16 (CUDA bf16, AVX512-BF16 / "
        "AMX CPUs), fp32 elsewhere; fp16 (CUDA only) trains with a loss scaler. The resolved "
        "precision is part of the cache key (fp32 keeps the old keys) and of the model card.",
    )
    # Left out of the dump when unset, so the cache keys of earlier fine-tunes do not change.
    adversarial: AdversarialConfig | None = Field(
        default=None, exclude_if=lambda v: v is None, description="Adversarial fine-tuning (attack or embedding-space)."
    )

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
    # Left out of the dump when unset, so configs without it keep their digests.
    audit: AuditConfig | None = Field(
        default=None, exclude_if=lambda v: v is None,
        description="Frameworks the report maps the run's evidence onto (harness.frameworks).",
    )
    report: ReportConfig | None = Field(
        default=None, exclude_if=lambda v: v is None,
        description="How the audit report judges findings (harness.report_config).",
    )

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
    try:
        value = yaml.safe_load(match["value"]) if match["value"] else ""
    except yaml.YAMLError as err:  # e.g. a tab or a control character: not valid YAML
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"--set {override!r}: the value is not valid YAML ({problem})") from err
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
    if config is not None:
        from harness.config_plugins import plugin_param_messages

        messages.extend(plugin_param_messages(config))
    if messages or config is None:
        listing = "\n".join(f"  - {m}" for m in messages)
        raise ConfigError(f"{source}: {len(messages)} problem(s) in the run file:\n{listing}")
    return config, suite_params


def load_run_config(path: Path, overrides: list[str] | None = None) -> tuple[RunConfig, list[Any]]:
    raw = read_yaml(path)
    for override in overrides or []:
        apply_override(raw, override)
    return parse_run_config(raw, source=str(path))
