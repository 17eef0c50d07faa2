"""gc of a packed store, restic prune style: plan (which packs are garbage, which mostly garbage),
then execute under the writer lock (I/O).

A pack with no live blob is deleted; a pack whose live blobs fill less than REPACK_BELOW of it is
rewritten: its live blobs are copied into new packs and it is deleted. Packs and indexes no index
list names (left by a writer that died) are deleted once older than the grace period.

Crash safety (kill -9 at any point leaves a consistent store), by order:
  1. new packs are written (nothing names them yet: garbage if we die here);
  2. one new index over every kept and new blob is written (unlisted: garbage if we die here);
  3. the index list is replaced by one naming only the new index -- the single atomic switch;
  4. only then are the old indexes, the rewritten packs and the garbage deleted -- never a file the
     new list names (a re-run after a crash rewrites the same packs under the same names).
Before 3 the old list and everything it names are untouched; after 3 the new list names only
stored files, and the deletions of 4 are repeated by the next gc if we die among them.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from . import chunks, layout
from .errors import NotFound, StoreError
from .objects import ObjectId
from .packindex import Location, coalesce
from .packs import (
    PackWriter,
    merge_rows,
    read_index,
    read_list,
    write_index,
    write_list,
)

if TYPE_CHECKING:
    from .lock import StoreLock
    from .store import Store

REPACK_BELOW = 0.5  # rewrite a pack whose live blobs fill less than half of it (restic's default is 5% unused)


@dataclass(frozen=True, slots=True)
class RepackPlan:
    listed: tuple[str, ...]                 # the indexes the list names now (replaced when anything changes)
    keep: tuple[Location, ...]              # blobs of packs kept as they are
    rewrite: tuple[Location, ...]           # live blobs copied out of packs being dropped
    drop_packs: tuple[tuple[str, int], ...]  # (pack, bytes) deleted after the switch
    stray: tuple[str, ...]                  # unlisted packs and indexes older than the grace period (paths)
    garbage_blobs: int

    @property
    def changes(self) -> bool:
        return bool(self.drop_packs or self.stray)

    def stats(self) -> dict[str, int]:
        return {"packs_to_delete": len(self.drop_packs), "pack_bytes_to_free": sum(n for _, n in self.drop_packs),
                "blobs_to_rewrite": len(self.rewrite), "garbage_blobs": self.garbage_blobs,
                "stray_pack_files": len(self.stray)}


def chunk_refs(store: Store, big: Iterable[ObjectId]) -> set[ObjectId]:
    """The chunk ids the chunk lists among `big` (referenced files above the chunking threshold) name."""
    found: set[ObjectId] = set()
    for oid in big:
        loc = store.locate(oid)
        if loc is None:
            continue
        from .packs import read_blob

        blob = read_blob(store, loc)
        if blob[:1] == chunks.TAG_CHUNKS:
            found.update(cid for cid, _ in chunks.decode_list(blob[1:], oid, layout.pack_path(loc.pack)))
    return found


def plan_repack(store: Store, referenced: set[bytes], *, now: datetime, grace: timedelta,
                below: float = REPACK_BELOW) -> RepackPlan:
    """What gc does to the packs, given every referenced id (manifests, files, chunks) as raw bytes."""
    listed = read_list(store)
    by_pack: dict[str, list[Location]] = {}
    for name in listed:
        for loc in read_index(store, name):
            by_pack.setdefault(loc.pack, []).append(loc)
    keep: list[Location] = []
    rewrite: list[Location] = []
    drop: list[tuple[str, int]] = []
    garbage = 0
    for pack, locs in sorted(by_pack.items()):
        live = [loc for loc in locs if bytes.fromhex(loc.oid) in referenced]
        total = sum(loc.length for loc in locs)
        garbage += len(locs) - len(live)
        if not live:
            drop.append((pack, total))
        elif sum(loc.length for loc in live) < below * total:
            drop.append((pack, total))
            rewrite.extend(live)
        else:
            keep.extend(locs)
    stray = []
    names = set(listed)
    for top, parse_known in ((layout.PACKS, set(by_pack)), (layout.INDEX, names)):
        for path in store.backend.list(top):
            hid = layout.parse_hashed_path(path, top)
            if hid is None or hid in parse_known:
                continue
            try:
                st = store.backend.stat(path)
            except NotFound:
                continue
            if st.mtime is not None and now.timestamp() - st.mtime >= grace.total_seconds():
                stray.append(path)
    return RepackPlan(tuple(listed), tuple(keep), tuple(rewrite), tuple(drop), tuple(sorted(stray)), garbage)


def execute_repack(store: Store, plan: RepackPlan, *, lock: StoreLock | None = None) -> None:
    """Carry out `plan` in the crash-safe order of the module docstring."""
    if not plan.changes:
        return
    # what the new list names is never deleted: a gc re-run after a crash writes the very packs (same
    # blobs, same order: same names) the crashed one left as strays
    written: set[str] = set()
    if plan.drop_packs:
        writer = PackWriter(store, store.config.pack_size)
        for span in coalesce(plan.rewrite):
            data = store.backend.read_range(layout.pack_path(span.pack), span.start, span.end - span.start)
            for loc in span.blobs:
                blob = data[loc.offset - span.start: loc.offset - span.start + loc.length]
                where = layout.pack_path(span.pack)
                try:  # never copy a damaged blob into a new pack: fsck reports it, the next snapshot re-uploads it
                    if blob[:1] == chunks.TAG_CHUNKS:  # a chunk list: its chunks are checked as blobs of their own
                        chunks.decode_list(blob[1:], loc.oid, where)
                    else:
                        store.decode_into(loc.oid, io.BytesIO(blob), _Discard(), where=where)
                except StoreError:
                    continue
                writer.add(loc.oid, blob[:1], blob[1:])
        packs, blobs = writer.flush()
        packs, blobs = merge_rows(packs, blobs, plan.keep)
        name = write_index(store, packs, blobs) if blobs else None
        if lock is not None:
            lock.refresh()  # the switch only while the lease is ours
        write_list(store, [name] if name else [])
        written = {layout.pack_path(p) for p in packs} | ({layout.index_path(name)} if name else set())
        for old in plan.listed:
            if layout.index_path(old) not in written:
                _delete(store, layout.index_path(old))
        for pack, _ in plan.drop_packs:
            if layout.pack_path(pack) not in written:
                _delete(store, layout.pack_path(pack))
    for path in plan.stray:
        if path not in written:
            _delete(store, path)


def _delete(store: Store, path: str) -> None:
    try:
        store.backend.delete(path)
    except NotFound:
        pass


class _Discard:
    def write(self, data: bytes) -> int:
        return len(data)


__all__ = ["REPACK_BELOW", "RepackPlan", "chunk_refs", "execute_repack", "plan_repack"]
