"""Human review of adversarial examples: ``harness review export RUN`` writes a sheet of every
successful attack (blind: the automatic validity verdict is not on it); reviewers mark each row
valid or invalid; ``harness review import RUN SHEET`` stores their judgements in the run folder
(``reviews/<reviewer>.jsonl``), adds the human figures to the robustness suite's record, rewrites
the manifest and, with ``--key``, the signature. ``harness verify`` then catches any change to an
imported review: the file is in the manifest, and the record's human figures are recomputed
from the review files (``consistency_problems``).

Figures, per recipe: the share of reviewed successes that humans judged valid (Wilson
interval), the human-validated attack success rate (valid successes among attacked examples;
an interval only when every success was reviewed), and the automatic checks' agreement with the
humans (percent agreement and Cohen's kappa). Several reviewers: an example's human verdict is
the majority, a tie counts as invalid.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, RecordError
from harness.records import (
    ATTESTATIONS_FILE,
    RECORD_FILE,
    Metric,
    RunRecord,
    SuiteRecord,
    dump_record,
    load_record,
    proportion_metric,
)
from harness.store import atomic_write_text, iter_jsonl, sha256_file, write_manifest

REVIEWS_DIR = "reviews"
SUITE = "robustness"
COLUMNS = (
    "id",
    "recipe",
    "label",
    "original_text",
    "perturbed_text",
    "human_valid",
    "reviewer",
    "note",
)
VALID = {"valid", "v", "yes", "y", "true", "1"}
INVALID = {"invalid", "i", "no", "n", "false", "0"}
MSG_NO_SUITE = "{run}: the record has no robustness suite with per-example rows to review"
MSG_ROW = "{sheet}: row {row}: {problem}"
MSG_NO_REVIEWER = "{sheet}: no reviewer name: pass --reviewer NAME or fill the 'reviewer' column"
MSG_SIGNED = (
    "{run}: the run is signed (manifest.sig); importing changes the manifest, so pass --key "
    "PRIVATE.pem to sign it again (nothing was written)"
)
MSG_ATTESTED = (
    "{run}: the run has attestations ({file}); importing a review would change what they "
    "signed (nothing was written)"
)
MSG_NOTHING = "{sheet}: no row has a judgement in 'human_valid' (valid/invalid)"


def _suite(record: RunRecord, run: Path) -> SuiteRecord:
    for suite in record.suites:
        if suite.base_name == SUITE and suite.examples_file:
            return suite
    raise ConfigError(MSG_NO_SUITE.format(run=run))


def successes(run: Path) -> list[dict[str, Any]]:
    """The robustness rows whose attack succeeded, in file order."""
    suite = _suite(load_record(run), run)
    return [
        r for _, r in iter_jsonl(run / str(suite.examples_file)) if r.get("result") == "succeeded"
    ]


# ------------------------------------------------------------------ export
def export_sheet(run: Path, out: Path) -> int:
    """Write the review sheet (CSV, or JSONL when ``out`` ends in .jsonl); returns its rows."""
    rows = [
        {
            "id": r["id"], "recipe": r.get("recipe", ""), "label": r.get("label_name", r.get("label")),
            "original_text": r["original_text"], "perturbed_text": r["perturbed_text"],
            "human_valid": "", "reviewer": "", "note": "",
        }
        for r in successes(run)
    ]  # fmt: skip
    if out.suffix == ".jsonl":
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    else:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(COLUMNS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        text = buffer.getvalue()
    atomic_write_text(out, text)
    return len(rows)


# ------------------------------------------------------------------ import
@dataclass(frozen=True)
class Judgement:
    id: str
    valid: bool
    reviewer: str
    note: str


def _read_sheet(sheet: Path) -> list[tuple[int, dict[str, Any]]]:
    if not sheet.is_file():
        raise ConfigError(f"{sheet}: review sheet not found")
    try:
        text = sheet.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{sheet}: not valid UTF-8 at byte {exc.start}") from None
    if sheet.suffix == ".jsonl":
        out = []
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(
                    MSG_ROW.format(sheet=sheet, row=n, problem=f"invalid JSON ({exc.msg})")
                ) from None
            if not isinstance(row, dict):
                raise ConfigError(MSG_ROW.format(sheet=sheet, row=n, problem="not a JSON object"))
            out.append((n, row))
        return out
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = {"id", "human_valid"} - set(reader.fieldnames or [])
    if missing:
        raise ConfigError(f"{sheet}: missing column(s) {', '.join(sorted(missing))}")
    return [(n, dict(row)) for n, row in enumerate(reader, start=2)]


def parse_judgements(sheet: Path, known: set[str], reviewer: str | None) -> list[Judgement]:
    """Every judged row of the sheet; blank ``human_valid`` rows are skipped. Unknown ids,
    repeated ids and unreadable verdicts fail with the row number."""
    out: list[Judgement] = []
    seen: set[str] = set()
    for n, row in _read_sheet(sheet):
        verdict = str(row.get("human_valid") or "").strip().lower()
        if not verdict:
            continue
        ident = str(row.get("id") or "")
        problem = None
        if ident not in known:
            problem = f"id {ident!r} is not a successful attack of this run"
        elif ident in seen:
            problem = f"id {ident!r} is judged twice"
        elif verdict not in VALID | INVALID:
            problem = f"human_valid {verdict!r} is not valid/invalid (or yes/no, true/false, 1/0)"
        name = (reviewer or str(row.get("reviewer") or "")).strip()
        if problem is None and not name:
            raise ConfigError(MSG_NO_REVIEWER.format(sheet=sheet))
        if problem:
            raise ConfigError(MSG_ROW.format(sheet=sheet, row=n, problem=problem))
        seen.add(ident)
        out.append(Judgement(ident, verdict in VALID, name, str(row.get("note") or "")))
    if not out:
        raise ConfigError(MSG_NOTHING.format(sheet=sheet))
    return out


def reviewer_file(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "reviewer"
    return f"{REVIEWS_DIR}/{slug}.jsonl"


def import_sheet(
    run: Path, sheet: Path, *, reviewer: str | None, key: Path | None
) -> dict[str, Any]:
    """Store the sheet's judgements, update the record, the manifest and (with ``key``) the
    signature. Everything is checked before anything is written."""
    from harness.audit.verify import SIGNATURE_FILE, _load_key, sign_run

    record = load_record(run)
    rows = successes(run)
    judgements = parse_judgements(sheet, {str(r["id"]) for r in rows}, reviewer)
    if (run / ATTESTATIONS_FILE).is_file():
        raise ConfigError(MSG_ATTESTED.format(run=run, file=ATTESTATIONS_FILE))
    if (run / SIGNATURE_FILE).is_file() and key is None:
        raise ConfigError(MSG_SIGNED.format(run=run))
    if key is not None:
        _load_key(key, private=True)  # a bad key fails here, before any write
    by_reviewer: dict[str, list[Judgement]] = {}
    for j in judgements:
        by_reviewer.setdefault(j.reviewer, []).append(j)
    for name, items in by_reviewer.items():
        lines = [
            json.dumps(
                {"id": j.id, "valid": j.valid, "reviewer": j.reviewer, "note": j.note},
                ensure_ascii=False,
            )
            for j in items
        ]
        path = run / reviewer_file(name)
        path.parent.mkdir(exist_ok=True)
        atomic_write_text(path, "\n".join(lines) + "\n")
    updated = with_human_figures(record, run)
    atomic_write_text(run / RECORD_FILE, dump_record(updated))
    (run / SIGNATURE_FILE).unlink(missing_ok=True)  # it signed the old manifest; signed again below
    write_manifest(run)
    if key is not None:
        sign_run(run, key)
    return _suite(updated, run).details["human_review"]  # type: ignore[no-any-return]


# ------------------------------------------------------------------ figures
def read_reviews(run: Path) -> dict[str, dict[str, bool]]:
    """reviewer -> {row id -> valid}, from every file under reviews/."""
    out: dict[str, dict[str, bool]] = {}
    folder = run / REVIEWS_DIR
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        for _, row in iter_jsonl(path):
            out.setdefault(str(row["reviewer"]), {})[str(row["id"])] = bool(row["valid"])
    return out


def cohen_kappa(a: Sequence[bool], b: Sequence[bool]) -> float | None:
    """Cohen's kappa of two binary raters (None when undefined: no item, or chance agreement 1)."""
    n = len(a)
    if n == 0:
        return None
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    pa, pb = sum(a) / n, sum(b) / n
    expected = pa * pb + (1 - pa) * (1 - pb)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1 - expected)


def human_figures(
    rows: list[dict[str, Any]], reviews: dict[str, dict[str, bool]]
) -> tuple[list[Metric], dict[str, Any]]:
    """Per recipe: human-valid share, human-validated attack success rate, agreement of the
    automatic validity verdict with the humans."""
    verdicts: dict[str, bool] = {}
    for ident in sorted({i for r in reviews.values() for i in r}):
        votes = [r[ident] for r in reviews.values() if ident in r]
        verdicts[ident] = sum(votes) > len(votes) / 2
    metrics: list[Metric] = []
    per_recipe: dict[str, Any] = {}
    for recipe in sorted({str(r.get("recipe")) for r in rows}):
        mine = [r for r in rows if str(r.get("recipe")) == recipe]
        metrics_r, summary = _recipe_figures(recipe, mine, verdicts)
        metrics += metrics_r
        per_recipe[recipe] = summary
    details = {
        "reviewers": sorted(reviews),
        "n_judged": len(verdicts),
        "recipes": per_recipe,
    }
    return metrics, details


def _recipe_figures(
    recipe: str, rows: list[dict[str, Any]], verdicts: dict[str, bool]
) -> tuple[list[Metric], dict[str, Any]]:
    attacked = sum(r.get("result") in ("succeeded", "failed", "timed_out") for r in rows)
    succeeded = [r for r in rows if r.get("result") == "succeeded"]
    reviewed = [r for r in succeeded if str(r["id"]) in verdicts]
    human_valid = sum(verdicts[str(r["id"])] for r in reviewed)
    share = proportion_metric(
        f"{recipe}.human_valid_share", human_valid, len(reviewed), higher=None,
        description="Reviewed successful attacks that human reviewers judged valid",
    )  # fmt: skip
    if reviewed and len(reviewed) == len(succeeded):
        rate = proportion_metric(
            f"{recipe}.human_valid_attack_success_rate", human_valid, attacked, higher=False,
            description="Successful attacks judged valid by humans, among correctly classified examples",
        )  # fmt: skip
    else:
        value = (
            (len(succeeded) / attacked) * (human_valid / len(reviewed))
            if reviewed and attacked
            else None
        )
        rate = Metric(
            name=f"{recipe}.human_valid_attack_success_rate", value=value, higher_is_better=False,
            n=attacked, description="Attack success rate x human-valid share of the reviewed "
            f"successes ({len(reviewed)} of {len(succeeded)} reviewed; no interval)",
        )  # fmt: skip
    auto = [r for r in reviewed if r.get("validity") is not None]
    machine = [bool(r["validity"]["valid"]) for r in auto]
    human = [verdicts[str(r["id"])] for r in auto]
    agreement = (
        sum(x == y for x, y in zip(machine, human, strict=True)) / len(auto) if auto else None
    )
    kappa = cohen_kappa(machine, human)
    metrics = [
        share, rate,
        Metric(name=f"{recipe}.checks_human_agreement", value=agreement, higher_is_better=True, n=len(auto),
               description="Share of reviewed successes where the automatic validity verdict equals the humans'"),
        Metric(name=f"{recipe}.checks_human_kappa", value=kappa, higher_is_better=True, n=len(auto),
               description="Cohen's kappa of the automatic validity verdict against the humans'"),
    ]  # fmt: skip
    summary = {"succeeded": len(succeeded), "reviewed": len(reviewed), "human_valid": human_valid,
               "machine_valid_human_invalid": sum(m and not h for m, h in zip(machine, human, strict=True)),
               "machine_invalid_human_valid": sum(h and not m for m, h in zip(machine, human, strict=True))}  # fmt: skip
    return metrics, summary


def with_human_figures(record: RunRecord, run: Path) -> RunRecord:
    """The record with the robustness suite's human figures recomputed from reviews/."""
    suite = _suite(record, run)
    rows = list(r for _, r in iter_jsonl(run / str(suite.examples_file)))
    metrics, details = human_figures(rows, read_reviews(run))
    details["files"] = {
        str(p.relative_to(run)): sha256_file(p) for p in sorted((run / REVIEWS_DIR).glob("*.jsonl"))
    }
    names = {m.name for m in metrics}
    kept = [m for m in suite.metrics if m.name not in names]
    new_suite = suite.model_copy(
        update={"metrics": kept + metrics, "details": {**suite.details, "human_review": details}}
    )
    return record.model_copy(
        update={"suites": [new_suite if s is suite else s for s in record.suites]}
    )


def consistency_problems(run: Path, record: RunRecord) -> list[str]:
    """For ``harness verify``: the record's human figures against the review files."""
    try:
        suite = _suite(record, run)
    except ConfigError:
        return []
    recorded = suite.details.get("human_review")
    if recorded is None and not (run / REVIEWS_DIR).is_dir():
        return []
    try:
        expected = _suite(with_human_figures(record, run), run)
    except (RecordError, KeyError, TypeError, ValueError) as exc:
        return [f"{REVIEWS_DIR}/: unreadable review file ({exc})"]
    problems = []
    if recorded != expected.details["human_review"]:
        problems.append(
            f"record.json: the robustness suite's human_review does not match {REVIEWS_DIR}/"
        )
    for m in expected.metrics:
        if m.name.endswith(
            (
                "human_valid_share",
                "human_valid_attack_success_rate",
                "checks_human_agreement",
                "checks_human_kappa",
            )
        ):
            have = suite.metric(m.name)
            if have is None or have.value != m.value:
                problems.append(f"record.json: robustness.{m.name} does not match the review files")
    return problems
