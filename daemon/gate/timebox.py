"""Time-boxed calls: run a call in a daemon thread and give up on it at a deadline (I/O).

Why: a dead NFS/CIFS/FUSE mount, or a dying disk, makes statvfs block in the kernel, possibly
forever, and a boot that waits on it never ends. Each call runs in a daemon thread; one that
misses its deadline is reported as timed out and its thread is left behind (daemon threads do
not hold up interpreter exit). A `TimeBox` remembers such stuck calls and does not pile up new
threads on the same key while the old one hangs.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["Outcome", "TimeBox", "call_with_timeout"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """The end of one time-boxed call: its value, the exception it raised, or that it hung."""

    value: Any = None
    error: BaseException | None = None
    timed_out: bool = False

    def describe(self, timeout: float) -> str:
        if self.timed_out:
            return f"did not answer within {timeout:g} s"
        return f"{type(self.error).__name__}: {self.error}" if self.error else "ok"


class _Call:
    def __init__(self, fn: Callable[[], Any], name: str) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"regen-probe {name}", daemon=True)

    def _run(self) -> None:
        try:
            self.value = self.fn()
        except BaseException as exc:
            self.error = exc
        finally:
            self.done.set()


class TimeBox:
    """Runs calls in daemon threads against one shared deadline; remembers calls still stuck."""

    def __init__(self) -> None:
        self._stuck: dict[str, _Call] = {}

    def run(self, calls: Mapping[str, Callable[[], Any]], timeout: float) -> dict[str, Outcome]:
        """All `calls` at once; each gets until `timeout` seconds from now. Never raises."""
        started: dict[str, _Call] = {}
        out: dict[str, Outcome] = {}
        for key, fn in calls.items():
            old = self._stuck.get(key)
            if old is not None and not old.done.is_set():
                out[key] = Outcome(timed_out=True)  # still hung since an earlier probe: do not add a thread
                continue
            self._stuck.pop(key, None)
            started[key] = call = _Call(fn, key)
            call.thread.start()
        deadline = time.monotonic() + timeout
        for key, call in started.items():
            if call.done.wait(max(0.0, deadline - time.monotonic())):
                out[key] = Outcome(call.value, call.error)
            else:
                self._stuck[key] = call
                out[key] = Outcome(timed_out=True)
        return {key: out[key] for key in calls}


def call_with_timeout(fn: Callable[[], Any], timeout: float) -> Outcome:
    """Run `fn` in a daemon thread; give up on it after `timeout` seconds."""
    return TimeBox().run({"call": fn}, timeout)["call"]
