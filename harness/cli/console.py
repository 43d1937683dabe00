"""The two rich consoles every command prints through: ``out`` (results, stdout) and ``err``
(progress and notes, stderr). Failures are printed by ``harness.cli.handler`` instead.

On a terminal rich fits output to the window. Anywhere else (a pipe, a file, a CI log) rich
would assume 80 columns and wrap there, splitting paths and messages across lines
(``already complete: .../default-1ba8 (use --force to run \\nagain)``), which breaks ``grep``
and copy-paste. So off a terminal the consoles never wrap: text is printed as one line per line,
and tables take the width their content needs.
"""

from __future__ import annotations

from rich.console import Console, ConsoleDimensions

NON_TTY_WIDTH = 100_000  # "unbounded": tables are not expanded, so they stay as wide as needed


class PlainWhenPiped(Console):
    """A console that wraps to the terminal on a terminal, and not at all elsewhere.

    Decided on every print (``size`` is read per render), because the stream can change after
    import: typer's test runner swaps ``sys.stdout`` for each invocation.
    """

    @property
    def size(self) -> ConsoleDimensions:
        if self.is_terminal:
            return super().size
        return ConsoleDimensions(NON_TTY_WIDTH, 25)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]

    @property
    def soft_wrap(self) -> bool:
        return not self.is_terminal

    @soft_wrap.setter
    def soft_wrap(self, value: bool) -> None:
        pass  # decided by the stream, see the property


def console(*, stderr: bool = False) -> Console:
    """A console for stdout (or stderr) that never wraps when it is not a terminal."""
    return PlainWhenPiped(stderr=stderr)


err = console(stderr=True)
out = console()
