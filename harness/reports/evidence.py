"""The evidence map: each clause of the frameworks a run file names (``audit:``), and what in the
run folder answers it — or "not measured" and why.

For every clause, its evidence specs (``harness.frameworks``) are looked up in the record, the
run folder, the attestations and the challenger comparison. Evidence names where it lives (the
file and a JSON pointer into it) and that file's sha256 (the manifest's, when the manifest lists
it), so an auditor can trace each figure. A clause without evidence gets the declared reason
from ``audit.not_measured``, else the derived ones: the suite was not run or failed, the dataset
has no group columns, no challenger was compared, no attestation or statement was given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from harness.frameworks import AuditConfig, Clause, EvidenceSpec, Framework
from harness.records import ATTESTATIONS_FILE, MANIFEST_FILE, RECORD_FILE, SuiteRecord
from harness.reports.sections import headline
from harness.reports.view import RunView
from harness.store import sha256_file

if TYPE_CHECKING:
    from harness.audit.attest import AttestationStatus
    from harness.reports.challenger import ChallengerComparison

# Derived reasons (asserted by tests).
MSG_SUITE_NOT_RUN = "suite {suite!r} not run (it is not in the run file's suites)"
MSG_SUITE_NOT_OK = "suite {suite!r} {status}{error}"
MSG_NO_GROUPS = "no group columns: the dataset declares none (dataset.columns.groups)"
MSG_NO_INTERSECTION = "fewer than two group columns: there are no intersectional categories"
MSG_NO_METRIC = "no metric matching {pattern!r} in suite {suite!r}"
MSG_UNDEFINED = "every metric matching {pattern!r} is undefined (null)"
MSG_NO_DETAILS = "suite {suite!r} recorded no {key!r} details"
MSG_SKIPPED_DETAILS = "suite {suite!r} skipped {key!r}: {why}"
MSG_NO_CHALLENGER = "no challenger: render with `harness report RUN --challenger OTHER_RUN`"
MSG_NOT_ATTESTED = "no attestation{by}: sign with `harness attest RUN --role {example} …`"
MSG_STALE_ATTESTATION = "{who} no longer holds: {problem}"
MSG_NO_STATEMENT = "nothing declared: add audit.statements[{ref!r}] to the run file"
MSG_NO_INTENDED_USE = "no intended use recorded: set 'description' in the run file"
MSG_NO_MANIFEST = "the run folder has no manifest.json"
MSG_DECLARED = "declared: {reason}"
MAX_STATEMENT = 300
MAX_PER_SPEC = 6  # metrics shown per evidence spec; the rest are counted
MSG_MORE = "and {n} more metrics matching {pattern!r}"


@dataclass(frozen=True)
class Evidence:
    """One piece of evidence for a clause."""

    kind: str
    label: str
    value: Any = None  # a number or a short text
    ci: tuple[float | None, float | None] | None = None
    n: int | None = None
    path: str = ""  # file inside the run folder, with a JSON pointer: record.json#/suites/0/...
    sha256: str | None = None  # of that file
    note: str | None = None


@dataclass(frozen=True)
class ClauseResult:
    framework: Framework
    clause: Clause
    evidence: tuple[Evidence, ...]
    reasons: tuple[str, ...]  # why (part of) the clause has no evidence
    declared: str | None = None  # audit.not_measured for this clause

    @property
    def ref(self) -> str:
        return f"{self.framework.id}/{self.clause.id}"

    @property
    def measured(self) -> bool:
        return bool(self.evidence)


@dataclass
class Context:
    """What the evidence is looked up in."""

    view: RunView
    audit: AuditConfig
    attestations: list[AttestationStatus] = field(default_factory=list)
    challenger: ChallengerComparison | None = None
    _digests: dict[str, str | None] = field(default_factory=dict)

    def digest(self, relative: str) -> str | None:
        """The manifest's sha256 of a file (what was signed), else the file's own."""
        if relative not in self._digests:
            listed = {
                str(f.get("path")): str(f.get("sha256"))
                for f in (self.view.manifest or {}).get("files", [])
                if isinstance(f, dict)
            }
            path = self.view.run_dir / relative
            self._digests[relative] = listed.get(relative) or (
                sha256_file(path) if path.is_file() else None
            )
        return self._digests[relative]


Found = tuple[list[Evidence], list[str]]  # evidence, or the reasons there is none


# ------------------------------------------------------------------ one kind each


def _suites(ctx: Context, name: str) -> list[tuple[int, SuiteRecord]]:
    return [(i, s) for i, s in enumerate(ctx.view.record.suites) if s.base_name == name]


def _suite_reason(ctx: Context, name: str, spec: EvidenceSpec) -> str | None:
    """Why nothing of suite ``name`` can count: not run, failed, or data it needs is absent."""
    found = _suites(ctx, name)
    if not found:
        return MSG_SUITE_NOT_RUN.format(suite=name)
    if all(s.status != "ok" for _, s in found):
        s = found[0][1]
        return MSG_SUITE_NOT_OK.format(suite=name, status=s.status, error=f": {s.error}" if s.error else "")
    columns = ctx.view.record.dataset.group_columns
    if spec.needs == "group_columns" and not columns:
        return MSG_NO_GROUPS
    if spec.needs == "intersection" and len(columns) < 2:
        return MSG_NO_GROUPS if not columns else MSG_NO_INTERSECTION
    return None


def _metric(ctx: Context, spec: EvidenceSpec) -> Found:
    pattern = str(spec.metric)
    suite_name, _, metric_glob = pattern.partition(".")
    why = _suite_reason(ctx, suite_name, spec)
    if why is not None:
        return [], [why]
    out: list[Evidence] = []
    matched = 0
    for i, suite in _suites(ctx, suite_name):
        for j, m in enumerate(suite.metrics):
            full = f"{suite_name}.{m.name}"
            if not fnmatchcase(m.name, metric_glob) or (spec.exclude and fnmatchcase(full, spec.exclude)):
                continue
            matched += 1
            if m.value is None:
                continue
            out.append(Evidence(
                "metric", f"{suite.name}.{m.name}", m.value,
                (m.ci_low, m.ci_high) if m.ci_low is not None else None, m.n,
                f"{RECORD_FILE}#/suites/{i}/metrics/{j}", ctx.digest(RECORD_FILE), spec.note,
            ))  # fmt: skip
    if len(out) > MAX_PER_SPEC:
        more = len(out) - MAX_PER_SPEC + 1
        out = [*out[: MAX_PER_SPEC - 1], Evidence(
            "metric", MSG_MORE.format(n=more, pattern=pattern), None, None, None,
            f"{RECORD_FILE}#/suites", ctx.digest(RECORD_FILE), "listed in Results by suite",
        )]  # fmt: skip
    if out:
        return out, []
    message = MSG_UNDEFINED if matched else MSG_NO_METRIC
    return [], [message.format(pattern=pattern, suite=suite_name)]


def _suite(ctx: Context, spec: EvidenceSpec) -> Found:
    name = str(spec.suite)
    why = _suite_reason(ctx, name, spec)
    if why is not None:
        return [], [why]
    out = []
    for i, suite in _suites(ctx, name):
        if suite.status != "ok":
            continue
        top = headline(suite)
        path = suite.examples_file or f"{RECORD_FILE}#/suites/{i}"
        out.append(Evidence(
            "suite", f"{suite.name} (headline {top.name})" if top else suite.name,
            top.value if top else suite.status,
            (top.ci_low, top.ci_high) if top and top.ci_low is not None else None,
            top.n if top else suite.n_examples, path,
            ctx.digest(suite.examples_file or RECORD_FILE), spec.note,
        ))  # fmt: skip
    return out, []


def _summary(value: Any) -> str:
    if isinstance(value, dict) and isinstance(value.get("tables"), list):
        keys = [str(t.get("key")) for t in value["tables"] if isinstance(t, dict)]
        return f"{len(keys)} table(s): {', '.join(keys)}"
    if isinstance(value, dict):
        return f"{len(value)} entries: {', '.join(sorted(str(k) for k in value)[:6])}"
    if isinstance(value, list):
        return f"{len(value)} rows"
    return str(value)


def _details(ctx: Context, spec: EvidenceSpec) -> Found:
    suite_name, _, key = str(spec.details).partition(".")
    why = _suite_reason(ctx, suite_name, spec)
    if why is not None:
        return [], [why]
    out, reasons = [], []
    for i, suite in _suites(ctx, suite_name):
        value = suite.details.get(key)
        if value is None:
            reasons.append(MSG_NO_DETAILS.format(suite=suite.name, key=key))
        elif isinstance(value, dict) and set(value) == {"skipped"}:
            reasons.append(MSG_SKIPPED_DETAILS.format(suite=suite.name, key=key, why=value["skipped"]))
        else:
            out.append(Evidence(
                "details", f"{suite.name} details[{key!r}]", _summary(value), None, None,
                f"{RECORD_FILE}#/suites/{i}/details/{key}", ctx.digest(RECORD_FILE), spec.note,
            ))  # fmt: skip
    return (out, []) if out else ([], reasons)


def _provenance(ctx: Context, spec: EvidenceSpec) -> Found:
    record, kind = ctx.view.record, spec.provenance
    rec = ctx.digest(RECORD_FILE)
    if kind == "model":
        m = record.model
        return [Evidence("provenance", f"model {m.name} ({m.source})", m.digest, None, len(m.files),
                         f"{RECORD_FILE}#/model", rec, spec.note)], []
    if kind == "data":
        d = record.dataset
        return [
            Evidence("provenance", f"{d.name} split {s.name!r} from {d.source}", s.sha256, None, s.n,
                     f"{RECORD_FILE}#/dataset/splits/{k}", rec, spec.note)
            for k, s in enumerate(d.splits)
        ], []
    if kind == "intended_use":
        card = record.model.model_card or {}
        if card.get("intended_use"):
            return [Evidence("provenance", "intended use (fine-tuning model card)",
                             str(card["intended_use"]), None, None, f"{RECORD_FILE}#/model/model_card",
                             rec, spec.note)], []
        if record.config.get("description"):
            return [Evidence("provenance", "the run file's description", str(record.config["description"]),
                             None, None, "config.yaml#/description", ctx.digest("config.yaml"),
                             spec.note)], []
        return [], [MSG_NO_INTENDED_USE]
    if kind == "config":
        return [Evidence("provenance", "validated run configuration", record.provenance.config_sha256,
                         None, None, "config.yaml", ctx.digest("config.yaml"), spec.note)], []
    if kind == "environment":
        p = record.provenance
        text = f"harness {p.harness_version}, Python {p.python}, {len(p.packages)} packages, {p.device}"
        return [Evidence("provenance", "software and machine", text, None, None,
                         f"{RECORD_FILE}#/provenance", rec, spec.note)], []
    if kind == "manifest":
        manifest = ctx.view.manifest
        if not manifest:
            return [], [MSG_NO_MANIFEST]
        files = manifest.get("files") if isinstance(manifest.get("files"), list) else []
        return [Evidence("provenance", "sha256 manifest of the run folder",
                         str(manifest.get("tree_sha256")), None, len(files or []), MANIFEST_FILE,
                         ctx.digest(MANIFEST_FILE), spec.note)], []
    n_dep = sum(len(s.departures) for s in record.suites)
    n_warn = sum(len(s.warnings) for s in record.suites)
    return [Evidence("provenance", "recorded departures and warnings",
                     f"{n_dep} departure(s), {n_warn} warning(s)", None, None,
                     f"{RECORD_FILE}#/suites", rec, spec.note)], []


def _attestation(ctx: Context, spec: EvidenceSpec) -> Found:
    role = str(spec.attestation)
    wanted = [s for s in ctx.attestations if role == "any" or s.attestation.payload["role"] == role]
    out = []
    for status in wanted:
        if not status.current:
            continue
        p = status.attestation.payload
        statement = str(p["statement"])
        short = statement if len(statement) <= MAX_STATEMENT else statement[:MAX_STATEMENT] + "…"
        out.append(Evidence(
            "attestation", f"{p['role']} {p['name']}, signed {p['signed_utc']}", short, None, None,
            f"{ATTESTATIONS_FILE}#{status.attestation.index}", ctx.digest(ATTESTATIONS_FILE),
            f"Ed25519 key {p['key_id']}",
        ))  # fmt: skip
    if out:
        return out, []
    stale = [
        MSG_STALE_ATTESTATION.format(who=s.attestation.who, problem=s.problems[0]) for s in wanted
    ]
    example = "validator" if role == "any" else role
    by = "" if role == "any" else f" with role {role!r}"
    return [], stale or [MSG_NOT_ATTESTED.format(by=by, example=example)]


def _challenger(ctx: Context, spec: EvidenceSpec) -> Found:
    c = ctx.challenger
    if c is None:
        return [], [MSG_NO_CHALLENGER]
    tested = len(c.pairs) - c.count("untested")
    text = (
        f"{tested} metric(s) tested: the champion is better on {c.count('champion')}, "
        f"the challenger on {c.count('challenger')}, no significant difference on {c.count('neither')}"
    )
    label = f"challenger {c.challenger_record.model.name} (run {c.challenger_record.run_id})"
    return [Evidence("challenger", label, text, None, tested, "#challenger", None, spec.note)], []


def _statement(ctx: Context, spec: EvidenceSpec, ref: str) -> Found:
    text = ctx.audit.statements.get(ref)
    if text is None:
        return [], [MSG_NO_STATEMENT.format(ref=ref)]
    pointer = f"config.yaml#/audit/statements/{ref.replace('/', '~1')}"
    return [Evidence("statement", "declared in the run file", text, None, None, pointer,
                     ctx.digest("config.yaml"), spec.note)], []


# ------------------------------------------------------------------ clauses


def clause_result(ctx: Context, framework: Framework, clause: Clause) -> ClauseResult:
    ref = f"{framework.id}/{clause.id}"
    evidence: list[Evidence] = []
    reasons: list[str] = []
    for spec in clause.evidence:
        kind = spec.kind
        if kind == "statement":
            found = _statement(ctx, spec, ref)
        else:
            found = {
                "metric": _metric, "suite": _suite, "details": _details, "provenance": _provenance,
                "attestation": _attestation, "challenger": _challenger,
            }[kind](ctx, spec)  # fmt: skip
        evidence += found[0]
        reasons += [r for r in found[1] if r not in reasons]
    declared = ctx.audit.not_measured.get(ref)
    if evidence:
        pass  # the reasons say which parts of the clause this run does not measure
    elif declared is not None:
        reasons = [MSG_DECLARED.format(reason=declared)]
    elif not clause.evidence:
        reasons = [MSG_NO_STATEMENT.format(ref=ref)]
    return ClauseResult(framework, clause, tuple(evidence), tuple(reasons), declared)


def evidence_map(ctx: Context) -> list[tuple[Framework, list[ClauseResult]]]:
    """Every clause of every framework the run file names, in the frameworks' order."""
    return [
        (framework, [clause_result(ctx, framework, c) for c in framework.clauses])
        for framework in ctx.audit.resolved()
    ]
