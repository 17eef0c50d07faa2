"""The fsspec filesystems behind one backend: one shared filesystem, made on first use, or -- for
schemes whose client is not thread-safe (sftp: paramiko's SFTP client) -- a connection leased to
each thread for the length of an operation, from a small pool of idle ones.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

_POOL_IDLE = 16


class Connections:
    """Filesystems made by `make`; with `pooled`, each thread leases its own (see `leased`)."""

    def __init__(self, make: Callable[[], Any], pooled: bool) -> None:
        self._make = make
        self.pooled = pooled
        self.shared: Any = None  # the filesystem of threads that hold no lease
        self._lock = threading.Lock()
        self._idle: list[Any] = []
        self._tls = threading.local()

    def current(self) -> Any:
        """The connection this thread leased, else the shared filesystem (made on first use)."""
        leased = getattr(self._tls, "fs", None)
        if leased is not None:
            return leased
        if self.shared is None:
            with self._lock:
                if self.shared is None:
                    self.shared = self._make()
        return self.shared

    def reset(self) -> None:
        """Drop the shared filesystem: the next use makes a new one (smb: re-registers the session)."""
        self.shared = None

    @contextmanager
    def leased(self) -> Iterator[None]:
        """For pooled schemes, give this thread its own connection for the operation."""
        if not self.pooled or getattr(self._tls, "fs", None) is not None:
            yield
            return
        fs = self._acquire()
        self._tls.fs = fs
        try:
            yield
        finally:
            if getattr(self._tls, "fs", None) is fs:  # not handed over to a stream (detach)
                self._tls.fs = None
                self.release(fs)

    def _acquire(self) -> Any:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self._make()

    def release(self, fs: Any) -> None:
        """Return a leased connection to the pool (closed if it died or the pool is full)."""
        if _alive(fs):
            with self._lock:
                if len(self._idle) < _POOL_IDLE:
                    self._idle.append(fs)
                    return
        _close_fs(fs)

    def detach(self) -> Any:
        """Hand this thread's borrowed connection to a stream, which releases it when closed."""
        fs = getattr(self._tls, "fs", None)
        self._tls.fs = None
        return fs

    def close(self) -> None:
        """Close pooled connections (still usable afterwards: it reconnects on demand)."""
        with self._lock:
            idle, self._idle = self._idle, []
            shared, self.shared = (self.shared, None) if self.pooled else (None, self.shared)
        for fs in idle + ([shared] if shared is not None else []):
            _close_fs(fs)


def _alive(fs: Any) -> bool:
    client = getattr(fs, "client", None)  # sftp: paramiko SSHClient
    transport = client.get_transport() if client is not None else None
    return transport is not None and transport.is_active()


def _close_fs(fs: Any) -> None:
    for obj in (getattr(fs, "ftp", None), getattr(fs, "client", None)):
        try:
            if obj is not None:
                obj.close()
        except Exception:  # noqa: BLE001 - closing a dead connection
            pass


__all__ = ["Connections"]
