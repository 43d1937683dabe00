"""``harness fetch [NAMES...]``: fetch and verify pinned artifacts into the cache."""

from __future__ import annotations

from typing import Annotated

import typer

from harness.cli.console import out
from harness.cli.handler import command


def fetch(
    names: Annotated[
        list[str] | None, typer.Argument(help="Artifact names (default: all).")
    ] = None,
) -> None:
    """Fetch and verify artifacts into the cache (HARNESS_CACHE)."""
    from harness import artifacts, registry

    for name in names or registry.artifacts.names():
        folder = artifacts.fetch(name)
        out.print(f"{name}: {folder}")


def register(app: typer.Typer) -> None:
    command(app, fetch)
