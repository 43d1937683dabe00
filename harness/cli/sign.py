"""``harness sign RUN_DIR --key KEY``: sign a run folder's manifest with Ed25519."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli.handler import command


def sign(
    run_dir: Annotated[Path, typer.Argument(help="The run folder whose manifest to sign.")],
    key: Annotated[Path, typer.Option("--key", help="Ed25519 private key (PEM, unencrypted).")],
) -> None:
    """Sign a run folder's manifest.json with Ed25519; writes manifest.sig."""
    from harness.audit.verify import sign_run

    typer.echo(f"wrote {sign_run(run_dir, key)}")


def register(app: typer.Typer) -> None:
    command(app, sign)
