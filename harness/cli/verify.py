"""``harness verify RUN_DIR``: check a run folder against its manifest (and signature, and
optionally by re-predicting examples); exit 1 on any tampering.

The audit code is imported when the command runs; torch only for ``--replay``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from harness.cli.handler import command


def verify(
    run_dir: Annotated[Path, typer.Argument(help="The run folder to check.")],
    key: Annotated[
        Path | None,
        typer.Option("--key", help="Ed25519 public key (PEM): also check manifest.sig."),
    ] = None,
    attester_key: Annotated[
        list[Path] | None,
        typer.Option(
            "--attester-key",
            help="Public key (PEM) an attestation may be signed with; repeat for several. "
            "Without it, attestations are checked against the keys they carry.",
        ),
    ] = None,
    replay: Annotated[
        int | None,
        typer.Option(
            "--replay", min=1, help="Re-predict N recorded examples with the recorded model."
        ),
    ] = None,
) -> None:
    """Check a run folder against its manifest and itself; exit 1 on any tampering."""
    from harness.audit.verify import verify_run

    report = verify_run(run_dir, public_key=key, attester_keys=attester_key or None)
    if replay is not None:
        from harness.audit.replay import replay_into

        report = replay_into(report, replay)
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


def register(app: typer.Typer) -> None:
    command(app, verify)
