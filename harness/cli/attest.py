"""``harness attest RUN --role ROLE --name NAME --statement TEXT --key KEY``: sign off a run.

Appends a dated, Ed25519-signed attestation over the run folder's manifest to
``attestations.jsonl`` (``harness.audit.attest``); ``harness verify`` checks every attestation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli.handler import command


def attest(
    run_dir: Annotated[Path, typer.Argument(help="The run folder to sign off.")],
    role: Annotated[
        str, typer.Option("--role", help="What the signer is: validator, approver, auditor…")
    ],
    name: Annotated[str, typer.Option("--name", help="The signer's name.")],
    statement: Annotated[str, typer.Option("--statement", help="What the signer attests.")],
    key: Annotated[Path, typer.Option("--key", help="Ed25519 private key (PEM, unencrypted).")],
) -> None:
    """Append a dated, signed attestation over the run's manifest (the folder must verify)."""
    from harness.audit.attest import attest_run

    done = attest_run(run_dir, role=role, name=name, statement=statement, private_key=key)
    typer.echo(
        f"{done.who}: over manifest sha256 {done.payload['manifest_sha256'][:16]}… "
        f"with key {done.payload['key_id']}"
    )


def register(app: typer.Typer) -> None:
    command(app, attest)
