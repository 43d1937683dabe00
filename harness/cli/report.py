"""``harness report RUN_DIR [-o FILE] [--pdf]``: the audit report of one run folder.

Light imports only: the report reads records, never models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli.handler import command


def report(
    run_dir: Annotated[Path, typer.Argument(help="Run folder (or its record.json).")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="HTML file to write (default: RUN_DIR.report.html beside the run folder).",
        ),
    ] = None,
    pdf: Annotated[
        bool,
        typer.Option("--pdf", help="Also print a PDF beside the HTML with headless Chromium."),
    ] = False,
) -> None:
    """Write a self-contained HTML audit report (and optionally a PDF) for a run."""
    from harness.reports.audit import write_report
    from harness.reports.pdf import html_to_pdf

    html_file = write_report(run_dir, output)
    typer.echo(f"report: {html_file}")
    if pdf:
        typer.echo(f"pdf: {html_to_pdf(html_file, html_file.with_suffix('.pdf'))}")


def register(app: typer.Typer) -> None:
    command(app, report)
