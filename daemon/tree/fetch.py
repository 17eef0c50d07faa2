"""Pull the objects the local cache lacks from the store, concurrently and verified (I/O).

Only objects missing from the cache are requested: an update reads exactly the new content.
Every object is verified against its id as it is written, compressed, into the cache and renamed
there only when complete (Store.fetch_many through ObjectCache.compressing); failures are collected per
object, the rest go on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from regen.daemon.errors import Interrupted, signal_name
from regen.daemon.tree.cache import ObjectCache
from regen.store import Store


@dataclass(slots=True)
class FetchResult:
    fetched: int = 0
    bytes: int = 0                 # content bytes written to the cache
    requests: int = 0              # backend reads made for them
    bytes_read: int = 0            # bytes transferred (compressed)
    errors: dict[str, str] = field(default_factory=dict)   # the first few failures (examples)
    failed: int = 0                                        # every failure counted
    # per failure class (unreachable, misconfigured, damaged, other): (count, first error's line)
    classes: dict[str, tuple[int, str]] = field(default_factory=dict)

    def summary(self) -> str:
        """One part per failure class: 'unreachable 37 (first: ...)'."""
        return "; ".join(f"{name} {count} (first: {first})" for name, (count, first) in self.classes.items())


def fetch_missing(store: Store, cache: ObjectCache, oids: Iterable[str],
                  progress: Callable[[int, int], None] | None = None,
                  sizes: Mapping[str, int] | None = None, stop: threading.Event | None = None,
                  seeds: Mapping[str, str] | None = None, raw: bool = False) -> FetchResult:
    """`sizes`: each object's size from the manifest; an object inflating past it is refused.
    `stop` set (SIGINT/SIGTERM): Interrupted once the transfers in flight are done.
    `seeds`: big file object -> the local file holding its installed previous version: its chunks
    seed the rebuild (verified as read), so an update fetches only the changed chunks even when no
    chunk list of the old version was kept (after `regen migrate` or a lost cache).
    `raw` (an install): written uncompressed and noted in `cache.fresh`, for apply to move them
    into the tree (each content is then written once; run/refill.py fills the cache later)."""
    wanted = cache.missing(oids)
    result = FetchResult()
    if not wanted:
        return result
    if seeds:
        store.seed_chunks(seeds[o] for o in wanted if o in seeds)
    before = store.counters.as_dict()
    transfer = store.fetch_many(wanted, cache.raw_dest if raw else cache.dest, fsync=False, progress=progress,
                                sizes=sizes, stop=stop, wrap=None if raw else cache.compressing)
    if raw:
        cache.fresh.update(transfer.done)
    if transfer.stopped:
        raise Interrupted(f"stopped by {signal_name(stop)} after fetching {len(transfer.done)} of {len(wanted)} "
                          "objects")
    after = store.counters.as_dict()
    result.fetched = len(transfer.done)
    result.bytes = transfer.bytes
    result.requests = after["reads"] - before["reads"]
    result.bytes_read = after["bytes_read"] - before["bytes_read"]
    result.errors = {oid: err.one_line() for oid, err in transfer.errors.items()}
    result.failed = transfer.failed
    result.classes = dict(transfer.classes)
    return result


def fetch_one(store: Store, cache: ObjectCache, oid: str, max_bytes: int | None = None) -> int:
    """Fetch one object into the cache (verified); returns its size. Raises the StoreError."""
    return store.fetch_to_file(oid, cache.dest(oid), fsync=False, max_bytes=max_bytes, wrap=cache.compressing).size


__all__ = ["FetchResult", "fetch_missing", "fetch_one"]
