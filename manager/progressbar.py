"""The progress bar people see on a terminal: a `progress.Progress` drawn by rich on stderr.

Transient (it disappears when the phase ends, leaving only the result), counting files,
bytes, rate and ETA when the total is known. render.py chooses it only when stderr is a
terminal and --quiet is not given; everything else gets `NoProgress`.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


class RichProgress:
    """A transient progress bar on stderr: files, bytes, rate and ETA when the total is known."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._bar: Progress | None = None
        self._task: Any = None
        self._by_bytes = True
        self._items = 0

    def start(self, label: str, total_items: int | None = None, total_bytes: int | None = None) -> None:
        self.finish()
        self._by_bytes = total_bytes is not None or total_items is None
        self._items = 0
        if self._by_bytes:
            columns: list[Any] = [TextColumn("{task.description}"), BarColumn(),
                                  TextColumn("{task.fields[items]} files"),
                                  DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn()]
        else:
            columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
        self._bar = Progress(*columns, console=self.console, transient=True)
        self._bar.start()
        self._task = self._bar.add_task(label, total=total_bytes if self._by_bytes else total_items, items=0)

    def advance(self, items: int = 1, nbytes: int = 0) -> None:
        if self._bar is not None:
            self._items += items
            self._bar.update(self._task, advance=nbytes if self._by_bytes else items, items=self._items)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


__all__ = ["RichProgress"]
