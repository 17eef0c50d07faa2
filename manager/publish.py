"""Signed generations: numbering, writing, publishing, rolling back (I/O through the Store).

Publish order (store/store.py): objects, manifest, signed record, then the ref. Every
operation here runs under the store's writer lock, so numbering cannot race another
manager and gc cannot sweep between upload and record.

Clients refuse a generation lower than one they accepted (rollback protection), so going
back is never a ref moved backwards: `rollback` signs the old content as a NEW, higher
generation, and `publish` refuses a number below the current one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from regen.store import (
    Generation,
    Policy,
    PublicKey,
    SecretKey,
    Store,
    StoreLock,
    format_time,
    trust_map,
    utcnow,
    verify_generation,
)

from .errors import NotPublishable
from .options import check_channel

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def current_generation(store: Store, channel: str) -> Generation | None:
    """What the channel's ref points at (parsed, not verified: the manager's own view)."""
    ref = store.read_ref(channel)
    return None if ref is None else store.peek_generation(ref, where=f"ref of channel {channel!r}")


def next_number(store: Store, channel: str, current: Generation | None) -> int:
    numbers = store.generation_numbers(channel)
    highest = max([*numbers, current.number if current else 0], default=0)
    return highest + 1


def trusted_keys(store: Store, key: SecretKey | None) -> dict[str, PublicKey]:
    """The publisher keys recorded in the store (keys/) plus the operator's own key."""
    keys = list(store.public_keys().values())
    if key is not None:
        keys.append(key.public)
    return trust_map(keys)


def unknown_key_warning(store: Store, key: SecretKey) -> str | None:
    """A warning when `key` has never signed in this store: clients will not trust it yet."""
    known = store.public_keys()
    if known and key.public.keyid not in known:
        return (f"key {key.public.keyid} has not signed in this store before; clients accept this generation "
                f"only once its .pub file is in their trusted_keys")
    return None


def read_verified(store: Store, channel: str, number: int, key: SecretKey | None,
                  now: datetime | None = None, *, check_expiry: bool = True) -> tuple[Generation, bytes]:
    """Generation `number` of `channel` and its envelope, refused unless it verifies.

    `check_expiry=False` is for rollback, which re-signs the old content with a fresh expiry.
    """
    data = store.read_generation(channel, number)
    if not check_expiry:
        now = _EPOCH
    gen = verify_generation(data, trusted_keys(store, key), store_id=store.store_id, channel=channel, now=now,
                            where=f"generation {number} of channel {channel!r}")
    if gen.number != number:
        raise NotPublishable(f"generation file {number} of channel {channel!r} holds generation {gen.number}",
                             hint="the store is damaged; run 'regen fsck'")
    return gen, data


def expiry(now: datetime, expires: timedelta | None) -> str | None:
    return None if expires is None else format_time(now + expires)


def write_new_generation(store: Store, key: SecretKey, *, channel: str, manifest: str, parent: int | None,
                         message: str, policy: Policy, stats: dict[str, int], expires: timedelta | None,
                         now: datetime, publish: bool, current: Generation | None) -> Generation:
    """Sign and write the channel's next generation; move the ref to it if `publish`. Caller holds the lock."""
    gen = Generation(store.store_id, channel, next_number(store, channel, current), manifest, format_time(now),
                     parent, message, policy, stats, expiry(now, expires))
    envelope = store.write_generation(gen, [key])
    if publish:
        store.set_ref(channel, envelope)
    return gen


@dataclass(frozen=True, slots=True)
class PublishResult:
    channel: str
    number: int
    previous: int | None
    content_of: int | None = None  # rollback: the generation whose content was republished

    def as_dict(self) -> dict[str, object]:
        return {"channel": self.channel, "number": self.number, "previous": self.previous,
                "content_of": self.content_of}


def publish(store: Store, channel: str, number: int, key: SecretKey | None, now: datetime | None = None) -> PublishResult:
    """Point the channel at generation `number`, which must exist, verify and not go backwards."""
    check_channel(channel)
    with StoreLock(store, "regen publish"):
        _gen, data = read_verified(store, channel, number, key, now)
        current = current_generation(store, channel)
        if current is not None and number < current.number:
            raise NotPublishable(
                f"generation {number} is older than generation {current.number}, the current one of {channel!r}; "
                f"clients refuse to go back",
                hint=f"republish its content as a new generation with 'regen rollback --channel {channel} --to {number}'")
        store.set_ref(channel, data)
    return PublishResult(channel, number, current.number if current else None)


def rollback(store: Store, channel: str, key: SecretKey, *, to: int | None = None, message: str | None = None,
             expires: timedelta | None = None, now: datetime | None = None) -> PublishResult:
    """Publish the content of an older generation (default: the current one's parent) as a new one."""
    check_channel(channel)
    now = now or utcnow()
    with StoreLock(store, "regen rollback"):
        current = current_generation(store, channel)
        if current is None:
            raise NotPublishable(f"channel {channel!r} has no published generation to roll back from")
        if to is None:
            if current.parent is None:
                raise NotPublishable(f"generation {current.number} of {channel!r} has no parent",
                                     hint="name the generation to go back to with --to N")
            to = current.parent
        target, _ = read_verified(store, channel, to, key, check_expiry=False)
        if to >= current.number:
            raise NotPublishable(f"generation {to} is not older than generation {current.number}, "
                                 f"the current one of {channel!r}",
                                 hint=f"publish a newer generation with 'regen publish {to} --channel {channel}'")
        gen = write_new_generation(
            store, key, channel=channel, manifest=target.manifest, parent=current.number,
            message=message or f"rollback to generation {to}: {target.message}", policy=target.policy,
            stats=dict(target.stats), expires=expires, now=now, publish=True, current=current)
    return PublishResult(channel, gen.number, current.number, to)
