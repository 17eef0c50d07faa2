"""The writer lock: one publisher at a time, a clear message about who holds it, and
recovery from a holder that died."""

from __future__ import annotations

import json
import os
import socket
from datetime import timedelta

import pytest

from regen.store import LeaseInfo, LockHeld, NotFound, Store, StoreLock, break_lock, parse_time, utcnow

LOCK = "locks/writer.json"


def test_lock_is_exclusive_and_the_error_names_holder_and_expiry(store: Store) -> None:
    with StoreLock(store, "regen snapshot") as held:
        assert held.lease is not None
        with pytest.raises(LockHeld) as err:
            StoreLock(Store.open(store.url), "regen gc").acquire()
        e = err.value
        assert "regen snapshot" in str(e) and socket.gethostname() in str(e) and held.lease.expires in str(e)
        assert str(os.getpid()) in str(e)
        assert (e.owner, e.host, e.expires) == ("regen snapshot", socket.gethostname(), held.lease.expires)
        assert e.exit_code == 2 and "regen unlock" in e.hint
    with StoreLock(store, "regen gc"):  # released: the next writer gets it
        pass


def test_lease_on_the_store_says_who_and_until_when(store: Store) -> None:
    with StoreLock(store, "regen publish", ttl=timedelta(minutes=5)) as lock:
        lease = LeaseInfo.from_json(store.backend.read(LOCK))
        assert lease == lock.lease
        assert lease is not None and lease.owner == "regen publish" and lease.pid == os.getpid()
        assert parse_time(lease.expires, "lock") - parse_time(lease.created, "lock") == timedelta(minutes=5)
    with pytest.raises(NotFound):
        store.backend.read(LOCK)  # gone after release


def test_an_expired_lease_is_broken(store: Store) -> None:
    StoreLock(store, "crashed publisher", ttl=timedelta(hours=1)).acquire()  # never released
    later = utcnow() + timedelta(hours=2)
    with StoreLock(store, "regen gc", now=later) as lock:
        held = LeaseInfo.from_json(store.backend.read(LOCK))
        assert held is not None and held.owner == "regen gc" and held.token == lock.lease.token  # type: ignore[union-attr]


def test_a_live_lease_is_not_broken(store: Store) -> None:
    StoreLock(store, "slow publisher", ttl=timedelta(hours=1)).acquire()
    with pytest.raises(LockHeld):
        StoreLock(store, "impatient", now=utcnow() + timedelta(minutes=59)).acquire()


@pytest.mark.parametrize("content", [b"garbage", b'{"owner": "x"}', json.dumps({
    "owner": "x", "host": "h", "pid": 1, "token": "t", "created": "now", "expires": "never"}).encode()])
def test_an_unreadable_lease_is_broken(store: Store, content: bytes) -> None:
    store.backend.write(LOCK, content)
    with StoreLock(store, "regen publish") as lock:
        assert LeaseInfo.from_json(store.backend.read(LOCK)) == lock.lease


def test_release_removes_only_our_own_lease(store: Store) -> None:
    first = StoreLock(store, "overran its lease", ttl=timedelta(seconds=1))
    first.acquire()
    second = StoreLock(store, "next publisher", now=utcnow() + timedelta(minutes=1))
    second.acquire()  # broke the expired lease and took the lock
    first.release()  # the first one finishes late: it must not free the second one's lock
    held = LeaseInfo.from_json(store.backend.read(LOCK))
    assert held is not None and held.owner == "next publisher"
    second.release()
    with StoreLock(store, "third"):
        pass


def test_lock_is_released_when_the_operation_fails(store: Store) -> None:
    with pytest.raises(RuntimeError):
        with StoreLock(store, "regen publish"):
            raise RuntimeError("publish failed")
    with StoreLock(store, "regen publish"):
        pass


def test_break_lock_removes_any_lease_and_says_whose(store: Store) -> None:
    assert break_lock(store) is None
    lock = StoreLock(store, "regen snapshot")
    lock.acquire()
    removed = break_lock(store)
    assert removed == lock.lease
    with StoreLock(store, "regen unlock then publish"):
        pass


def test_refresh_extends_our_lease(store: Store) -> None:
    lock = StoreLock(store, "regen snapshot", ttl=timedelta(minutes=10))
    first = lock.acquire()
    fresh = lock.refresh()
    assert fresh.token == first.token and fresh.expires >= first.expires
    assert LeaseInfo.from_json(store.backend.read(LOCK)) == fresh == lock.lease
    lock.release()
    with pytest.raises(LockHeld, match="not held"):
        lock.refresh()


def test_refresh_refuses_a_lease_someone_else_took(store: Store) -> None:
    first = StoreLock(store, "slow gc", ttl=timedelta(seconds=1))
    first.acquire()
    StoreLock(store, "regen snapshot", now=utcnow() + timedelta(minutes=1)).acquire()
    with pytest.raises(LockHeld, match="lost .regen snapshot on"):
        first.refresh()
    held = LeaseInfo.from_json(store.backend.read(LOCK))
    assert held is not None and held.owner == "regen snapshot"  # untouched


def test_heartbeat_keeps_a_long_operation_s_lease(store: Store) -> None:
    """A holder with a heartbeat keeps its lease past the ttl (a snapshot longer than the lease), and
    stops beating on release; another writer meanwhile finds the lock held, not expired."""
    import time

    with StoreLock(store, "long snapshot", timedelta(seconds=3), heartbeat=True) as lock:
        first = lock.lease
        time.sleep(4)
        with pytest.raises(LockHeld, match="locked by long snapshot"):
            StoreLock(store, "regen gc").acquire()
        assert lock.lease is not None and first is not None and lock.lease.expires > first.expires
        assert lock.refresh().token == first.token
    with pytest.raises(NotFound):
        store.backend.read("locks/writer.json")
