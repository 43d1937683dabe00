"""Audit frameworks: regulatory texts as lists of clauses, each naming the evidence a run can give.

A framework is plain data (YAML): an id, a title, where the text comes from, and clauses. Each
clause names evidence *specs* — what in a run folder would answer it — tried in order::

    id: my-bank-policy
    title: Model validation policy, section 4
    reference: Internal policy MRM-4 (2024)
    clauses:
      - id: "4.2"
        title: Outcomes analysis on held-out data
        evidence:
          - metric: accuracy.accuracy          # 'suite.metric', globs allowed (fnmatch)
          - metric: "accuracy.f1.*"
            exclude: "accuracy.f1.rotten"       # optional glob of names to leave out
          - suite: robustness                   # the suite ran: its headline and its rows
          - details: bias.impact                # a suite's structured details (suite.key)
            needs: group_columns                # why it can be absent: group_columns | intersection
          - provenance: data                    # model | data | config | environment | manifest
                                                #   | limitations | intended_use
          - attestation: validator              # a signed attestation of that role ('any': any role)
          - challenger: true                    # a challenger comparison (harness report --challenger)
          - statement: true                     # a statement declared in the run file (audit.statements)

Built-in frameworks ship as YAML beside this module (``builtin()``); a run file names them by id
or gives the path of its own file (``audit.frameworks``), which is read when the run file is
validated and stored inline in the validated config, so the record carries what it was
audited against. Clause references in the run file are ``FRAMEWORK/CLAUSE``.

A core module: the run config validates ``audit:`` with it, the report renders with it.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    Field,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

from harness.errors import ConfigError
from harness.records import StrictModel
from harness.registry import did_you_mean

ProvenanceKind = Literal[
    "model", "data", "config", "environment", "manifest", "limitations", "intended_use"
]
Need = Literal["group_columns", "intersection"]
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._()\-]*$"
# Message templates (asserted by tests).
MSG_UNKNOWN_FRAMEWORK = "unknown framework {name!r}{hint}; built in: {known} (or give a .yaml file)"
MSG_UNKNOWN_CLAUSE = "{ref!r}: unknown clause{hint}"
MSG_BAD_REF = "{ref!r} is not 'FRAMEWORK/CLAUSE' (e.g. 'nist-ai-rmf/MEASURE-2.12')"
MSG_NOT_SELECTED = "{ref!r}: framework {framework!r} is not in audit.frameworks ({selected})"
MSG_DUPLICATE_CLAUSE = "framework {framework!r}: clause {clause!r} is defined twice"
MSG_DUPLICATE_FRAMEWORK = "framework {framework!r} is named twice in audit.frameworks"


class EvidenceSpec(StrictModel):
    """One kind of evidence that answers a clause; exactly one of the kind keys is set."""

    metric: str | None = Field(default=None, description="'suite.metric' (fnmatch glob).")
    exclude: str | None = Field(default=None, description="Glob of metric names to leave out.")
    suite: str | None = Field(default=None, description="A suite that must have run.")
    details: str | None = Field(default=None, description="'suite.key' of a suite's details.")
    provenance: ProvenanceKind | None = Field(default=None, description="A part of the record.")
    attestation: str | None = Field(default=None, description="A signed attestation's role, or 'any'.")
    challenger: bool | None = Field(default=None, description="A challenger comparison.")
    statement: bool | None = Field(default=None, description="A statement in audit.statements.")
    needs: Need | None = Field(default=None, description="What the data must have for it to exist.")
    note: str | None = Field(default=None, description="What this evidence shows, for the reader.")

    @model_validator(mode="after")
    def _one_kind(self) -> EvidenceSpec:
        chosen = [k for k in KINDS if getattr(self, k) not in (None, False)]
        if len(chosen) != 1:
            raise ValueError(
                f"give exactly one of {', '.join(KINDS)} (got {', '.join(chosen) or 'none'})"
            )
        if self.exclude is not None and self.metric is None:
            raise ValueError("'exclude' applies to 'metric' evidence only")
        for key in ("metric", "details"):
            value = getattr(self, key)
            if value is not None and "." not in value:
                raise ValueError(f"{key}: {value!r} must be 'suite.name'")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in KINDS if getattr(self, k) not in (None, False))


KINDS = ("metric", "suite", "details", "provenance", "attestation", "challenger", "statement")


class Clause(StrictModel):
    id: str = Field(pattern=ID_PATTERN, description="Clause id within its framework, e.g. '2(g)'.")
    title: str
    text: str | None = Field(default=None, description="What the clause asks, paraphrased.")
    evidence: list[EvidenceSpec] = Field(default_factory=list)


class Framework(StrictModel):
    id: str = Field(pattern=ID_PATTERN)
    title: str
    reference: str | None = Field(default=None, description="The text's citation.")
    url: str | None = None
    scope: str | None = Field(default=None, description="Which part of the text is covered, and why.")
    clauses: list[Clause] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Framework:
        seen: set[str] = set()
        for clause in self.clauses:
            if clause.id in seen:
                raise ValueError(MSG_DUPLICATE_CLAUSE.format(framework=self.id, clause=clause.id))
            seen.add(clause.id)
        return self

    def clause(self, ident: str) -> Clause | None:
        return next((c for c in self.clauses if c.id == ident), None)


def parse_framework(raw: Any, *, source: str) -> Framework:
    """Validate one framework mapping; every problem is named with its path in ``source``."""
    from harness.config import validation_messages

    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: a framework must be a mapping with id, title and clauses")
    try:
        return Framework.model_validate(raw)
    except ValidationError as exc:
        listing = "\n".join(f"  - {m}" for m in validation_messages(exc, Framework))
        raise ConfigError(f"{source}: invalid framework:\n{listing}") from None


@cache
def builtin() -> dict[str, Framework]:
    """The frameworks that ship with harness, by id."""
    out: dict[str, Framework] = {}
    for entry in sorted(files(__name__).iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            framework = parse_framework(yaml.safe_load(entry.read_text(encoding="utf-8")), source=entry.name)
            out[framework.id] = framework
    return out


def is_file_ref(name: str) -> bool:
    return name.endswith((".yaml", ".yml"))


def load_file(path: Path) -> Framework:
    from harness.config import load_yaml

    return parse_framework(load_yaml(path, what="framework file"), source=str(path))


def resolve(entry: str | Framework) -> Framework:
    """A built-in id, a YAML file path, or an inline framework, as a ``Framework``."""
    if isinstance(entry, Framework):
        return entry
    if is_file_ref(entry):
        return load_file(Path(entry))
    known = builtin()
    if entry not in known:
        raise ConfigError(
            MSG_UNKNOWN_FRAMEWORK.format(
                name=entry, hint=did_you_mean(entry, list(known)), known=", ".join(sorted(known))
            )
        )
    return known[entry]


def clause_problems(frameworks: list[Framework], refs: list[str]) -> list[str]:
    """Each clause reference of ``refs`` (``FRAMEWORK/CLAUSE``) that names nothing, with a hint."""
    by_id = {f.id: f for f in frameworks}
    every = [f"{f.id}/{c.id}" for f in frameworks for c in f.clauses]
    problems: list[str] = []
    for ref in refs:
        framework, sep, clause = ref.partition("/")
        hint = did_you_mean(ref, every)
        if not sep or not clause:
            problems.append(MSG_BAD_REF.format(ref=ref) + hint)
        elif framework not in by_id:
            selected = ", ".join(by_id) or "none"
            problems.append(
                MSG_NOT_SELECTED.format(ref=ref, framework=framework, selected=selected) + hint
            )
        elif by_id[framework].clause(clause) is None:
            problems.append(MSG_UNKNOWN_CLAUSE.format(ref=ref, hint=hint))
    return problems


class AuditConfig(StrictModel):
    """The run file's ``audit:`` section: the frameworks to map the run's evidence onto, and
    what the people responsible declare about clauses the run cannot measure."""

    frameworks: list[str | Framework] = Field(
        min_length=1,
        description="Built-in framework ids (eu-ai-act-annex-iv, sr-11-7, nist-ai-rmf, nyc-ll144), "
        "paths of framework YAML files (read and stored inline), or inline frameworks.",
    )
    not_measured: dict[str, str] = Field(
        default_factory=dict,
        description="FRAMEWORK/CLAUSE -> why it is not (or cannot be) measured.",
    )
    statements: dict[str, str] = Field(
        default_factory=dict,
        description="FRAMEWORK/CLAUSE -> a declared statement (limitations, assumptions, "
        "oversight measures) that documents the clause.",
    )

    @field_validator("frameworks", mode="before")
    @classmethod
    def _read_files(cls, value: Any) -> Any:
        """Framework files are read here and kept inline: the record says what was mapped."""
        if not isinstance(value, list):
            return value
        out: list[Any] = []
        for item in value:
            try:
                if isinstance(item, str) and is_file_ref(item):
                    out.append(load_file(Path(item)).model_dump(mode="json", exclude_none=True))
                    continue
                if isinstance(item, str):
                    resolve(item)  # unknown ids fail here, with did-you-mean
            except ConfigError as exc:  # pydantic collects ValueErrors with their path
                raise ValueError(exc.message) from None
            out.append(item)
        return out

    @field_validator("not_measured", "statements")
    @classmethod
    def _clauses_exist(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        """Every key names a clause of the selected frameworks (did-you-mean otherwise)."""
        entries = info.data.get("frameworks")
        if entries is None:  # the frameworks failed validation; that error is reported
            return value
        problems = clause_problems([resolve(f) for f in entries], list(value))
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @model_validator(mode="after")
    def _unique_frameworks(self) -> AuditConfig:
        seen: set[str] = set()
        for framework in self.resolved():
            if framework.id in seen:
                raise ValueError(MSG_DUPLICATE_FRAMEWORK.format(framework=framework.id))
            seen.add(framework.id)
        return self

    @field_serializer("frameworks")
    def _compact(self, frameworks: list[str | Framework]) -> list[Any]:
        """Inline frameworks dumped without their unset keys, as a person would write them."""
        return [f if isinstance(f, str) else f.model_dump(mode="json", exclude_none=True) for f in frameworks]

    def resolved(self) -> list[Framework]:
        return [resolve(f) for f in self.frameworks]
