"""``harness show RUN_DIR [--json]``: a run's record as tables (or as JSON).

Reads the record only; ``print_summary`` is also what ``harness run`` prints at the end.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table
from rich.text import Text

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
    precision = precision_line(record.model.precision)
    if precision is not None:
        head.add_row("precision", precision)
    out.print(head)
    for suite in record.suites:
        out.print(suite_table(suite))


def precision_line(precision: Mapping[str, Any] | None) -> Text | None:
    """The evaluation precision in one line, with the fp32 agreement probe when it ran. A probe
    below ``model.agreement.min_agreement`` is printed in full and in red: it is logged as a
    warning too, but run.log is not where a person looks at the end of a run."""
    if not precision:
        return None
    line = Text(f"{precision.get('precision')} ({precision.get('reason', '')})")
    probe = precision.get("agreement")
    if isinstance(probe, Mapping) and probe.get("agreement") is not None:
        line.append(
            f"; fp32 agreement {100 * probe['agreement']:.2f}% on {probe.get('n')} examples, "
            f"max |Δp| {probe.get('max_abs_dp', float('nan')):.4f}"
        )
        if probe.get("warning"):
            line.append(f"\n{probe['warning']}", style="red")
    return line


def suite_table(suite: Any) -> Table:
    """One suite's first metrics. Metric names are never cut: their column is as wide as the
    longest name and does not wrap; on a narrow terminal the interval column wraps instead."""
    shown = suite.metrics[:SHOWN_METRICS] if suite.status == "ok" else []
    width = max((len(m.name) for m in shown), default=6)
    table = Table(title=f"{suite.name} metrics", box=box.SIMPLE_HEAD, padding=(0, 1))
    table.add_column("metric", no_wrap=True, min_width=width)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("95% CI")
    table.add_column("n", justify="right", no_wrap=True)
    if suite.status != "ok":
        table.add_row(Text("error", style="red"), Text(suite.error or suite.status), "", "")
        return table
    for m in shown:
        ci = (
            f"[{m.ci_low:.4f}, {m.ci_high:.4f}]"
            if m.ci_low is not None and m.ci_high is not None
            else ""
        )
        value = "—" if m.value is None else f"{m.value:.4f}"
        table.add_row(Text(m.name), value, ci, "" if m.n is None else str(m.n))
    if len(suite.metrics) > SHOWN_METRICS:
        table.add_row(f"… {len(suite.metrics) - SHOWN_METRICS} more", "", "", "")
    return table


def register(app: typer.Typer) -> None:
    command(app, show)
