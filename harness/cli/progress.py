"""Rich progress bars for long work, shared by the CLI commands."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class ProgressUI:
    """One progress bar per stage; ``factory(label, total)`` returns the stage's update callback."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
            disable=not console.is_terminal,
        )

    def __enter__(self) -> ProgressUI:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def factory(self, label: str, total: int) -> Callable[[int, int], None]:
        task: TaskID = self._progress.add_task(label, total=total)

        def update(done: int, total_: int) -> None:
            self._progress.update(task, completed=done, total=total_)

        return update
