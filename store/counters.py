"""Request counters of a backend: what a run cost the server, per kind of request (pure).

A leaf module: the backend bumps them, its stream wrappers count bytes into them, and tests
and reports read them, without any of those importing each other. Every byte passes through
`bump`, so the bandwidth caps (`max_rate`, `max_upload_rate`: throttle.py) are paced here too.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from .throttle import Throttle


@dataclass(slots=True)
class Counters:
    """Requests made through this backend (one per logical call, retries counted too)."""

    reads: int = 0
    writes: int = 0
    lists: int = 0
    stats: int = 0
    deletes: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    retries: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # "bytes_read" / "bytes_written" -> the cap on them (storage options max_rate, max_upload_rate)
    caps: dict[str, Throttle] = field(default_factory=dict, repr=False)

    def bump(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)
        cap = self.caps.get(name)
        if cap is not None:
            cap.take(n)

    def as_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in ("reads", "writes", "lists", "stats", "deletes", "bytes_read",
                                               "bytes_written", "retries")}


__all__ = ["Counters"]
