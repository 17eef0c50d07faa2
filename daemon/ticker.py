"""The run's operation counter: where a long apply notices SIGTERM between two operations (I/O-free).

A leaf module: the applier, the file sink and the journal writer all tick the same counter
without importing each other.
"""

from __future__ import annotations

import os
import signal
import threading

from .errors import Interrupted, signal_name


class Ticker:
    """Counts operations; honours SIGTERM (stop) between them, and the crash test hook."""

    def __init__(self, kill_after: int | None = None, stop: threading.Event | None = None) -> None:
        self.kill_after = kill_after
        self.stop = stop
        self.n = 0

    def tick(self) -> None:
        self.n += 1
        if self.kill_after is not None and self.n >= self.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.stop is not None and self.stop.is_set():
            raise Interrupted(f"stopped by {signal_name(self.stop)} during apply")


__all__ = ["Ticker"]
