"""Bounded retries for one server during one run: a retry budget and a circuit breaker (thread-safe).

Why: retrying every request of a 10,000-object update against a dead server costs ~3 retries
with backoff each -- half an hour and 30,000 log lines (issue 17). A `Breaker` belongs to one
Backend (one URL; a run or a regen command opens its own): after `threshold` failures in a row
that retrying could not fix it *opens*, and every later request fails at once without touching
the network; retries stop once `budget` of them were spent. What was fetched stays fetched, so
the next run resumes where this one stopped.
"""

from __future__ import annotations

import logging
import threading

from .errors import StoreUnreachable

log = logging.getLogger("regen.store.backend")

BREAKER_THRESHOLD = 5  # failures in a row (each after its retries) before a server counts as down for the run
RETRY_BUDGET = 24  # retries per server and run, whatever the object count (each backs off, up to 30 s)

__all__ = ["BREAKER_THRESHOLD", "RETRY_BUDGET", "Breaker"]


class Breaker:
    """Failures in a row, retries spent, and the first failure, for one server."""

    def __init__(self, url: str, threshold: int = BREAKER_THRESHOLD, budget: int = RETRY_BUDGET) -> None:
        self.url = url
        self.threshold = threshold
        self.budget = budget
        self.in_a_row = 0
        self.retries = 0
        self.first: StoreUnreachable | None = None
        self.open = False
        self._lock = threading.Lock()

    def check(self, url: str, path: str) -> None:
        """Raise at once, without a request, when the server counts as down for this run."""
        if self.open:
            first = self.first.one_line() if self.first is not None else "?"
            raise StoreUnreachable(f"{url}/{path}: not tried, {self.threshold} requests in a row to {self.url} "
                                   f"failed (first: {first})", url=url, path=path,
                                   hint="the server is down or unreachable; the next run resumes")

    def may_retry(self) -> bool:
        """Spend one retry of the budget, if any is left and the server is not down."""
        with self._lock:
            if self.open or self.retries >= self.budget:
                return False
            self.retries += 1
            return True

    def success(self) -> None:
        with self._lock:
            self.in_a_row = 0

    def failure(self, err: StoreUnreachable) -> None:
        """A request failed for good (its retries spent): after `threshold` in a row, open."""
        with self._lock:
            self.in_a_row += 1
            if self.first is None:
                self.first = err
            if self.in_a_row >= self.threshold and not self.open:
                self.open = True
                log.warning("%s is down: %d requests in a row failed (first: %s); no more requests to it "
                            "in this run", self.url, self.in_a_row, self.first.one_line())
