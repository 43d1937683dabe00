"""``harness sweep SWEEP.yaml``: run a matrix of models x datasets x suites as ordinary runs.

Only typer and rich are imported at module level; the executors import torch (in the worker
processes) and ray (when ``--executor ray``) only when a sweep runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from harness.cli.console import err, out
from harness.cli.handler import command, keeps_finished_work
from harness.errors import ConfigError, HarnessError

DEFAULT_LEADERBOARD_SETTINGS = Path("leaderboard/site.yaml")

FileArgument = Annotated[
    Path, typer.Argument(help="Sweep file (YAML): a base run file and a matrix.")
]
ExecutorOption = Annotated[
    str, typer.Option("--executor", "-e", help="local (process pool, default) or ray.")
]
AddressOption = Annotated[
    str | None,
    typer.Option("--address", help="Ray cluster address (e.g. auto, ray://host:10001)."),
]
WorkersOption = Annotated[
    int | None, typer.Option("--workers", "-w", min=1, help="Local: jobs at once.")
]
RetriesOption = Annotated[
    int | None, typer.Option("--retries", min=0, help="Extra attempts per failed job.")
]
OutOption = Annotated[
    Path | None, typer.Option("--out", "-o", help="Sweep folder (default OUTPUT_DIR/NAME).")
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Validate and list the jobs; run nothing.")
]
LeaderboardOption = Annotated[
    Path | None,
    typer.Option("--leaderboard", help="Add every complete run to this entries folder."),
]
LeaderboardSettingsOption = Annotated[
    Path, typer.Option("--leaderboard-settings", help="Leaderboard site settings.")
]


def sweep(
    file: FileArgument,
    executor: ExecutorOption = "local",
    address: AddressOption = None,
    workers: WorkersOption = None,
    retries: RetriesOption = None,
    out_dir: OutOption = None,
    dry_run: DryRunOption = False,
    leaderboard: LeaderboardOption = None,
    leaderboard_settings: LeaderboardSettingsOption = DEFAULT_LEADERBOARD_SETTINGS,
) -> None:
    """Expand a sweep into jobs and run each as an ordinary run folder (resumable)."""
    from harness.sweep.execute import SWEEP_FILE, run_sweep
    from harness.sweep.spec import load_sweep

    with keeps_finished_work("finished jobs are kept"):
        if executor not in ("local", "ray"):
            raise ConfigError(f"--executor: unknown executor {executor!r}; use local or ray")
        if address is not None and executor != "ray":
            raise ConfigError("--address: only with --executor ray")
        spec = load_sweep(file, out_dir=out_dir)
        if dry_run:
            for job in spec.jobs:
                out.print(
                    f"{job.job_id}  {' '.join(job.overrides)}", highlight=False, soft_wrap=True
                )
            out.print(f"{len(spec.jobs)} job(s) into {spec.out_dir}", highlight=False)
            return
        result = run_sweep(
            spec,
            executor=executor,  # type: ignore[arg-type]
            address=address,
            workers=workers,
            retries=retries,
            on_event=lambda line: err.print(line, highlight=False, markup=False),
        )
    out.print(summary_table(result.jobs))
    out.print(f"sweep folder: {result.out_dir} ({SWEEP_FILE})", highlight=False)
    code = int(result.exit_code)
    if leaderboard is not None:
        gathered = gather(result.jobs, leaderboard, leaderboard_settings)
        code = code or gathered  # a failed job's exit code wins over a leaderboard problem
    raise typer.Exit(code)


def summary_table(jobs: list[Any]) -> Any:
    """One row per job: status (coloured), attempts, wall time, the start of any error."""
    from rich.table import Table

    table = Table(title="sweep")
    for column in ("job", "status", "attempts", "time s", "error"):
        table.add_column(column, justify="right" if column in ("attempts", "time s") else "left")
    colour = {"ok": "green", "reused": "cyan", "failed": "red"}
    for j in jobs:
        seconds = "" if j.wall_time_s is None else f"{j.wall_time_s:.1f}"
        status = f"[{colour.get(j.status, 'yellow')}]{j.status}[/]"
        table.add_row(j.job.job_id, status, str(j.attempts), seconds, (j.error or "")[:120])
    return table


def gather(jobs: list[Any], entries: Path, settings: Path) -> int:
    """Add every complete run of the sweep to the leaderboard; returns an exit code.

    A run the leaderboard refuses is reported and skipped (its code kept for the exit), so one
    bad run does not keep the others off the leaderboard: this is not a failure of the command.
    """
    from harness.leaderboard.entries import add_entry, load_settings

    code = 0
    site = load_settings(settings)
    for j in jobs:
        if j.status not in ("ok", "reused"):
            continue
        try:
            target = add_entry(j.run_dir, entries, settings=site)
            err.print(f"leaderboard: added {j.job.job_id} as {target.name}", highlight=False)
        except HarnessError as exc:
            err.print(f"leaderboard: {j.job.job_id}: {exc.message}", highlight=False, markup=False)
            code = code or int(exc.exit_code)
    return code


def register(app: typer.Typer) -> None:
    command(app, sweep)
