"""``harness schema [-o FILE]``: the JSON Schema of run records (generated from records.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from harness.cli.handler import command


def schema(
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Print (or write) the JSON Schema of run records."""
    from harness.records import canonical_json, record_json_schema

    text = canonical_json(record_json_schema())
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")


def register(app: typer.Typer) -> None:
    command(app, schema)
