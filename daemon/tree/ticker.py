"""The run's operation counter: where a long apply notices SIGTERM between two operations (I/O-free).

A leaf module: the applier, the file sink and the journal writer all tick the same counter
without importing each other.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from regen.daemon.errors import Interrupted, signal_name


class Ticker:
    """Counts operations; honours SIGTERM/SIGINT (`stop`) between them.

    `on_tick(n)`, when given, is called after every operation with the count so far: the crash
    tests' harness (tests/regend_harness.py) kills the run there, at every point of an apply in
    turn. regend itself never sets it.
    """

    def __init__(self, stop: threading.Event | None = None, on_tick: Callable[[int], None] | None = None) -> None:
        self.stop = stop
        self.on_tick = on_tick
        self.n = 0

    def tick(self) -> None:
        self.n += 1
        if self.on_tick is not None:
            self.on_tick(self.n)
        if self.stop is not None and self.stop.is_set():
            raise Interrupted(f"stopped by {signal_name(self.stop)} during apply")


__all__ = ["Ticker"]
