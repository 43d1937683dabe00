"""CLI group ``export``: ``model-card`` (a Hugging Face README.md with ``model-index`` metadata).

Only typer is imported here; the exporter reads records and never imports torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli import export_mlflow
from harness.cli.handler import command


def model_card(
    run_dir: Annotated[Path, typer.Argument(help="Run folder (or its record.json).")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o",
            help="File to write (default: RUN_DIR.model-card/README.md beside the run folder).",
        ),
    ] = None,
    every_metric: Annotated[
        bool,
        typer.Option("--all-metrics", help="Export every defined, directed metric, not the headlines."),
    ] = False,
) -> None:
    """Write a Hugging Face model card whose model-index metadata holds the run's results."""
    from harness.reports.hub_card import write_card

    typer.echo(f"model card: {write_card(run_dir, output, every_metric=every_metric)}")


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        name="export", help="Export a run's results in other formats.", no_args_is_help=True
    )
    command(group, model_card, name="model-card")
    export_mlflow.register(group)  # issue 22: `export mlflow`, its own module
    app.add_typer(group, name="export")
