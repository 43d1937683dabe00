"""CLI commands ``gate``, ``verify`` and ``sign``: parse, call one function, print.

``register(app)`` adds them to the main typer app. Only typer is imported here; the gate,
statistics and (for ``--replay``) torch are imported when a command runs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def gate(
    baseline: Annotated[
        Path, typer.Option("--baseline", help="Baseline run folder or record.json.")
    ],
    candidate: Annotated[
        Path, typer.Option("--candidate", help="Candidate run folder or record.json.")
    ],
    policy: Annotated[Path, typer.Option("--policy", help="Policy YAML with the rules.")],
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
        Path | None, typer.Option("--json", help="Write the verdict as JSON.")
    ] = None,
) -> None:
    """Decide whether CANDIDATE regresses against BASELINE. Exit 0 pass, 1 regression, 2 error.

    The markdown summary is also appended to $GITHUB_STEP_SUMMARY when it is set.
    """
    from harness.errors import HarnessError

    try:
        from harness.gate import run_gate
        from harness.gate_output import print_table, write_outputs
        from harness.gate_rules import load_policy

        verdict = run_gate(baseline, candidate, load_policy(policy), allow_mismatch=allow_mismatch)
        print_table(verdict)
        write_outputs(verdict, junit=junit, markdown_file=markdown, json_file=json_out)
    except HarnessError as exc:
        _fail(exc.message, int(exc.exit_code))
    raise typer.Exit(verdict.exit_code)


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
        from harness.verify import verify_run

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
        from harness.verify import sign_run

        out = sign_run(run_dir, key)
    except HarnessError as exc:
        _fail(exc.message, int(exc.exit_code))
    typer.echo(f"wrote {out}")


def register(app: typer.Typer) -> None:
    app.command("gate")(gate)
    app.command("verify")(verify)
    app.command("sign")(sign)
