"""The two rich consoles every command prints through: ``out`` (results, stdout) and ``err``
(progress and notes, stderr). Failures are printed by ``harness.cli.handler`` instead."""

from __future__ import annotations

from rich.console import Console

err = Console(stderr=True)
out = Console()
