"""The store's writer lock: a lease file so two managers cannot publish or gc at once.

``locks/writer.json`` is created exclusively (O_EXCL, S3 If-None-Match, SFTP/SMB exclusive
open) and holds owner, host, pid, a random token and an expiry. An expired lease may be
broken by the next writer; a live one is reported with who holds it and until when.

A holder whose operation may outlast the lease (a big snapshot) asks for a heartbeat: a thread
that extends the lease every `ttl / 6` (restic's lock refresh). The holder still calls
`refresh()` right before each step that is only safe under the lock (writing a record, moving a
ref): if the process was stopped past its lease, another writer (gc) may have broken it and
swept objects the operation relies on, and `refresh()` then stops it with LockHeld.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType

from . import layout
from .errors import LockHeld, NotFound, RecordInvalid, StoreExists
from .generation import format_time, parse_time, utcnow
from .store import Store

DEFAULT_TTL = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class LeaseInfo:
    owner: str
    host: str
    pid: int
    token: str
    created: str
    expires: str

    def to_json(self) -> bytes:
        return json.dumps({
            "created": self.created, "expires": self.expires, "host": self.host, "owner": self.owner,
            "pid": self.pid, "token": self.token}, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> LeaseInfo | None:
        """The lease, or None if it is unreadable (such a lease can be broken like an expired one)."""
        try:
            d = json.loads(data)
            lease = cls(str(d["owner"]), str(d["host"]), int(d["pid"]), str(d["token"]), str(d["created"]),
                        str(d["expires"]))
            parse_time(lease.expires, "lock")
            return lease
        except (ValueError, KeyError, TypeError, RecursionError, RecordInvalid):
            return None


class StoreLock:
    """Context manager holding the writer lock for the duration of a manager operation."""

    def __init__(self, store: Store, owner: str, ttl: timedelta = DEFAULT_TTL, *, now: datetime | None = None,
                 heartbeat: bool = False):
        self.store = store
        self.owner = owner
        self.ttl = ttl
        self._now = now
        self.lease: LeaseInfo | None = None
        self._heartbeat = heartbeat
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self._guard = threading.Lock()  # one refresh at a time (heartbeat and holder)

    def _beating(self) -> None:
        while not self._stop.wait(self.ttl.total_seconds() / 6):
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - lost or unreachable: the holder's own refresh() reports it
                return

    def _make(self) -> LeaseInfo:
        now = self._now or utcnow()
        return LeaseInfo(self.owner, socket.gethostname(), os.getpid(), uuid.uuid4().hex, format_time(now),
                         format_time(now + self.ttl))

    def acquire(self) -> LeaseInfo:
        backend = self.store.backend
        for _ in range(2):
            lease = self._make()
            try:
                backend.create_exclusive(layout.LOCK, lease.to_json())
                self.lease = lease
                return lease
            except StoreExists:
                pass
            try:
                held = LeaseInfo.from_json(backend.read(layout.LOCK, max_bytes=65536))
            except NotFound:
                continue  # released meanwhile: try again
            now = self._now or utcnow()
            if held is not None and parse_time(held.expires, "lock") > now:
                raise LockHeld(
                    f"the store {self.store.url} is locked by {held.owner} on {held.host} (pid {held.pid}) "
                    f"since {held.created} until {held.expires}",
                    owner=held.owner, host=held.host, expires=held.expires,
                )
            # expired or unreadable lease: break it (the holder is gone or overran its lease),
            # unless it changed since we read it (another writer broke it and took it meanwhile)
            try:
                again = backend.read(layout.LOCK, max_bytes=65536)
                if LeaseInfo.from_json(again) == held:
                    backend.delete(layout.LOCK)
            except NotFound:
                pass
        raise LockHeld(f"could not take the writer lock of {self.store.url}; another writer keeps taking it")

    def refresh(self) -> LeaseInfo:
        """Extend our lease by `ttl` from now; LockHeld if it is no longer ours.

        Operations that may outlast the lease (a big snapshot, gc of a big store) call this
        now and then, and right before a step that is only safe under the lock (gc's sweep):
        a lease that expired meanwhile may have been broken by another writer.
        """
        with self._guard:
            return self._refresh()

    def _refresh(self) -> LeaseInfo:
        mine = self.lease
        if mine is None:
            raise LockHeld(f"the writer lock of {self.store.url} is not held by this operation")
        try:
            held = LeaseInfo.from_json(self.store.backend.read(layout.LOCK, max_bytes=65536))
        except NotFound:
            held = None
        now = self._now or utcnow()
        if held is None or held.token != mine.token or parse_time(held.expires, "lock") <= now:
            who = ("the lock was removed, by a writer that broke it or 'regen unlock'" if held is None
                   else f"{held.owner} on {held.host} holds it now" if held.token != mine.token
                   else "its lease ran out")
            raise LockHeld(f"the writer lock of {self.store.url} was lost ({who}); nothing more was changed",
                           hint="run the operation again")
        fresh = LeaseInfo(mine.owner, mine.host, mine.pid, mine.token, mine.created, format_time(now + self.ttl))
        self.store.backend.write(layout.LOCK, fresh.to_json())
        self.lease = fresh
        return fresh

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
            self._beat = None
        if self.lease is None:
            return
        backend = self.store.backend
        try:
            held = LeaseInfo.from_json(backend.read(layout.LOCK, max_bytes=65536))
            if held is not None and held.token == self.lease.token:
                backend.delete(layout.LOCK)
        except NotFound:
            pass
        self.lease = None

    def __enter__(self) -> StoreLock:
        self.acquire()
        if self._heartbeat:
            self._stop.clear()
            self._beat = threading.Thread(target=self._beating, name="regen-lock-heartbeat", daemon=True)
            self._beat.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def break_lock(store: Store) -> LeaseInfo | None:
    """Remove the lock whoever holds it (regen unlock); returns what was removed."""
    try:
        held = LeaseInfo.from_json(store.backend.read(layout.LOCK, max_bytes=65536))
    except NotFound:
        return None
    try:
        store.backend.delete(layout.LOCK)
    except NotFound:
        pass
    return held
