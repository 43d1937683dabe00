"""The command line's one error handler: a ``HarnessError`` becomes ``error: MESSAGE`` on stderr
and the error's exit code.

Every command is registered through ``command(app, fn)``, which gives it the ``HandledCommand``
class: the handler sits in click's ``invoke``, so it works the same under ``harness`` (``main()``)
and under typer's ``CliRunner`` in tests, which calls the app without ``main()`` and with apps
that tests assemble themselves from a module's ``register``. Commands therefore raise; none
catches its own errors.

A command whose long work keeps what it finished (a run, a sweep) wraps that work in
``keeps_finished_work(...)``: Ctrl-C there leaves with exit 130 and a note saying so, printed by
the same handler. Elsewhere Ctrl-C keeps click's default ("Aborted!", exit 1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer
from typer.core import TyperCommand

from harness.errors import ExitCode, HarnessError

MSG_RESUME = "{kept}; run the same command again to resume"


class Interrupted(HarnessError):
    """Ctrl-C during work that is kept; the message says what was kept."""

    exit_code = ExitCode.INTERRUPTED


@contextmanager
def keeps_finished_work(kept: str) -> Iterator[None]:
    """Turn Ctrl-C inside the block into ``Interrupted``; ``kept`` says what survives it
    ("finished work is kept"), and the note adds how to resume."""
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(MSG_RESUME.format(kept=kept)) from None


def report(exc: HarnessError) -> None:
    """Print a failure for a person: ``error: MESSAGE`` (``interrupted: NOTE`` after Ctrl-C).

    The message is printed as given (no markup, no wrapping); only the label is coloured, and
    only on a terminal (click drops the colour elsewhere).
    """
    if isinstance(exc, Interrupted):
        label = typer.style("interrupted:", fg="yellow")
    else:
        label = typer.style("error:", fg="red", bold=True)
    typer.echo(f"{label} {exc.message}", err=True)


class HandledCommand(TyperCommand):
    """A typer command whose ``HarnessError`` is reported and becomes its exit code."""

    # ctx is click's Context; typer 0.2x vendors click (typer._click), so its type depends on
    # the typer version, and this override passes it through untouched.
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except HarnessError as exc:
            report(exc)
            raise typer.Exit(int(exc.exit_code)) from None


def command(app: typer.Typer, fn: Callable[..., Any], name: str | None = None) -> None:
    """Register ``fn`` on ``app`` as a command (named ``name`` or after ``fn``) under the handler."""
    app.command(name, cls=HandledCommand)(fn)
