"""Signed generations: numbering, writing, publishing, rolling back (I/O through the Store).

Publish order (store/store.py): objects, manifest, signed record, then the ref. Every
operation here runs under the store's writer lock, so numbering cannot race another
manager and gc cannot sweep between upload and record.

Clients refuse a generation lower than one they accepted (rollback protection), so going
back is never a ref moved backwards: `rollback` signs the old content as a NEW, higher
generation, and `publish` refuses a number below the current one.

Two publishers (issue 12): the lease is re-checked (refreshed) right before the record and
again right before the ref is written, and the ref moves only if it still holds the bytes the
operation started from (compare-and-swap on its parent): a publisher that lost its lock, or
whose ref was moved by a writer that ignored the lock, stops with one line (exit 2) and
overwrites nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from regen.store import (
    MAX_NUMBER,
    Generation,
    Policy,
    SecretKey,
    Store,
    StoreLock,
    Timestamp,
    format_time,
    layout,
    overlay_versions_bytes,
    read_timestamp,
    stamp,
    strip_timestamp,
    utcnow,
)
from regen.store.errors import StoreExists

from .errors import NotPublishable, RefMoved, Untrusted
from .options import check_channel
from .trust import Trust, newest_verified, verified_generation, verified_overlay, verified_ref


def current_generation(store: Store, channel: str) -> Generation | None:
    """What the channel's ref points at, parsed but NOT verified: for listings only, never to build on."""
    ref = store.read_ref(channel)
    return None if ref is None else store.peek_generation(ref, where=f"ref of channel {channel!r}")


def unknown_key_warning(store: Store, key: SecretKey) -> str | None:
    """A warning when `key` has never signed in this store: clients will not trust it yet."""
    known = store.public_keys()  # informational only: who signed here before, never a source of trust
    if known and key.public.keyid not in known:
        return (f"key {key.public.keyid} has not signed in this store before; clients accept this generation "
                f"only once its .pub file is in their trusted_keys")
    return None


def next_number(store: Store, channel: str, trust: Trust, current: Generation | None) -> int:
    """One above the highest VERIFIED number (the ref's or a record written without --publish)."""
    newest = newest_verified(store, channel, trust)
    n = max(current.number if current else 0, newest.number if newest else 0) + 1
    if n > MAX_NUMBER:
        raise NotPublishable(f"channel {channel!r} has used up its generation numbers (limit {MAX_NUMBER})",
                             hint=f"start a new numbering with 'regen renumber --channel {channel}'")
    return n


def expiry(now: datetime, expires: timedelta | None) -> str | None:
    return None if expires is None else format_time(now + expires)


DEFAULT_TIMESTAMP_TTL = timedelta(days=1)  # a withheld update shows within a day (refresh every 6 h)


def stamped(store: Store, channel: str, envelope: bytes, key: SecretKey, trust: Trust, previous: bytes | None,
            ttl: timedelta = DEFAULT_TIMESTAMP_TTL, now: datetime | None = None) -> bytes:
    """`envelope` with a fresh timestamp (store/timestamp.py) whose version exceeds the previous ref's."""
    now = now or utcnow()
    gen = store.peek_generation(envelope, where="the new record")
    old = None
    if previous is not None:
        prev = store.peek_generation(previous, where=f"refs/{channel}")
        old = read_timestamp(previous, trust.keys, prev, where=f"refs/{channel}")
    version = max(int(now.timestamp()), old.version + 1 if old else 1)  # grows even if clocks step back
    ts = Timestamp(store.store_id, channel, gen.number, gen.epoch, version, format_time(now),
                   format_time(now + ttl), overlay_versions(store, trust))
    return stamp(strip_timestamp(envelope), ts, key)


def overlay_versions(store: Store, trust: Trust) -> str:
    """Store the list of every host's current (verified) overlay version; its object id.

    The timestamp names it, so a client that never saw a removal (fresh, re-imaged) refuses an
    old overlay replayed in place of the tombstone. One read per host, at each refresh.
    """
    versions: dict[str, int] = {}
    for host in store.overlay_hosts():
        try:
            found = verified_overlay(store, host, trust)
        except Untrusted:
            continue  # forged: clients refuse it anyway
        if found is not None:
            versions[host] = found[0].number
    return store.put(overlay_versions_bytes(versions))


def restamp(store: Store, lock: StoreLock, key: SecretKey, trust: Trust) -> None:
    """Renew the timestamp of every timestamped channel (after an overlay changed: its version is listed)."""
    for channel in store.channels():
        ref = store.read_ref(channel)
        if ref is not None and strip_timestamp(ref) != ref:
            move_ref(store, lock, channel, ref, ref, key, trust)  # move_ref stamps it afresh


def move_ref(store: Store, lock: StoreLock, channel: str, envelope: bytes, expected: bytes | None,
             key: SecretKey | None = None, trust: Trust | None = None, *, force_stamp: bool = False,
             ttl: timedelta = DEFAULT_TIMESTAMP_TTL) -> None:
    """Point the channel at `envelope` if the ref still holds `expected` (None: no ref) and our lease holds.

    The read-compare-write runs under a lease refreshed just before; backends offer no atomic
    compare-and-swap on a plain file, so this closes the race to the time of one write. A channel
    whose ref carries a timestamp (freeze protection, enabled by 'regen refresh') keeps one: the
    new ref is stamped with `key`, so clients that require it are not cut off by a publish.
    """
    if force_stamp or (expected is not None and strip_timestamp(expected) != expected):
        if key is None:
            raise NotPublishable(f"channel {channel!r} is timestamped (regen refresh); moving its ref needs --key")
        envelope = stamped(store, channel, envelope, key, trust or Trust({key.public.keyid: key.public}), expected,
                           ttl)
    lock.refresh()
    found = store.read_ref(channel)
    if found != expected:
        now = "was removed" if found is None else (
            f"now names generation {store.peek_generation(found, where=f'refs/{channel}').number}")
        mine = store.peek_generation(envelope, where="the new record").number
        raise RefMoved(f"refs/{channel} changed while this operation ran (it {now}); it was not overwritten",
                       hint=f"see 'regen log -c {channel}'; publish generation {mine} with "
                            f"'regen publish {mine} -c {channel}' if it should still win")
    store.set_ref(channel, envelope)


def write_new_generation(store: Store, key: SecretKey, trust: Trust, lock: StoreLock, *, channel: str,
                         manifest: str, parent: int | None, message: str, policy: Policy, stats: dict[str, int],
                         expires: timedelta | None, now: datetime, publish: bool, current: Generation | None,
                         expected_ref: bytes | None, number: int | None = None,
                         epoch: int | None = None) -> Generation:
    """Sign and write the channel's next generation; move the ref to it if `publish`. Caller holds `lock`.

    `current` must be the verified ref (or None): its epoch carries over unless `epoch` is given;
    `expected_ref` is the ref's bytes the operation started from (the compare-and-swap).
    """
    lock.refresh()  # a lease lost meanwhile (process stopped, gc swept): write nothing
    gen = Generation(store.store_id, channel, number or next_number(store, channel, trust, current), manifest,
                     format_time(now), parent, message, policy, stats, expiry(now, expires),
                     current.epoch if current and epoch is None else epoch or 0)
    try:
        envelope = store.write_generation(gen, [key])
    except StoreExists:
        verified_generation(store, channel, gen.number, trust)  # Untrusted if a forged file holds the number
        raise
    if publish:
        move_ref(store, lock, channel, envelope, expected_ref, key, trust)
    return gen


@dataclass(frozen=True, slots=True)
class PublishResult:
    channel: str
    number: int
    previous: int | None
    content_of: int | None = None  # rollback: the generation whose content was republished
    epoch: int = 0

    def as_dict(self) -> dict[str, object]:
        return {"channel": self.channel, "number": self.number, "previous": self.previous,
                "content_of": self.content_of, "epoch": self.epoch}


def publish(store: Store, channel: str, number: int, trust: Trust, now: datetime | None = None,
            key: SecretKey | None = None) -> PublishResult:
    """Point the channel at generation `number`, which must exist, verify and not go backwards.

    A ref that does not verify (tampered with) is replaced: publishing a verified generation is
    how an administrator repairs it.
    """
    check_channel(channel)
    with StoreLock(store, "regen publish") as lock:
        gen, data = verified_generation(store, channel, number, trust, now or utcnow())
        before = store.read_ref(channel)
        try:
            found = verified_ref(store, channel, trust)
        except Untrusted:
            found = None
        current = found[0] if found else None
        if current is not None and gen.order < current.order:
            raise NotPublishable(
                f"generation {number} is older than generation {current.number}, the current one of {channel!r}; "
                f"clients refuse to go back",
                hint=f"republish its content as a new generation with "
                     f"'regen rollback --channel {channel} --to {number}'")
        move_ref(store, lock, channel, data, before, key, trust)
    return PublishResult(channel, number, current.number if current else None, epoch=gen.epoch)


def rollback(store: Store, channel: str, key: SecretKey, trust: Trust, *, to: int | None = None,
             message: str | None = None, expires: timedelta | None = None,
             now: datetime | None = None) -> PublishResult:
    """Publish the content of an older generation (default: the current one's parent) as a new one.

    The current ref and the target are both verified first: an unverified ref must not choose
    what the administrator's key re-signs.
    """
    check_channel(channel)
    now = now or utcnow()
    with StoreLock(store, "regen rollback") as lock:
        found = verified_ref(store, channel, trust)
        if found is None:
            raise NotPublishable(f"channel {channel!r} has no published generation to roll back from")
        current, before = found
        if to is None:
            if current.parent is None:
                raise NotPublishable(f"generation {current.number} of {channel!r} has no parent",
                                     hint="name the generation to go back to with --to N")
            to = current.parent
        if to >= current.number:
            raise NotPublishable(f"generation {to} is not older than generation {current.number}, "
                                 f"the current one of {channel!r}",
                                 hint=f"publish a newer generation with 'regen publish {to} --channel {channel}'")
        target, _ = verified_generation(store, channel, to, trust)
        gen = write_new_generation(
            store, key, trust, lock, channel=channel, manifest=target.manifest, parent=current.number,
            message=message or f"rollback to generation {to}: {target.message}", policy=target.policy,
            stats=dict(target.stats), expires=expires, now=now, publish=True, current=current, expected_ref=before)
    return PublishResult(channel, gen.number, current.number, to, gen.epoch)


def renumber(store: Store, channel: str, key: SecretKey, trust: Trust, *, message: str | None = None,
             expires: timedelta | None = None, now: datetime | None = None) -> PublishResult:
    """Start a new numbering epoch: republish the newest verified generation's content under epoch+1.

    The way out of a burned number space (clients that accepted a huge number refuse every lower
    one; a higher epoch is accepted whatever the number). Records that do not verify (forged,
    over the limit) are ignored. If even the verified numbers are at the limit, the channel's
    old records are deleted and the new epoch starts at 1.
    """
    check_channel(channel)
    now = now or utcnow()
    with StoreLock(store, "regen renumber") as lock:
        before = store.read_ref(channel)
        try:
            found = verified_ref(store, channel, trust)
        except Untrusted:
            found = None
        records = _verified_records(store, channel, trust)
        source = found[0] if found else max(records, key=lambda g: g.number, default=None)
        if source is None:
            raise NotPublishable(f"channel {channel!r} has no verified generation to renumber")
        number = max(g.number for g in [source, *records]) + 1
        if number > MAX_NUMBER:
            for n in store.generation_numbers(channel):
                store.backend.delete(layout.generation_path(channel, n))
            number = 1
        gen = write_new_generation(
            store, key, trust, lock, channel=channel, manifest=source.manifest, parent=source.number,
            message=message or f"new numbering epoch, content of generation {source.number}: {source.message}",
            policy=source.policy, stats=dict(source.stats), expires=expires, now=now, publish=True,
            current=None, expected_ref=before, number=number, epoch=max(g.epoch for g in [source, *records]) + 1)
    return PublishResult(channel, gen.number, source.number, source.number, gen.epoch)


def _verified_records(store: Store, channel: str, trust: Trust) -> list[Generation]:
    """Every record of the channel that verifies (renumber is rare: reading them all is fine)."""
    out = []
    for n in store.generation_numbers(channel):
        try:
            out.append(verified_generation(store, channel, n, trust)[0])
        except Untrusted:
            continue
    return out


def refresh(store: Store, channel: str, key: SecretKey, trust: Trust, ttl: timedelta = DEFAULT_TIMESTAMP_TTL,
            now: datetime | None = None) -> PublishResult:
    """Renew the timestamp of the channel's ref (freeze protection): same generation, fresh expiry.

    Run from a timer (contrib/systemd/regen-refresh.timer): once a channel has a timestamp its
    clients refuse a ref whose timestamp expired, so a store that withholds updates is noticed.
    """
    check_channel(channel)
    with StoreLock(store, "regen refresh") as lock:
        found = verified_ref(store, channel, trust)
        if found is None:
            raise NotPublishable(f"channel {channel!r} has no published generation to timestamp")
        gen, before = found
        move_ref(store, lock, channel, before, before, key, trust, force_stamp=True, ttl=ttl)
    return PublishResult(channel, gen.number, gen.number, epoch=gen.epoch)


__all__ = ["DEFAULT_TIMESTAMP_TTL", "PublishResult", "current_generation", "expiry", "next_number", "publish",
           "refresh", "renumber", "rollback", "stamped", "unknown_key_warning", "write_new_generation"]
