"""``harness report RUN_DIR [-o FILE] [--pdf] [--challenger OTHER] [--framework F]``: the audit
report of one run folder.

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
    challenger: Annotated[
        Path | None,
        typer.Option(
            "--challenger",
            help="Another run folder to compare with, metric by metric, with the gate's paired "
            "tests (RUN_DIR is the champion).",
        ),
    ] = None,
    allow_mismatch: Annotated[
        bool,
        typer.Option(
            "--allow-mismatch", help="With --challenger: compare even if the runs' splits differ."
        ),
    ] = False,
    framework: Annotated[
        list[str] | None,
        typer.Option(
            "--framework",
            help="Map the run's evidence onto this framework (a built-in id or a YAML file), "
            "instead of the run file's audit.frameworks; repeat for several.",
        ),
    ] = None,
) -> None:
    """Write a self-contained HTML audit report (and optionally a PDF) for a run."""
    from harness.reports.addenda import ReportOptions
    from harness.reports.audit import write_report
    from harness.reports.pdf import html_to_pdf
    from harness.reports.sweep_report import is_sweep, write_sweep_report

    if is_sweep(run_dir):  # a sweep folder: the learning-curve report instead
        typer.echo(f"sweep report: {write_sweep_report(run_dir, output)}")
        return
    options = ReportOptions(
        challenger=challenger, allow_mismatch=allow_mismatch, frameworks=tuple(framework or ())
    )
    html_file = write_report(run_dir, output, options)
    typer.echo(f"report: {html_file}")
    if pdf:
        typer.echo(f"pdf: {html_to_pdf(html_file, html_file.with_suffix('.pdf'))}")


def register(app: typer.Typer) -> None:
    command(app, report)
