"""``harness export mlflow RUN [--tracking-uri URI] [--experiment NAME]``: a run's record as
an MLflow run (params, metrics with their intervals, digests as tags, the record and the
report as artifacts). Registered into the ``export`` group of ``harness.cli.export``.

Only typer is imported here; mlflow is imported when the command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli.handler import command


def mlflow(
    run_dir: Annotated[Path, typer.Argument(help="Run folder (or its record.json).")],
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            "--tracking-uri",
            help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else a sqlite store "
            "mlflow.db beside the run folder).",
            envvar="MLFLOW_TRACKING_URI",
        ),
    ] = None,
    experiment: Annotated[
        str, typer.Option("--experiment", help="MLflow experiment (created when missing).")
    ] = "harness",
) -> None:
    """Log the run's params, metrics (with CI bounds and n), digests and report to MLflow."""
    from harness.reports.mlflow_export import export_run

    done = export_run(run_dir, tracking_uri=tracking_uri, experiment=experiment)
    what = "already exported as" if done.reused else "exported as"
    typer.echo(
        f"mlflow: {what} run {done.run_id} (experiment {done.experiment_id}) at {done.tracking_uri}"
    )


def register(group: typer.Typer) -> None:
    command(group, mlflow, name="mlflow")
