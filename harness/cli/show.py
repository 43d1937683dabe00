"""``harness show RUN_DIR [--json]``: a run's record as tables (or as JSON).

Reads the record only; ``print_summary`` is also what ``harness run`` prints at the end.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from harness.cli.console import out
from harness.cli.handler import command

SHOWN_METRICS = 12  # per suite; the rest is summed up in one "… N more" row


def show(
    run_dir: Annotated[Path, typer.Argument(help="A run folder or record.json.")],
    json_: Annotated[bool, typer.Option("--json", help="Print the record as JSON.")] = False,
) -> None:
    """Show a run's record: status, model, data and every suite's metrics."""
    from harness.records import dump_record, load_record

    record = load_record(run_dir)
    if json_:
        sys.stdout.write(dump_record(record))
        return
    print_summary(record)


def print_summary(record: Any) -> None:
    """The run's head (model, data, device) and the first metrics of every suite."""
    head = Table(title=f"run {record.run_id} — {record.status}", show_header=False)
    head.add_row(
        "model", f"{record.model.name} ({record.model.source}) sha256 {record.model.digest[:12]}"
    )
    head.add_row("data", f"{record.dataset.name}:{record.dataset.eval_split}")
    head.add_row(
        "device",
        f"{record.provenance.device}, {record.provenance.torch_threads} threads, seed {record.provenance.seed}",
    )
    out.print(head)
    table = Table(title="metrics")
    for column in ("suite", "metric", "value", "95% CI", "n"):
        table.add_column(column, justify="right" if column in ("value", "n") else "left")
    for suite in record.suites:
        if suite.status != "ok":
            table.add_row(suite.name, "[red]error[/]", suite.error or suite.status, "", "")
            continue
        for m in suite.metrics[:SHOWN_METRICS]:
            ci = (
                f"[{m.ci_low:.4f}, {m.ci_high:.4f}]"
                if m.ci_low is not None and m.ci_high is not None
                else ""
            )
            value = "—" if m.value is None else f"{m.value:.4f}"
            table.add_row(suite.name, m.name, value, ci, "" if m.n is None else str(m.n))
        if len(suite.metrics) > SHOWN_METRICS:
            table.add_row(suite.name, f"… {len(suite.metrics) - SHOWN_METRICS} more", "", "", "")
    out.print(table)


def register(app: typer.Typer) -> None:
    command(app, show)
