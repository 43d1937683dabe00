"""``harness run [FILE]``: fine-tune or load the model, run every suite, write the record.

torch and the suites are imported when the command runs (``harness.run.pipeline``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli.console import err, out
from harness.cli.handler import command, keeps_finished_work
from harness.cli.show import print_summary

DEFAULT_RUN_FILE = Path("suites/default.yaml")


def resolve_run_file(file: Path | None) -> Path:
    """The run file to use: the default, FILE itself, or suites/FILE.yaml for a bare name."""
    if file is None:
        return DEFAULT_RUN_FILE
    if not file.exists() and not file.suffix and (Path("suites") / f"{file}.yaml").is_file():
        return Path("suites") / f"{file}.yaml"
    return file


def run(
    file: Annotated[
        Path | None,
        typer.Argument(
            help="Run file (YAML); default suites/default.yaml; a bare name means suites/NAME.yaml."
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a config key, e.g. --set seed=3 (repeatable)."),
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Run folder (default: OUTPUT_DIR/NAME-CONFIGHASH)."),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option("--resume", help="Continue the run in this folder (same as --out)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Start over even if the folder holds a run.")
    ] = False,
    retrain: Annotated[
        bool, typer.Option("--retrain", help="Fine-tune again even if a cached checkpoint exists.")
    ] = False,
) -> None:
    """Run a run file: fine-tune or load the model, run every suite, write the record."""
    from harness.cli.progress import ProgressUI
    from harness.run.pipeline import execute

    path = resolve_run_file(file)
    with keeps_finished_work("finished work is kept"), ProgressUI(err) as ui:
        result = execute(
            path,
            overrides=set_ or [],
            out_dir=resume or out_dir,
            force=force,
            retrain=retrain,
            progress_factory=ui.factory,
        )
    if result.reused:
        err.print(f"[green]already complete[/]: {result.run_dir} (use --force to run again)")
    print_summary(result.record)
    out.print(f"run folder: {result.run_dir}")
    raise typer.Exit(int(result.exit_code))


def register(app: typer.Typer) -> None:
    command(app, run)
