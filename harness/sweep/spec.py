"""Sweeps: a base run file crossed with a matrix of override axes, expanded into jobs.

A sweep file names a base run file (a path, relative to the sweep file, or an inline mapping)
and a ``matrix``: named axes (``models``, ``datasets``, ``suites``, any name), each a list of
entries. An entry is a mapping of run-file keys to values (``model.path: models/a``), with two
reserved keys: ``label`` (a readable name for the entry) and ``grid`` (key -> list of values;
the entry expands into their Cartesian product). Jobs are the Cartesian product of the axes.

Every job is validated through the same code as ``harness run`` before anything starts; all
problems are reported at once, each naming the job and the key. A job's id is its readable name
plus a digest of its effective config, so re-running an unchanged sweep finds the same run
folders (finished ones are skipped, unfinished ones resume) and an edited entry gets a new one.
Nothing here imports torch or ray.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import (
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
)

from harness.config import (
    RunConfig,
    apply_override,
    parse_run_config,
    read_yaml,
    validation_messages,
)
from harness.errors import ConfigError
from harness.records import StrictModel
from harness.store import sha256_json

RESERVED = ("label", "grid")
DEFAULT_OUTPUT = "reports/sweeps"

MSG_PROBLEMS = "{where}: {n} problem(s) in the sweep:\n{listing}"
MSG_DUPLICATE = "jobs {a!r} and {b!r} have the same effective config; remove one of the entries"
MSG_NOT_SHARDABLE = "shards.{name}: suite {name!r} cannot be sharded (shardable: {known})"


class JobResources(StrictModel):
    """What one job reserves on a Ray cluster (the local executor reads num_cpus for threads)."""

    num_cpus: PositiveFloat = Field(default=1.0, description="CPU cores per job.")
    num_gpus: NonNegativeFloat = Field(
        default=0.0, description="GPUs per job (fractions share one)."
    )
    memory_gb: PositiveFloat | None = Field(default=None, description="Memory to reserve, in GiB.")


class SweepSpec(StrictModel):
    name: str = Field(default="sweep", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    description: str | None = None
    base: str | dict[str, Any] = Field(
        description="Base run file (path relative to the sweep file) or mapping."
    )
    matrix: dict[str, list[dict[str, Any]]] = Field(
        min_length=1, description="Axis name -> entries."
    )
    output_dir: str = Field(
        default=DEFAULT_OUTPUT, description="Sweep folder is OUTPUT_DIR/NAME unless --out."
    )
    workers: PositiveInt | None = Field(
        default=None, description="Local executor: parallel jobs (default: cores)."
    )
    threads_per_job: PositiveInt | None = Field(
        default=None,
        description="torch threads per job (default: cores / workers, or num_cpus on Ray).",
    )
    retries: NonNegativeInt = Field(default=1, description="Extra attempts for a failed job.")
    resources: JobResources = Field(default_factory=JobResources)
    shards: dict[str, int] = Field(
        default_factory=dict,
        description="Suite name -> number of shards its examples are split into.",
    )


@dataclass(frozen=True)
class Job:
    """One run of the sweep: the base run file with ``overrides`` applied."""

    job_id: str
    name: str
    labels: dict[str, str]
    overrides: tuple[str, ...]
    config: RunConfig
    suite_params: tuple[Any, ...] = field(repr=False)


@dataclass(frozen=True)
class Sweep:
    spec: SweepSpec
    source: Path
    base_raw: dict[str, Any]
    jobs: tuple[Job, ...]
    out_dir: Path

    @property
    def spec_sha256(self) -> str:
        return sha256_json({"spec": self.spec.model_dump(mode="json"), "base": self.base_raw})


def slug(text: str, limit: int = 32) -> str:
    out = re.sub(r"[^A-Za-z0-9._]+", "-", text).strip("-.")[:limit].strip("-.")
    return out or "x"


def override(key: str, value: Any) -> str:
    """``--set`` text for a value; JSON is YAML, so apply_override reads back the same value
    (a string stays a string even if it looks like ``yes`` or ``1e3``)."""
    return f"{key}={json.dumps(value, sort_keys=True)}"


def _value_label(value: Any) -> str:
    if isinstance(value, str):
        return Path(value).name or value
    if (
        isinstance(value, list)
        and value
        and all(isinstance(v, dict) and "name" in v for v in value)
    ):
        return "+".join(str(v["name"]) for v in value)  # a suites list reads as its suite names
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def expand_axis(
    axis: str, entries: list[dict[str, Any]], problems: list[str]
) -> list[tuple[str, list[tuple[str, Any]]]]:
    """Entries of one axis -> (label, [(key, value)]) after expanding each entry's grid."""
    out: list[tuple[str, list[tuple[str, Any]]]] = []
    if not entries:
        problems.append(f"matrix.{axis}: needs at least one entry")
    for i, entry in enumerate(entries):
        where = f"matrix.{axis}[{i}]"
        label = entry.get("label")
        grid = entry.get("grid") or {}
        if label is not None and not isinstance(label, str):
            problems.append(f"{where}.label: must be a string (got {label!r})")
            continue
        if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
            problems.append(f"{where}.grid: must map keys to non-empty lists of values")
            continue
        fixed = [(str(k), v) for k, v in entry.items() if k not in RESERVED]
        if not fixed and not grid:
            problems.append(f"{where}: gives no key to override")
            continue
        base_label = label or "_".join(slug(_value_label(v)) for _, v in fixed)
        keys = [str(k) for k in grid]
        for values in itertools.product(*(grid[k] for k in keys)):
            parts = [
                f"{k.split('.')[-1]}-{slug(_value_label(v), 12)}"
                for k, v in zip(keys, values, strict=True)
            ]
            name = "_".join(p for p in [base_label, *parts] if p)
            out.append((slug(name, 48), fixed + list(zip(keys, values, strict=True))))
    return out


def _base(spec: SweepSpec, source: Path) -> dict[str, Any]:
    if isinstance(spec.base, dict):
        return copy.deepcopy(spec.base)
    path = Path(spec.base).expanduser()
    path = path if path.is_absolute() else source.parent / path
    return read_yaml(path)


def load_sweep(path: Path, *, out_dir: Path | None = None) -> Sweep:
    """Read, expand and validate a sweep file. Raises ConfigError listing every problem."""
    raw = read_yaml(path)
    try:
        spec = SweepSpec.model_validate(raw)
    except ValidationError as exc:
        listing = "\n".join(f"  - {m}" for m in validation_messages(exc, SweepSpec))
        raise ConfigError(
            MSG_PROBLEMS.format(where=path, n=len(exc.errors()), listing=listing)
        ) from None
    base_raw = _base(spec, path)
    problems: list[str] = []
    from harness.sweep.shard import shardable_suites

    shardable = shardable_suites() if spec.shards else []
    for name, k in spec.shards.items():
        if name not in shardable:
            problems.append(MSG_NOT_SHARDABLE.format(name=name, known=", ".join(shardable)))
        if k < 2:
            problems.append(f"shards.{name}: must be at least 2 (got {k})")
    axes = [expand_axis(axis, entries, problems) for axis, entries in spec.matrix.items()]
    jobs: list[Job] = []
    seen: dict[str, str] = {}
    for combo in itertools.product(*axes):
        name = "__".join(label for label, _ in combo)
        overrides = tuple(override(k, v) for _, pairs in combo for k, v in pairs)
        job_raw = copy.deepcopy(base_raw)
        try:
            for text in overrides:
                apply_override(job_raw, text)
            config, params = parse_run_config(job_raw, source=f"job {name}")
        except ConfigError as exc:
            # the run-file message lists its own problems; nest them under the job
            nested = exc.message.replace("\n  - ", "\n      - ")
            problems.append(nested if nested.startswith("job ") else f"job {name}: {nested}")
            continue
        digest = sha256_json(config.model_dump(mode="json"))
        job_id = f"{name}-{digest[:10]}"
        if digest in seen:
            problems.append(MSG_DUPLICATE.format(a=seen[digest], b=name))
            continue
        seen[digest] = name
        labels = {axis: label for axis, (label, _) in zip(spec.matrix, combo, strict=True)}
        jobs.append(Job(job_id, name, labels, overrides, config, tuple(params)))
    if problems:
        listing = "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(MSG_PROBLEMS.format(where=path, n=len(problems), listing=listing))
    out = out_dir or Path(spec.output_dir).expanduser() / spec.name
    return Sweep(spec=spec, source=path, base_raw=base_raw, jobs=tuple(jobs), out_dir=out.resolve())


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
