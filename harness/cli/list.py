"""``harness list [artifacts|suites|all]``: the registered artifacts and suites, with each
suite's parameters and whether it can run here."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from harness.cli.console import out
from harness.cli.handler import command
from harness.errors import HarnessError

TOPICS = ("all", "artifacts", "suites")


def list_(
    what: Annotated[str, typer.Argument(help="artifacts, suites or all")] = "all",
) -> None:
    """List artifacts, suites and their parameters."""
    if what in ("all", "artifacts"):
        out.print(artifact_table())
    if what in ("all", "suites"):
        out.print(suite_table())
    if what not in TOPICS:
        raise HarnessError(f"list: unknown topic {what!r}; use artifacts, suites or all")


def artifact_table() -> Table:
    """One row per pinned artifact: kind, source, digest, description."""
    from harness import registry

    table = Table(title="artifacts")
    for column in ("name", "kind", "source", "sha256", "description"):
        table.add_column(column)
    for name in registry.artifacts.names():
        a = registry.artifacts.get(name)
        table.add_row(a.name, a.kind, a.source.describe(), a.sha256[:12], a.description)
    return table


def suite_table() -> Table:
    """One row per suite (version, parameter defaults, availability), one per optional part."""
    from harness import registry

    table = Table(title="suites")
    for column in ("suite", "version", "parameters", "status"):
        table.add_column(column)
    for name in registry.suites.names():
        cls = registry.suites.get(name)
        params = ", ".join(
            f"{k}={f.default!r}" if f.default_factory is None else f"{k}=…"
            for k, f in cls.Params.model_fields.items()
        )
        reason = cls.unavailable_reason()
        table.add_row(
            name, cls.version, params, "ok" if reason is None else f"unavailable: {reason}"
        )
        for extra_name, extra_reason in cls.component_status().items():
            table.add_row(
                f"  {name}/{extra_name}",
                "",
                "",
                "ok" if extra_reason is None else f"unavailable: {extra_reason}",
            )
    return table


def register(app: typer.Typer) -> None:
    command(app, list_, "list")
