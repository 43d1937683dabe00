"""CLI commands ``gate``, ``verify`` and ``sign``: parse, call one function, print.

``register(app)`` adds them to the main typer app. Only typer is imported here; the gate,
statistics and (for ``--replay``) torch are imported when a command runs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


MULTI_VALUE_OPTIONS = ("--baseline", "--candidate")


def expand_multi_values(args: list[str]) -> list[str]:
    """``--baseline A1 A2 --candidate B1 B2`` -> ``--baseline A1 --baseline A2 …`` (click
    options take one value each; replicate sets are written the short way)."""
    out: list[str] = []
    current: str | None = None
    for arg in args:
        if arg in MULTI_VALUE_OPTIONS:
            current = arg
            out.append(arg)
            continue
        if arg.startswith("-"):
            current = None
        elif current is not None and out and out[-1] != current:
            out.append(current)
        out.append(arg)
    return out


def gate(
    policy: Annotated[Path, typer.Option("--policy", help="Policy YAML with the rules.")],
    baseline: Annotated[
        list[Path] | None,
        typer.Option(
            "--baseline",
            help="Baseline run folder or record.json; several (replicate runs of different "
            "seeds) are tested with their seed-to-seed variance.",
        ),
    ] = None,
    candidate: Annotated[
        list[Path] | None,
        typer.Option("--candidate", help="Candidate run folder(s) or record.json(s)."),
    ] = None,
    plan: Annotated[
        bool,
        typer.Option(
            "--plan",
            help="Print how many examples each rule needs to detect its tolerance, then exit "
            "(no candidate needed; a baseline makes the estimate data-based).",
        ),
    ] = False,
    discordance: Annotated[
        float | None,
        typer.Option(
            "--discordance",
            min=0.0,
            max=1.0,
            help="With --plan: share of examples whose outcome differs between the runs.",
        ),
    ] = None,
    allow_mismatch: Annotated[
        bool,
        typer.Option(
            "--allow-mismatch", help="Compare even if split, suite version or parameters differ."
        ),
    ] = False,
    junit: Annotated[
        Path | None, typer.Option("--junit", help="Write JUnit XML (one test case per rule).")
    ] = None,
    markdown: Annotated[
        Path | None, typer.Option("--markdown", help="Write a markdown summary.")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the verdict (or plan) as JSON.")
    ] = None,
) -> None:
    """Decide whether CANDIDATE regresses against BASELINE. Exit 0 pass, 1 regression, 2 error.

    A rule that cannot tell (too few examples, or a test too weak for the tolerance) is
    inconclusive: exit 0 with a warning unless the policy says on_inconclusive: fail. The
    markdown summary is also appended to $GITHUB_STEP_SUMMARY when it is set.
    """
    from harness.errors import HarnessError

    try:
        from harness.gate.rules import load_policy

        rules = load_policy(policy)
        if plan:
            _plan(rules, baseline or [], discordance, json_out)
            raise typer.Exit(0)
        if not baseline or not candidate:
            _fail("--baseline and --candidate are required (or --plan)", 2)
        from harness.gate.evaluate import run_gate
        from harness.gate.outputs import print_table, write_outputs

        verdict = run_gate(baseline, candidate, rules, allow_mismatch=allow_mismatch)
        print_table(verdict)
        write_outputs(verdict, junit=junit, markdown_file=markdown, json_file=json_out)
    except HarnessError as exc:
        _fail(exc.message, int(exc.exit_code))
    raise typer.Exit(verdict.exit_code)


def _plan(rules: Any, baseline: list[Path], discordance: float | None, json_out: Path | None) -> None:
    from harness.gate.inputs import load_run
    from harness.gate.outputs import print_plan
    from harness.gate.plan import plan

    rows = plan(rules, [load_run(p) for p in baseline], discordance=discordance)
    print_plan(rows)
    if json_out is not None:
        from harness.records import canonical_json
        from harness.store import atomic_write_text

        atomic_write_text(json_out, canonical_json({"plan": [r.to_json() for r in rows]}))


def verify(
    run_dir: Annotated[Path, typer.Argument(help="The run folder to check.")],
    key: Annotated[
        Path | None,
        typer.Option("--key", help="Ed25519 public key (PEM): also check manifest.sig."),
    ] = None,
    replay: Annotated[
        int | None,
        typer.Option(
            "--replay", min=1, help="Re-predict N recorded examples with the recorded model."
        ),
    ] = None,
) -> None:
    """Check a run folder against its manifest and itself; exit 1 on any tampering."""
    from harness.errors import HarnessError

    try:
        from harness.audit.verify import verify_run

        report = verify_run(run_dir, public_key=key, replay_n=replay)
    except HarnessError as exc:
        _fail(exc.message, int(exc.exit_code))
    checked = ", ".join(report.checked)
    if report.ok:
        typer.echo(f"OK: {run_dir} ({checked})")
    else:
        typer.echo(
            f"TAMPERED or inconsistent: {run_dir} "
            f"({len(report.problems)} problem(s); checked {checked})"
        )
        for problem in report.problems:
            typer.echo(f"  - {problem}")
        sys.stdout.flush()
    raise typer.Exit(report.exit_code)


def sign(
    run_dir: Annotated[Path, typer.Argument(help="The run folder whose manifest to sign.")],
    key: Annotated[Path, typer.Option("--key", help="Ed25519 private key (PEM, unencrypted).")],
) -> None:
    """Sign a run folder's manifest.json with Ed25519; writes manifest.sig."""
    from harness.errors import HarnessError

    try:
        from harness.audit.verify import sign_run

        out = sign_run(run_dir, key)
    except HarnessError as exc:
        _fail(exc.message, int(exc.exit_code))
    typer.echo(f"wrote {out}")


def register(app: typer.Typer) -> None:
    app.command("gate")(gate)
    app.command("verify")(verify)
    app.command("sign")(sign)
