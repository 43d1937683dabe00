"""The evidence map: frameworks as data, the run file's audit section, and the clause table of a
real run (tiny model, two group columns with unknowns) rendered by ``harness report``."""

from __future__ import annotations

import csv
import html
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import registry
from harness.config import load_run_config
from harness.errors import ConfigError
from harness.frameworks import (
    KINDS,
    MSG_UNKNOWN_CLAUSE,
    AuditConfig,
    builtin,
    clause_problems,
)
from harness.leaderboard.synthetic import Spec, write_run
from harness.records import RECORD_FILE, load_record
from harness.reports.evidence import (
    MSG_DECLARED,
    MSG_NO_CHALLENGER,
    MSG_NO_GROUPS,
    MSG_NO_INTERSECTION,
    MSG_NO_STATEMENT,
    MSG_SUITE_NOT_RUN,
    Context,
    evidence_map,
)
from harness.reports.view import load_view
from harness.store import write_manifest
from tests.fixtures_text import make_rows

BUILT_IN = ("eu-ai-act-annex-iv", "sr-11-7", "nist-ai-rmf", "nyc-ll144")


def harness(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, cwd=cwd,
        timeout=300, check=False,
    )


# ------------------------------------------------------------------ frameworks as data


def test_built_in_frameworks_load_and_name_real_suites() -> None:
    frameworks = builtin()
    assert set(BUILT_IN) <= set(frameworks)
    suites = set(registry.suites.names())
    for framework in frameworks.values():
        assert framework.reference and framework.scope
        for clause in framework.clauses:
            assert clause.evidence, f"{framework.id}/{clause.id} names no evidence"
            for spec in clause.evidence:
                assert spec.kind in KINDS
                named = spec.metric or spec.details or spec.suite
                if named is not None:
                    assert named.split(".")[0] in suites, (framework.id, clause.id, named)


def test_run_file_audit_section_is_validated_with_did_you_mean(tmp_path: Path) -> None:
    run = Path("suites/default.yaml")
    config, _ = load_run_config(run, ["audit={frameworks: [nyc-ll144], not_measured: {nyc-ll144/5-301(c): binary tool}}"])
    assert config.audit is not None and config.audit.not_measured == {"nyc-ll144/5-301(c)": "binary tool"}
    assert "audit" not in load_run_config(run)[0].model_dump(mode="json")  # digests of other runs unchanged
    with pytest.raises(ConfigError) as err:
        load_run_config(run, ["audit={frameworks: [nyc-ll144], not_measured: {nyc-ll144/5-301(e): x}}"])
    assert MSG_UNKNOWN_CLAUSE.format(ref="nyc-ll144/5-301(e)", hint="") .removesuffix("") in err.value.message
    assert "audit.not_measured:" in err.value.message and "did you mean 'nyc-ll144/5-301(" in err.value.message
    with pytest.raises(ConfigError) as err:
        load_run_config(run, ["audit={frameworks: [nist-ai-rfm]}"])
    assert "audit.frameworks: unknown framework 'nist-ai-rfm' (did you mean 'nist-ai-rmf'?)" in err.value.message
    with pytest.raises(ConfigError) as err:
        load_run_config(run, ["audit={frameworks: [nyc-ll144], statements: {sr-11-7/V-benchmarking: y}}"])
    assert "framework 'sr-11-7' is not in audit.frameworks (nyc-ll144)" in err.value.message
    with pytest.raises(ConfigError) as err:
        load_run_config(run, ["audit={frameworks: [nyc-ll144], statments: {}}"])
    assert "audit.statments: unknown key (did you mean 'statements'?)" in err.value.message


def test_user_framework_file_is_read_and_stored_inline(tmp_path: Path) -> None:
    own = tmp_path / "policy.yaml"
    own.write_text(
        "id: bank-mrm\ntitle: Bank policy MRM-4\nclauses:\n"
        "  - id: '4.2'\n    title: Outcomes analysis\n    evidence:\n      - metric: accuracy.accuracy\n"
        "  - id: '4.3'\n    title: Benchmarking\n    evidence:\n      - challenger: true\n",
        encoding="utf-8",
    )
    config, _ = load_run_config(Path("suites/default.yaml"), [f"audit={{frameworks: [{own}], not_measured: {{bank-mrm/4.3: none yet}}}}"])
    dumped = config.model_dump(mode="json")["audit"]["frameworks"][0]
    assert dumped["id"] == "bank-mrm" and dumped["clauses"][1]["evidence"] == [{"challenger": True}]
    assert AuditConfig.model_validate(config.model_dump(mode="json")["audit"]).resolved()[0].id == "bank-mrm"
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\ntitle: X\nclauses:\n  - id: '1'\n    title: t\n    evidence:\n      - metric: accuracy\n        suite: accuracy\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_run_config(Path("suites/default.yaml"), [f"audit={{frameworks: [{bad}]}}"])
    assert f"{bad}: invalid framework" in err.value.message and "clauses[0].evidence[0]" in err.value.message
    with pytest.raises(ConfigError) as err:
        load_run_config(Path("suites/default.yaml"), [f"audit={{frameworks: [{tmp_path / 'missing.yaml'}]}}"])
    assert "framework file not found" in err.value.message


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_clause_references_never_crash_and_unknown_ones_are_refused(ref: str) -> None:
    frameworks = [builtin()["nyc-ll144"]]
    known = {f"nyc-ll144/{c.id}" for c in frameworks[0].clauses}
    problems = clause_problems(frameworks, [ref])
    assert (problems == []) == (ref in known)


# ------------------------------------------------------------------ evidence on a run folder


def _with_audit(folder: Path, audit: dict[str, Any]) -> Path:
    raw = json.loads((folder / RECORD_FILE).read_text(encoding="utf-8"))
    raw["config"]["audit"] = audit
    (folder / RECORD_FILE).write_text(json.dumps(raw, sort_keys=True, indent=2) + "\n", encoding="utf-8")
    write_manifest(folder)
    return folder


def test_derived_and_declared_reasons(tmp_path: Path) -> None:
    run = _with_audit(write_run(tmp_path / "run", Spec("m", accuracy=0.8)), {
        "frameworks": ["sr-11-7", "nist-ai-rmf"],
        "not_measured": {"nist-ai-rmf/MEASURE-2.10": "no personal data is processed"},
        "statements": {"sr-11-7/V-limitations": "Scores below 0.5 are not used."},
    })
    view = load_view(run)
    audit = AuditConfig.model_validate(view.record.config["audit"])
    mapped = {f"{f.id}/{r.clause.id}": r for f, results in evidence_map(Context(view=view, audit=audit)) for r in results}
    assert all(r.evidence or r.reasons for r in mapped.values())
    assert mapped["sr-11-7/V-benchmarking"].reasons == (MSG_NO_CHALLENGER,)
    assert mapped["nist-ai-rmf/MEASURE-2.10"].reasons == (MSG_DECLARED.format(reason="no personal data is processed"),)
    assert MSG_SUITE_NOT_RUN.format(suite="explain") in mapped["nist-ai-rmf/MEASURE-2.9"].reasons
    assert MSG_NO_STATEMENT.format(ref="sr-11-7/V-conceptual-soundness") in mapped["sr-11-7/V-conceptual-soundness"].reasons
    statement = next(e for e in mapped["sr-11-7/V-limitations"].evidence if e.kind == "statement")
    assert statement.value == "Scores below 0.5 are not used."
    accuracy = next(e for e in mapped["sr-11-7/V-outcomes-analysis"].evidence if e.label == "accuracy.accuracy")
    record = load_record(run)
    pointer = accuracy.path.split("#")[1].strip("/").split("/")
    metric = record.suites[int(pointer[1])].metrics[int(pointer[3])]
    assert (metric.name, metric.value, metric.n) == ("accuracy", accuracy.value, accuracy.n)
    manifest = json.loads((run / "manifest.json").read_text())
    assert accuracy.sha256 == next(f["sha256"] for f in manifest["files"] if f["path"] == RECORD_FILE)


@pytest.fixture(scope="module")
def ll144_run(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """A real run of the tiny model: accuracy and bias on data with sex and race columns, some
    of them empty (unknown), mapped onto three frameworks."""
    root = tmp_path_factory.mktemp("ll144")
    rows = make_rows(160, seed=3)
    for i, row in enumerate(rows):
        row["sex"] = "" if i % 23 == 0 else ("F" if i % 3 else "M")
        row["race"] = "" if i % 31 == 0 else ("A", "B", "C", "D")[i % 4]
        row.pop("group")
    data = root / "people.csv"
    with data.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (root / "run.yaml").write_text(
        f"""name: ll144
seed: 0
threads: 1
dataset:
  path: {data}
  columns: {{id: id, text: text, label: label, groups: [sex, race]}}
  labels: [neg, pos]
  split_fractions: {{train: 0.5, test: 0.5}}
model: {{path: {tiny_model_dir}, max_length: 32, batch_size: 32}}
suites:
  - name: accuracy
    params: {{n_bootstrap: 100}}
  - name: bias
    params: {{templates: false, swaps: false, census_names: false, n_boot: 20, n_perm: 200, min_group_size: 2}}
audit:
  frameworks: [eu-ai-act-annex-iv, nist-ai-rmf, nyc-ll144]
  not_measured: {{nist-ai-rmf/MEASURE-2.12: "not assessed for a tiny test model"}}
""",
        encoding="utf-8",
    )
    done = harness("run", str(root / "run.yaml"), "--out", str(root / "run"))
    assert done.returncode == 0, done.stdout + done.stderr
    return root / "run"


def _clause_rows(document: str) -> dict[str, str]:
    section = document.split('<section id="evidence-map">')[1].split("</section>")[0]
    out = {}
    for chunk in section.split('<tr class="clause ')[1:]:
        framework = re.search(r'id="clause-([a-z0-9-]+?)-', chunk)
        clause = re.search(r"<code>(.*?)</code>", chunk)
        assert framework and clause
        out[html.unescape(clause.group(1))] = chunk
    return out


def test_every_clause_has_evidence_or_a_reason_on_a_real_run(ll144_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    done = harness("report", str(ll144_run), "-o", str(out))
    assert done.returncode == 0, done.stderr
    document = out.read_text(encoding="utf-8")
    rows = _clause_rows(document)
    frameworks = builtin()
    expected = sum(len(frameworks[f].clauses) for f in ("eu-ai-act-annex-iv", "nist-ai-rmf", "nyc-ll144"))
    assert len(rows) == expected
    for ident, chunk in rows.items():
        measured = chunk.startswith("measured")
        assert measured == ('class="data evidence"' in chunk), ident
        assert measured or "not measured — " in chunk, ident
    # LL144's calculations are all evidenced on data with group columns and their intersection.
    for clause in ("5-301(b)(1)", "5-301(b)(2)", "5-301(b)(3)(i)-(ii)", "5-301(b)(3)(iii)", "5-301(b)(5)", "5-301(c)", "5-301(d)"):
        assert rows[clause].startswith("measured"), clause
    assert "bias.impact.race+sex.min_impact_ratio" in rows["5-301(b)(3)(iii)"]
    assert re.findall(r"bias\.impact\.(\w+)\.min_impact_ratio", rows["5-301(b)(3)(i)-(ii)"]) == ["race", "sex"]
    assert html.escape("not assessed for a tiny test model", quote=True) in rows["MEASURE-2.12"]
    assert "not measured — no attestation with role &#x27;auditor&#x27;" in rows["5-300-independent-auditor"]
    assert '<section id="impact-ratios">' in document and "Number of applicants" in document


def test_one_group_column_has_no_intersection(tmp_path: Path, ll144_run: Path) -> None:
    raw = json.loads((ll144_run / RECORD_FILE).read_text(encoding="utf-8"))
    raw["dataset"]["group_columns"] = ["sex"]
    for suite in raw["suites"]:
        suite["metrics"] = [m for m in suite["metrics"] if "+" not in m["name"]]
    run = tmp_path / "one"
    run.mkdir()
    (run / RECORD_FILE).write_text(json.dumps(raw), encoding="utf-8")
    view = load_view(run)
    audit = AuditConfig.model_validate({"frameworks": ["nyc-ll144"]})
    (_, results), = evidence_map(Context(view=view, audit=audit))
    by_id = {r.clause.id: r for r in results}
    assert by_id["5-301(b)(3)(iii)"].reasons == (MSG_NO_INTERSECTION,)
    raw["dataset"]["group_columns"] = []
    (run / RECORD_FILE).write_text(json.dumps(raw), encoding="utf-8")
    (_, results), = evidence_map(Context(view=load_view(run), audit=audit))
    assert {r.clause.id: r for r in results}["5-301(b)(1)"].reasons == (MSG_NO_GROUPS,)


def test_report_framework_option_overrides_and_typos_fail(ll144_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    done = harness("report", str(ll144_run), "-o", str(out), "--framework", "sr-11-7")
    assert done.returncode == 0, done.stderr
    assert 'id="framework-sr-11-7"' in out.read_text() and 'id="framework-nyc-ll144"' not in out.read_text()
    done = harness("report", str(ll144_run), "-o", str(out), "--framework", "sr-11-8")
    assert done.returncode == 2 and "--framework: unknown framework 'sr-11-8' (did you mean 'sr-11-7'?)" in done.stderr
