"""Command line: parse, load config, call one function, print. No logic lives here.

Heavy libraries (torch, transformers, textattack, captum) are imported inside the commands
that need them, so ``harness --help``, ``gate``, ``report`` and ``leaderboard`` start fast.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from harness import __version__
from harness.errors import ExitCode, HarnessError

app = typer.Typer(
    name="harness",
    help="Evaluation and robustness benchmark harness for text classifiers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
out = Console()

DEFAULT_RUN_FILE = Path("suites/default.yaml")
# Command groups defined next to the code they drive; each exposes register(app).
COMMAND_MODULES = ("harness.cli.finetune", "harness.cli.gate", "harness.cli.report", "harness.cli.leaderboard", "harness.cli.sweep")


def fail(exc: HarnessError) -> typer.Exit:
    console.print(f"[bold red]error:[/] {exc.message}", highlight=False, markup=True, soft_wrap=True)
    return typer.Exit(int(exc.exit_code))


def version_callback(value: bool) -> None:
    if value:
        out.print(f"harness {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_callback(
    version: Annotated[bool, typer.Option("--version", callback=version_callback, is_eager=True, help="Show the version.")] = False,
) -> None:
    """Evaluation and robustness benchmark harness for text classifiers."""


def resolve_run_file(file: Path | None) -> Path:
    if file is None:
        return DEFAULT_RUN_FILE
    if not file.exists() and not file.suffix and (Path("suites") / f"{file}.yaml").is_file():
        return Path("suites") / f"{file}.yaml"
    return file


@app.command()
def run(
    file: Annotated[Path | None, typer.Argument(help="Run file (YAML); default suites/default.yaml; a bare name means suites/NAME.yaml.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a config key, e.g. --set seed=3 (repeatable).")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", "-o", help="Run folder (default: OUTPUT_DIR/NAME-CONFIGHASH).")] = None,
    resume: Annotated[Path | None, typer.Option("--resume", help="Continue the run in this folder (same as --out).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Start over even if the folder holds a run.")] = False,
    retrain: Annotated[bool, typer.Option("--retrain", help="Fine-tune again even if a cached checkpoint exists.")] = False,
) -> None:
    """Run a run file: fine-tune or load the model, run every suite, write the record."""
    from harness.cli.progress import ProgressUI
    from harness.run.runner import execute

    path = resolve_run_file(file)
    try:
        with ProgressUI(console) as ui:
            result = execute(path, overrides=set_ or [], out_dir=resume or out_dir, force=force, retrain=retrain, progress_factory=ui.factory)
    except HarnessError as exc:
        raise fail(exc) from None
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]: finished work is kept; run the same command again to resume")
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    if result.reused:
        console.print(f"[green]already complete[/]: {result.run_dir} (use --force to run again)")
    print_summary(result.record)
    out.print(f"run folder: {result.run_dir}")
    raise typer.Exit(int(result.exit_code))


@app.command()
def show(
    run_dir: Annotated[Path, typer.Argument(help="A run folder or record.json.")],
    json_: Annotated[bool, typer.Option("--json", help="Print the record as JSON.")] = False,
) -> None:
    """Show a run's record: status, model, data and every suite's metrics."""
    from harness.records import dump_record, load_record

    try:
        record = load_record(run_dir)
    except HarnessError as exc:
        raise fail(exc) from None
    if json_:
        sys.stdout.write(dump_record(record))
        return
    print_summary(record)


def print_summary(record: Any) -> None:
    head = Table(title=f"run {record.run_id} — {record.status}", show_header=False)
    head.add_row("model", f"{record.model.name} ({record.model.source}) sha256 {record.model.digest[:12]}")
    head.add_row("data", f"{record.dataset.name}:{record.dataset.eval_split}")
    head.add_row("device", f"{record.provenance.device}, {record.provenance.torch_threads} threads, seed {record.provenance.seed}")
    out.print(head)
    table = Table(title="metrics")
    for column in ("suite", "metric", "value", "95% CI", "n"):
        table.add_column(column, justify="right" if column in ("value", "n") else "left")
    for suite in record.suites:
        if suite.status != "ok":
            table.add_row(suite.name, "[red]error[/]", suite.error or suite.status, "", "")
            continue
        for m in suite.metrics[:12]:
            ci = f"[{m.ci_low:.4f}, {m.ci_high:.4f}]" if m.ci_low is not None and m.ci_high is not None else ""
            value = "—" if m.value is None else f"{m.value:.4f}"
            table.add_row(suite.name, m.name, value, ci, "" if m.n is None else str(m.n))
        if len(suite.metrics) > 12:
            table.add_row(suite.name, f"… {len(suite.metrics) - 12} more", "", "", "")
    out.print(table)


@app.command()
def fetch(
    names: Annotated[list[str] | None, typer.Argument(help="Artifact names (default: all).")] = None,
) -> None:
    """Fetch and verify artifacts into the cache (HARNESS_CACHE)."""
    from harness import artifacts, registry

    try:
        for name in names or registry.artifacts.names():
            folder = artifacts.fetch(name)
            out.print(f"{name}: {folder}")
    except HarnessError as exc:
        raise fail(exc) from None


@app.command("list")
def list_(
    what: Annotated[str, typer.Argument(help="artifacts, suites or all")] = "all",
) -> None:
    """List artifacts, suites and their parameters."""
    from harness import registry

    if what in ("all", "artifacts"):
        table = Table(title="artifacts")
        for column in ("name", "kind", "source", "sha256", "description"):
            table.add_column(column)
        for name in registry.artifacts.names():
            a = registry.artifacts.get(name)
            table.add_row(a.name, a.kind, a.source.describe(), a.sha256[:12], a.description)
        out.print(table)
    if what in ("all", "suites"):
        table = Table(title="suites")
        for column in ("suite", "version", "parameters", "status"):
            table.add_column(column)
        for name in registry.suites.names():
            cls = registry.suites.get(name)
            params = ", ".join(
                f"{k}={f.default!r}" if f.default_factory is None else f"{k}=…" for k, f in cls.Params.model_fields.items()
            )
            reason = cls.unavailable_reason()
            table.add_row(name, cls.version, params, "ok" if reason is None else f"unavailable: {reason}")
            for extra_name, extra_reason in cls.component_status().items():
                table.add_row(f"  {name}/{extra_name}", "", "", "ok" if extra_reason is None else f"unavailable: {extra_reason}")
        out.print(table)
    if what not in ("all", "artifacts", "suites"):
        raise fail(HarnessError(f"list: unknown topic {what!r}; use artifacts, suites or all"))


@app.command()
def rerun(
    run_dir: Annotated[Path, typer.Argument(help="A finished run folder.")],
    out_dir: Annotated[Path | None, typer.Option("--out", "-o", help="Where to replay (default RUN_DIR.rerun).")] = None,
) -> None:
    """Replay a run's recorded config and report any difference (exit 1 if any)."""
    from harness.run.rerun import rerun as replay

    try:
        replay_dir, diffs = replay(run_dir, out_dir or run_dir.with_name(run_dir.name + ".rerun"))
    except HarnessError as exc:
        raise fail(exc) from None
    if not diffs:
        out.print(f"[green]identical[/]: {replay_dir} reproduces {run_dir} (predictions byte for byte, every metric)")
        return
    table = Table(title=f"{len(diffs)} difference(s)")
    for column in ("where", "original", "replayed"):
        table.add_column(column)
    for d in diffs:
        table.add_row(d.where, str(d.original), str(d.replayed))
    out.print(table)
    raise typer.Exit(int(ExitCode.REGRESSION))


@app.command()
def schema(
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write here instead of stdout.")] = None,
) -> None:
    """Print (or write) the JSON Schema of run records."""
    from harness.records import canonical_json, record_json_schema

    text = canonical_json(record_json_schema())
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")


def _register_command_modules() -> None:
    for module in COMMAND_MODULES:
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module).register(app)


_register_command_modules()


def main() -> None:
    # torch's OpenMP threads spin while waiting by default; on a busy machine that made 2 threads
    # 3.7x slower than passive waiting (measured while fine-tuning). Users can still override it.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if sys.argv[1:2] == ["gate"]:
        from harness.cli.gate import expand_multi_values

        sys.argv[1:] = expand_multi_values(sys.argv[1:])
    try:
        app()
    except HarnessError as exc:
        console.print(f"error: {exc.message}", highlight=False, markup=False)
        sys.exit(int(exc.exit_code))
