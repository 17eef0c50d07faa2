"""A bandwidth cap shared by every thread of one backend (thread-safe; sleeps, no other I/O).

Why: a fleet updating at once, or a snapshot uploading over an office line, must not take the
whole link (rsync's --bwlimit, restic's --limit-download/--limit-upload). The cap is paced
after the bytes moved: each transfer adds its bytes to a schedule that starts at the first one,
and waits until the schedule says they could have moved at `rate` bytes/s.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["Throttle"]


class Throttle:
    """At most `rate` bytes/s on average, across threads."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate = rate
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._due: float | None = None  # when the bytes paced so far may have finished moving

    def take(self, n: int) -> None:
        """Account for `n` bytes that moved; wait until the cap allows them."""
        if n <= 0:
            return
        with self._lock:
            now = self._clock()
            start = now if self._due is None or self._due < now else self._due
            self._due = start + n / self.rate
            wait = self._due - now
        if wait > 0:
            self._sleep(wait)
