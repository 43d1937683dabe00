"""``harness review export RUN`` / ``harness review import RUN SHEET``: the human review loop
of a run's successful adversarial examples (``harness.audit.review``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli.handler import command


def export(
    run_dir: Annotated[Path, typer.Argument(help="The run folder with a robustness suite.")],
    out: Annotated[
        Path | None,
        typer.Option(
            "-o", "--out", help="Sheet to write (.csv or .jsonl); default RUN.review.csv."
        ),
    ] = None,
) -> None:
    """Write a review sheet of every successful attack (blind to the automatic verdict)."""
    from harness.audit.review import export_sheet

    target = out or run_dir.with_name(run_dir.name + ".review.csv")
    n = export_sheet(run_dir, target)
    typer.echo(f"wrote {target} ({n} adversarial example(s) to review)")


def import_(
    run_dir: Annotated[Path, typer.Argument(help="The run folder the sheet was exported from.")],
    sheet: Annotated[Path, typer.Argument(help="The filled sheet (.csv or .jsonl).")],
    reviewer: Annotated[
        str | None,
        typer.Option("--reviewer", help="Reviewer name (else the sheet's 'reviewer' column)."),
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option("--key", help="Ed25519 private key (PEM): re-sign the updated manifest."),
    ] = None,
) -> None:
    """Store a filled sheet's valid/invalid judgements in the run; update record and manifest."""
    from harness.audit.review import import_sheet

    summary = import_sheet(run_dir, sheet, reviewer=reviewer, key=key)
    typer.echo(
        f"imported {summary['n_judged']} judgement(s) by {', '.join(summary['reviewers'])} into "
        f"{run_dir}"
    )
    for recipe, figures in summary["recipes"].items():
        typer.echo(
            f"  {recipe}: {figures['human_valid']} of {figures['reviewed']} reviewed successes "
            f"judged valid"
        )


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        name="review",
        help="Human review of a run's adversarial examples (export a sheet, import judgements).",
        no_args_is_help=True,
    )
    command(group, export)
    command(group, import_, name="import")
    app.add_typer(group, name="review")
