"""``harness rerun RUN_DIR``: replay a run's recorded config and list every difference.

torch and the suites are imported when the command runs (``harness.run.rerun``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from harness.cli.console import out
from harness.cli.handler import command
from harness.errors import ExitCode


def rerun(
    run_dir: Annotated[Path, typer.Argument(help="A finished run folder.")],
    out_dir: Annotated[
        Path | None, typer.Option("--out", "-o", help="Where to replay (default RUN_DIR.rerun).")
    ] = None,
) -> None:
    """Replay a run's recorded config and report any difference (exit 1 if any)."""
    from harness.run.rerun import rerun as replay

    replay_dir, diffs = replay(run_dir, out_dir or run_dir.with_name(run_dir.name + ".rerun"))
    if not diffs:
        out.print(
            f"[green]identical[/]: {replay_dir} reproduces {run_dir} (predictions byte for byte, every metric)"
        )
        return
    table = Table(title=f"{len(diffs)} difference(s)")
    for column in ("where", "original", "replayed"):
        table.add_column(column)
    for d in diffs:
        table.add_row(d.where, str(d.original), str(d.replayed))
    out.print(table)
    raise typer.Exit(int(ExitCode.REGRESSION))


def register(app: typer.Typer) -> None:
    command(app, rerun)
