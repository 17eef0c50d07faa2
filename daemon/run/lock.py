"""One run per state directory: an flock on state_dir/lock (local I/O).

The kernel drops the lock when the process dies (kill -9 included), so there is never a
stale lock to break. The holder's pid is written into the file for the message a second
run prints.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time

from regen.daemon.errors import RunLocked

LOCK_NAME = "lock"


class RunLock:
    def __init__(self, state_dir: str) -> None:
        self.path = os.path.join(state_dir, LOCK_NAME)
        self.fd: int | None = None

    def acquire(self, *, wait: bool = False, stop: threading.Event | None = None) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not wait or (stop is not None and stop.is_set()):
                    holder = _holder(fd)
                    os.close(fd)
                    raise RunLocked(f"another regend run{holder} is working on {os.path.dirname(self.path)}",
                                    path=self.path) from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def check_free(state_dir: str) -> None:
    """For dry runs: fail if a run holds the lock, without creating or changing the lock file."""
    path = os.path.join(state_dir, LOCK_NAME)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
    except BlockingIOError:
        raise RunLocked(f"a regend run{_holder(fd)} is working on {state_dir}; check again when it is done",
                        path=path) from None
    finally:
        os.close(fd)


def _holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""


__all__ = ["LOCK_NAME", "RunLock", "check_free"]
