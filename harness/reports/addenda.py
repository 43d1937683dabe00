"""The report's audit sections beyond the run's own results, assembled for ``reports.audit``:
impact ratios (LL144 layout), the challenger comparison, the evidence map, sign-off, and the
example explorer; plus the banner that marks a run changed after it was signed.

``audit.render`` calls ``sections(view, options)`` once and places what it returns; each
section is present only when the run has something for it (impact ratios only with group
columns, the challenger only with ``--challenger``, the evidence map only with an ``audit:``
section or ``--framework``, sign-off only with attestations, the explorer only with
predictions).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.frameworks import AuditConfig, resolve
from harness.render.html import Markup, el
from harness.reports import challenger_html, evidence_html, explorer, impact_html
from harness.reports.view import RunView

MSG_BAD_FRAMEWORK = "--framework: {problem}"
MSG_BAD_AUDIT = "{run}: the record's audit section no longer validates: {problem}"
SIGN_OFF = ("sign-off", "Sign-off")
AFTER = "worst-cases"  # the report section these follow


@dataclass(frozen=True)
class ReportOptions:
    """What ``harness report`` adds to a run's own content."""

    challenger: Path | None = None
    allow_mismatch: bool = False
    frameworks: tuple[str, ...] = ()  # map onto these, whatever the run file's audit section says


@dataclass
class Addenda:
    sections: list[tuple[str, str, Markup]] = field(default_factory=list)  # (anchor, title, html)
    banner: Markup | None = None

    def toc(self) -> list[tuple[str, str]]:
        return [(ident, title) for ident, title, _ in self.sections]

    def html(self) -> list[Markup]:
        return [m for _, _, m in self.sections]

    def toc_with(self, toc: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
        """The report's contents with these sections after "worst-cases" (else at the end)."""
        ids = [ident for ident, _ in toc]
        at = ids.index(AFTER) + 1 if AFTER in ids else len(toc)
        return [*toc[:at], *self.toc(), *toc[at:]]


def stylesheet() -> str:
    return explorer.stylesheet()


def script_hash() -> str:
    """The CSP source of the report's one inline script."""
    return explorer.script_hash()


def audit_config(view: RunView, options: ReportOptions) -> AuditConfig | None:
    raw = view.record.config.get("audit")
    if options.frameworks:
        try:
            ids = {resolve(f).id for f in options.frameworks}
        except ConfigError as exc:
            raise ConfigError(MSG_BAD_FRAMEWORK.format(problem=exc.message)) from None
        base = dict(raw) if isinstance(raw, dict) else {}
        for key in ("not_measured", "statements"):  # keep what was declared for these frameworks
            declared = base.get(key)
            kept = declared.items() if isinstance(declared, dict) else ()
            base[key] = {k: v for k, v in kept if str(k).partition("/")[0] in ids}
        base["frameworks"] = list(options.frameworks)
        raw = base
    if raw is None:
        return None
    from pydantic import ValidationError

    try:
        return AuditConfig.model_validate(raw)
    except ValidationError as exc:
        problem = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        if options.frameworks:
            raise ConfigError(MSG_BAD_FRAMEWORK.format(problem=problem)) from None
        raise ConfigError(MSG_BAD_AUDIT.format(run=view.run_dir, problem=problem)) from None


def _sign_off(statuses: list[Any]) -> Markup:
    head = el("tr", [el("th", c, scope="col") for c in ("#", "Role", "Name", "Statement", "Signed (UTC)", "Key", "Status")])
    rows = [
        el(
            "tr",
            el("td", s.attestation.index, cls="num"),
            el("td", s.attestation.payload["role"]),
            el("td", s.attestation.payload["name"]),
            el("td", el("p", s.attestation.payload["statement"], cls="ex-text")),
            el("td", s.attestation.payload["signed_utc"]),
            el("td", el("code", s.attestation.payload["key_id"])),
            el("td", el("span", "current", cls="badge ok") if s.current
               else [el("span", "run changed after signing", cls="badge bad"),
                     el("ul", [el("li", p) for p in s.problems], cls="desc")]),
        )
        for s in statuses
    ]
    intro = el(
        "p",
        "Attestations appended by harness attest (attestations.jsonl), each an Ed25519 "
        "signature over the run's manifest.json. Current: the signature verifies and the run "
        "folder is still exactly what was signed. Trust in a key is checked with "
        "harness verify --attester-key.",
        cls="muted",
    )
    return el("section", el("h2", SIGN_OFF[1]), intro,
              el("table", el("thead", head), el("tbody", rows), cls="data"), id=SIGN_OFF[0])


def _section(ident: str, title: str, body: list[Any]) -> tuple[str, str, Markup]:
    return ident, title, el("section", el("h2", title), *body, id=ident)


def sections(view: RunView, options: ReportOptions | None = None) -> Addenda:
    from harness.audit.attest import check_attestations
    from harness.reports.evidence import Context, evidence_map

    options = options or ReportOptions()
    out = Addenda()
    statuses = check_attestations(view.run_dir)
    if any(not s.current for s in statuses):
        out.banner = el("p", "This run changed after it was signed: see Sign-off.", cls="notice stale")
    if impact_html.impact_details(view.record):
        out.sections.append(_section(*impact_html.SECTION, impact_html.section_body(view.record)))
    comparison = None
    if options.challenger is not None:
        from harness.reports.challenger import compare

        comparison = compare(view.run_dir, options.challenger, allow_mismatch=options.allow_mismatch)
        out.sections.append(_section(*challenger_html.SECTION, challenger_html.section_body(comparison)))
    audit = audit_config(view, options)
    if audit is not None:
        ctx = Context(view=view, audit=audit, attestations=statuses, challenger=comparison)
        out.sections.append(_section(*evidence_html.SECTION, evidence_html.section_body(evidence_map(ctx))))
    if statuses:
        out.sections.append((*SIGN_OFF, _sign_off(statuses)))
    if view.predictions:
        out.sections.append(_section(*explorer.SECTION, explorer.section_body(view)))
    return out
