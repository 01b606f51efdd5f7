"""A rich progress bar for long CLI work, silent when not asked for (flows run unattended too)."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress


class Progress:
    """Context manager: `advance(n)` moves the bar when enabled, does nothing otherwise."""

    def __init__(self, label: str, total: int | None, enabled: bool, *, in_bytes: bool = False
                 ) -> None:
        self.label, self.total, self.enabled, self.in_bytes = label, total, enabled, in_bytes
        self._bar: RichProgress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> Progress:
        if self.enabled:
            count = DownloadColumn() if self.in_bytes else MofNCompleteColumn()
            self._bar = RichProgress(
                TextColumn("[bold]{task.description}"), BarColumn(), count,
                TaskProgressColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                console=Console(stderr=True), transient=False)
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total)
        return self

    def advance(self, n: int) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task, n)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()
