"""`regen migrate`: a store of loose objects becomes a packed store (feature "packs"), never silently (I/O).

Order, so that a kill at any point leaves a store every client reads:
  1. the loose objects up to 4 MiB stored are copied, verified, into packs; their index and the
     index list are written (a format-1 client ignores these files: the store is unchanged for it);
  2. regen.json is replaced by one listing the "packs" feature -- the switch (from here on a regen
     without packs refuses the store with UnsupportedFormat, as documented);
  3. the loose copies of packed objects are deleted (readers look in the indexes first).
Larger objects stay loose (a packed store reads both); the next snapshot chunks their new versions.
Run again after a crash, it picks up where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from . import layout
from .chunks import CHUNK_ABOVE
from .config import read_config
from .errors import NotFound, StoreError
from .objects import ObjectId, decode
from .packs import (
    PackWriter,
    merge_rows,
    read_index,
    read_list,
    write_index,
    write_list,
)
from .pool import bounded_map, window_for

if TYPE_CHECKING:
    from .store import Store


@dataclass(frozen=True, slots=True)
class MigrateResult:
    packed: int          # objects copied into packs by this run
    packed_bytes: int    # their stored bytes
    loose_kept: int      # objects left loose (too large, or damaged: fsck names those)
    loose_deleted: int   # loose copies removed after the switch
    was_packed: bool     # the store already had the feature

    def as_dict(self) -> dict[str, object]:
        return {"packed": self.packed, "packed_bytes": self.packed_bytes, "loose_kept": self.loose_kept,
                "loose_deleted": self.loose_deleted, "was_packed": self.was_packed}


def migrate_to_packs(store: Store, *, pack_size: int, progress: Callable[[int, int], None] | None = None
                     ) -> MigrateResult:
    """Convert `store` (the caller holds the writer lock); see the module docstring for the order."""
    cfg = read_config(store.backend)
    was_packed = cfg.packed
    known = {loc.oid for name in read_list(store) for loc in read_index(store, name)}
    loose = store.list_objects()
    writer = PackWriter(store, pack_size)
    kept = packed = 0

    def load(oid: ObjectId) -> tuple[ObjectId, bytes | None]:
        if oid in known:
            return oid, None
        try:
            if store.backend.stat(layout.object_path(oid)).size > CHUNK_ABOVE:
                return oid, None
            stored = store.backend.read(layout.object_path(oid))
            decode(stored, oid, where=layout.object_path(oid))  # a damaged object is not packed
        except StoreError:
            return oid, b""
        return oid, stored

    with ThreadPoolExecutor(store.concurrency) as pool:
        for oid, stored in bounded_map(pool, load, loose, window_for(store.concurrency)):
            if stored:
                writer.add(oid, stored[:1], stored[1:])
                known.add(oid)
                packed += 1
            elif oid not in known:
                kept += 1
            if progress:
                progress(1, len(stored or b""))
    packs, blobs = writer.flush()
    if packs:
        listed = read_list(store)
        old = [loc for name in listed for loc in read_index(store, name)]
        packs, blobs = merge_rows(packs, blobs, old)
        write_list(store, [write_index(store, packs, blobs)])
    if not was_packed:
        store.backend.write(layout.CONFIG, replace(cfg, features=tuple(sorted({*cfg.features, "packs"})),
                                                   pack_size=pack_size).to_json())
    store.reload_config()
    deleted = 0
    for oid in loose:
        if oid in known:
            try:
                store.backend.delete(layout.object_path(oid))
                deleted += 1
            except NotFound:
                pass
    return MigrateResult(packed, writer.bytes_written, kept, deleted, was_packed)


__all__ = ["MigrateResult", "migrate_to_packs"]
