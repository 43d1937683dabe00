"""The closing sections: limitations and departures, and the provenance appendix."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness import __version__
from harness.records import canonical_json
from harness.render.html import Markup, el
from harness.reports.sections import kv_table, rows_table, section
from harness.reports.view import RunView
from harness.store import sha256_json

# ------------------------------------------------------------------ limitations


def limitations(view: RunView) -> Markup:
    record = view.record
    parts: list[Any] = []
    general = []
    if record.status != "complete":
        general.append(f"The run is {record.status}: some suites did not finish.")
    if not record.provenance.deterministic:
        general.append(
            "The run did not use deterministic algorithms; repeated runs may differ slightly."
        )
    if record.provenance.git_dirty:
        general.append("The harness checkout had uncommitted changes when the run was made.")
    if record.dataset.n_truncated:
        general.append(
            f"{record.dataset.n_truncated} evaluation example(s) were longer than "
            f"{record.model.max_length} tokens and were truncated."
        )
    for suite in record.suites:
        if suite.status != "ok":
            general.append(
                f"Suite {suite.name!r} {suite.status}"
                + (f": {suite.error}" if suite.error else ".")
            )
    parts.append(
        el("ul", [el("li", g) for g in general])
        if general
        else el("p", "No run-level limitations recorded.", cls="muted")
    )
    for suite in record.suites:
        if not (suite.departures or suite.warnings or suite.resources):
            continue
        parts.append(el("h3", suite.name))
        if suite.departures:
            parts.append(el("h4", "Departures from the reference method"))
            parts.append(el("ul", [el("li", d) for d in suite.departures]))
        if suite.warnings:
            parts.append(el("h4", "Warnings"))
            parts.append(el("ul", [el("li", w) for w in suite.warnings]))
        if suite.resources:
            parts.append(el("h4", "Resources used"))
            parts.append(rows_table([r.model_dump(mode="json") for r in suite.resources]))
    return section("limitations", "Limitations and departures", *parts)


# ------------------------------------------------------------------ provenance


def _facts(view: RunView) -> list[tuple[str, Any]]:
    """Identity, environment and timing of the run, as recorded."""
    record, prov = view.record, view.record.provenance
    tokenizer = record.model.tokenizer_digest
    return [
        ("Run id", record.run_id),
        ("Record schema", record.schema_version),
        ("record.json sha256", el("code", view.record_sha256)),
        ("Config sha256", el("code", prov.config_sha256)),
        ("Seed", prov.seed),
        ("Harness version (run)", prov.harness_version),
        ("Harness version (report)", __version__),
        ("Git commit", prov.git_commit),
        ("Git dirty", prov.git_dirty),
        ("Python", prov.python),
        ("OS", prov.os),
        ("CPU", prov.cpu),
        ("GPU", prov.gpu),
        ("Device", prov.device),
        ("Torch threads", prov.torch_threads),
        ("Deterministic", prov.deterministic),
        ("Started (UTC)", prov.started_utc),
        ("Finished (UTC)", prov.finished_utc),
        ("Model digest", el("code", record.model.digest)),
        ("Tokenizer digest", el("code", tokenizer) if tokenizer else None),
    ]


def _suites_table(view: RunView) -> Markup:
    return rows_table(
        [
            {
                "suite": s.name,
                "version": s.version,
                "status": s.status,
                "params sha256": sha256_json(s.params),
                "examples file": s.examples_file,
            }
            for s in view.record.suites
        ]
    )


def _manifest(view: RunView) -> list[Any]:
    if not (view.manifest and isinstance(view.manifest.get("files"), list)):
        return []
    return [
        el("h3", "Run folder manifest"),
        el("p", "Tree sha256: ", el("code", str(view.manifest.get("tree_sha256")))),
        rows_table([f for f in view.manifest["files"] if isinstance(f, Mapping)]),
    ]


def provenance(view: RunView) -> Markup:
    record, prov = view.record, view.record.provenance
    parts: list[Any] = [
        kv_table(_facts(view)),
        el("h3", "Packages"),
        kv_table(sorted(prov.packages.items())),
        el("h3", "Model files"),
        rows_table([f.model_dump(mode="json") for f in record.model.files])
        if record.model.files
        else el("p", "No file digests recorded.", cls="muted"),
        el("h3", "Dataset splits"),
        el(
            "p",
            f"{record.dataset.name} from {record.dataset.source}; "
            f"evaluated on {record.dataset.eval_split!r}.",
        ),
        rows_table([s.model_dump(mode="json") for s in record.dataset.splits]),
        el("h3", "Suites"),
        _suites_table(view),
        *_manifest(view),
        el("h3", "Exact configuration"),
        el("pre", canonical_json(record.config), cls="config"),
    ]
    return section("provenance", "Provenance appendix", *parts)
