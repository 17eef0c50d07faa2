"""How library code reports progress without printing (R10): an injected `Progress`.

progressbar.py draws a rich progress bar on a terminal (render.py chooses it); everything else
gets `NoProgress`.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def start(self, label: str, total_items: int | None = None, total_bytes: int | None = None) -> None:
        """A new phase; totals are None when unknown (the bar then shows rate, not ETA)."""

    def advance(self, items: int = 1, nbytes: int = 0) -> None:
        """Work done since the last call (called from the thread that called `start`)."""

    def finish(self) -> None:
        """The phase is over."""


class NoProgress:
    def start(self, label: str, total_items: int | None = None, total_bytes: int | None = None) -> None:
        pass

    def advance(self, items: int = 1, nbytes: int = 0) -> None:
        pass

    def finish(self) -> None:
        pass
