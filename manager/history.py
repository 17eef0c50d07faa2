"""`regen log`, `show`, `diff`: reading a channel's history (I/O through the Store).

Listings parse records without trusting them (peek); `show` also says whether the record
verifies against the keys the operator trusts (--key, --trusted-key; never the store's keys/).
`diff` streams: both manifests are merge-joined, so two 1,000,000-entry generations are compared in constant memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from regen.store import Change, Generation, Store, diff

from .publish import current_generation
from .trust import Trust, verifies


@dataclass(frozen=True, slots=True)
class LogEntry:
    generation: Generation
    current: bool

    def as_dict(self) -> dict[str, object]:
        g = self.generation
        return {"number": g.number, "created": g.created, "message": g.message, "parent": g.parent,
                "manifest": g.manifest, "expires": g.expires, "files": g.stats.get("files", 0),
                "bytes": g.stats.get("bytes", 0), "current": self.current}


@dataclass(frozen=True, slots=True)
class ChannelLog:
    channel: str
    ref: int | None
    entries: tuple[LogEntry, ...]

    def as_dict(self) -> dict[str, object]:
        return {"channel": self.channel, "ref": self.ref, "generations": [e.as_dict() for e in self.entries]}


def channel_log(store: Store, channel: str) -> ChannelLog:
    current = current_generation(store, channel)
    ref = current.number if current else None
    entries = []
    for n in store.generation_numbers(channel):
        gen = store.peek_generation(store.read_generation(channel, n), where=f"generation {n} of {channel!r}")
        entries.append(LogEntry(gen, gen.number == ref))
    return ChannelLog(channel, ref, tuple(entries))


def log(store: Store, channel: str | None = None) -> list[ChannelLog]:
    channels = [channel] if channel is not None else store.channels()
    return [channel_log(store, c) for c in channels]


@dataclass(frozen=True, slots=True)
class GenerationInfo:
    generation: Generation
    signed_by: tuple[str, ...]
    verified: bool
    verify_error: str | None
    current: bool

    def as_dict(self) -> dict[str, object]:
        g = self.generation
        return {"channel": g.channel, "number": g.number, "created": g.created, "message": g.message,
                "parent": g.parent, "manifest": g.manifest, "expires": g.expires, "policy": g.policy.as_dict(),
                "stats": dict(g.stats), "signed_by": list(self.signed_by), "verified": self.verified,
                "verify_error": self.verify_error, "current": self.current, "store_id": g.store_id}


def signers(envelope: bytes) -> tuple[str, ...]:
    """Key ids named by an envelope's signatures (whether or not they verify)."""
    try:
        sigs = json.loads(envelope).get("signatures", [])
        return tuple(str(s.get("keyid")) for s in sigs if isinstance(s, dict))
    except (ValueError, AttributeError):
        return ()


def show(store: Store, channel: str, number: int, trust: Trust) -> GenerationInfo:
    where = f"generation {number} of {channel!r}"
    data = store.read_generation(channel, number)
    gen = store.peek_generation(data, where=where)
    error = verifies(data, trust, where=where)
    if error is None and gen.store_id != store.store_id:
        error = f"signed for store {gen.store_id}, not this store {store.store_id}"
    verified = error is None
    current = current_generation(store, channel)
    return GenerationInfo(gen, signers(data), verified, error, current is not None and current.number == number)


@dataclass(frozen=True, slots=True)
class DiffSpec:
    channel: str
    old: Generation
    new: Generation


@contextmanager
def diff_generations(store: Store, channel: str, a: int, b: int) -> Iterator[tuple[DiffSpec, Iterator[Change]]]:
    """The path-level changes from generation `a` to `b`, as a stream."""
    old = store.peek_generation(store.read_generation(channel, a), where=f"generation {a} of {channel!r}")
    new = store.peek_generation(store.read_generation(channel, b), where=f"generation {b} of {channel!r}")
    with ExitStack() as stack:
        old_entries = stack.enter_context(store.open_manifest(old.manifest))
        new_entries = stack.enter_context(store.open_manifest(new.manifest))
        yield DiffSpec(channel, old, new), diff(old_entries, new_entries)
