"""Garbage collection: plan (what is unreachable and old enough) then execute.

The caller holds the writer lock from `plan_gc` to `execute_gc`, so nothing can be
published between mark and sweep; the grace period additionally protects objects a
snapshot may have just uploaded before it took the lock (cf. ostree#2337, where prune
deleted a fresh commit's objects).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from . import layout
from .chunks import CHUNK_ABOVE
from .errors import IntegrityError, NotFound, TrustError, UnsupportedFormat
from .generation import Generation, utcnow, verify_generation
from .lock import StoreLock
from .objects import ObjectId
from .repack import RepackPlan, chunk_refs, execute_repack, plan_repack
from .store import Store

if TYPE_CHECKING:
    from .signing import PublicKey

DEFAULT_KEEP = 10
DEFAULT_GRACE = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class GcPlan:
    delete_objects: tuple[tuple[ObjectId, int], ...]
    delete_generations: tuple[tuple[str, int], ...]
    kept_generations: tuple[tuple[str, int], ...]
    referenced_objects: int
    young_unreferenced: int
    repack: RepackPlan | None = None  # a packed store's packs (repack.py)
    delete_patches: tuple[ObjectId, ...] = ()  # manifest patches of manifests no longer kept (§3.3)
    unverified: tuple[tuple[str, str], ...] = ()  # (path, why): records gc neither counts nor deletes

    def stats(self) -> dict[str, int]:
        return {
            "objects_to_delete": len(self.delete_objects),
            "bytes_to_free": sum(size for _, size in self.delete_objects),
            "generations_to_delete": len(self.delete_generations),
            "generations_kept": len(self.kept_generations),
            "referenced_objects": self.referenced_objects,
            "young_unreferenced_kept": self.young_unreferenced,
            "patches_to_delete": len(self.delete_patches),
            "unverified_generations": len(self.unverified),
            **(self.repack.stats() if self.repack is not None else {}),
        }


def kept_numbers(numbers: list[int], ref_number: int | None, keep: int) -> set[int]:
    """The newest `keep` generations plus the one the ref points at (pure)."""
    kept = set(sorted(numbers)[-keep:]) if keep > 0 else set()
    if ref_number is not None:
        kept.add(ref_number)
    return kept


_REFUSED = (TrustError, IntegrityError, UnsupportedFormat)
_NO_EXPIRY = datetime(1970, 1, 1, tzinfo=UTC)  # gc keeps what was signed, expired or not


def _verified(store: Store, channel: str, data: bytes, trusted: Mapping[str, PublicKey], where: str) -> Generation:
    return verify_generation(data, trusted, store_id=store.store_id, channel=channel, now=_NO_EXPIRY, where=where)


def _channel_records(store: Store, channel: str, trusted: Mapping[str, PublicKey] | None,
                     unverified: list[tuple[str, str]]) -> tuple[dict[int, Generation], int | None]:
    """The records gc may count ({number: record}) and the ref's number.

    Without `trusted` every record counts (read unverified). With it only records that verify
    and sit at their own number count: forged records with high numbers must not push the real
    ones out of the keep window (issue 12); they are listed in `unverified`, never deleted here
    (a forgotten key must not make gc delete a real publisher's records).
    """
    ref = store.read_ref(channel)
    ref_number = store.peek_generation(ref).number if ref is not None else None
    records: dict[int, Generation] = {}
    for n in store.generation_numbers(channel):
        data = store.read_generation(channel, n)
        if trusted is None:
            records[n] = store.peek_generation(data)
            continue
        where = f"generation {n} of channel {channel!r}"
        try:
            gen = _verified(store, channel, data, trusted, where)
        except _REFUSED as exc:
            unverified.append((layout.generation_path(channel, n), exc.message))
            continue
        if gen.number != n:
            unverified.append((layout.generation_path(channel, n), f"it holds a record of generation {gen.number}"))
            continue
        records[n] = gen
    if ref is not None and trusted is not None:
        try:
            _verified(store, channel, ref, trusted, f"refs/{channel}")
        except _REFUSED as exc:  # the manager refuses before planning; kept anyway (keeping more is safe)
            unverified.append((layout.ref_path(channel), exc.message))
    return records, ref_number


def plan_gc(store: Store, *, keep: int = DEFAULT_KEEP, grace: timedelta = DEFAULT_GRACE,
            now: datetime | None = None, trusted: Mapping[str, PublicKey] | None = None) -> GcPlan:
    """What gc would delete. With `trusted` (the operator's keys) only records that verify are
    counted in the keep window and mark objects (the caller refuses a ref that does not verify)."""
    now = now or utcnow()
    manifests: set[ObjectId] = set()
    kept: list[tuple[str, int]] = []
    dropped: list[tuple[str, int]] = []
    unverified: list[tuple[str, str]] = []
    for channel in store.channels():
        records, ref_number = _channel_records(store, channel, trusted, unverified)
        keep_set = kept_numbers(list(records), ref_number, keep)
        for n in sorted(records):
            if n in keep_set:
                kept.append((channel, n))
                manifests.add(records[n].manifest)
            else:
                dropped.append((channel, n))
    sealed: set[bytes] = set()  # sealed overlay objects (FORMAT.md §8.1): kept without being opened
    for host in store.overlay_hosts():
        data = store.read_overlay(host)
        if data is not None:
            from .generation import Overlay
            from .signing import peek_envelope

            ov = Overlay.from_record(peek_envelope(data))
            if ov.sealed is not None:  # its manifest and files are sealed boxes, listed in the record
                sealed.update(bytes.fromhex(o) for o in ov.sealed.all_objects())
            elif ov.manifest is not None:
                manifests.add(ov.manifest)
    referenced: set[bytes] = set(sealed)
    big: set[ObjectId] = set()  # files a packed store may hold as chunk lists
    for m in manifests:
        referenced.add(bytes.fromhex(m))
        with store.open_manifest(m) as entries:
            for e in entries:
                if e.oid is not None:
                    referenced.add(bytes.fromhex(e.oid))
                    if e.size > CHUNK_ABOVE:
                        big.add(e.oid)
    repack = None
    if store.config.packed:
        referenced.update(bytes.fromhex(c) for c in chunk_refs(store, big))
        repack = plan_repack(store, referenced, now=now, grace=grace)
    to_delete: list[tuple[ObjectId, int]] = []
    young = 0
    for oid in store.list_objects():
        if bytes.fromhex(oid) in referenced:
            continue
        try:
            st = store.backend.stat(layout.object_path(oid))
        except NotFound:
            continue
        if st.mtime is None or now.timestamp() - st.mtime < grace.total_seconds():
            young += 1
            continue
        to_delete.append((oid, st.size))
    return GcPlan(tuple(sorted(to_delete)), tuple(dropped), tuple(kept), len(referenced), young, repack,
                  _stale_patches(store, manifests, now, grace), tuple(unverified))


def _stale_patches(store: Store, manifests: set[ObjectId], now: datetime, grace: timedelta) -> tuple[ObjectId, ...]:
    """Patches making a manifest no kept record names, older than the grace period (a snapshot in
    progress writes its patch before its record)."""
    stale = []
    for p in store.backend.list(layout.PATCHES):
        target = layout.parse_hashed_path(p, layout.PATCHES)
        if target is None or target in manifests:
            continue
        try:
            st = store.backend.stat(p)
        except NotFound:
            continue
        if st.mtime is not None and now.timestamp() - st.mtime >= grace.total_seconds():
            stale.append(target)
    return tuple(sorted(stale))


def execute_gc(store: Store, plan: GcPlan, progress: Callable[[int, int], None] | None = None,
               *, lock: StoreLock | None = None) -> None:
    """Delete records first, so no surviving record ever points at a deleted object.

    With `lock` (the StoreLock held since `plan_gc`), the lease is confirmed and extended
    before anything is deleted: if it ran out and another writer took the lock, the plan
    may be stale and LockHeld is raised instead of sweeping.
    """
    if lock is not None:
        lock.refresh()
    for channel, n in plan.delete_generations:
        try:
            store.backend.delete(layout.generation_path(channel, n))
        except NotFound:
            pass
    for oid, size in plan.delete_objects:
        try:
            store.delete_object(oid)
        except NotFound:
            pass
        if progress:
            progress(1, size)
    for target in plan.delete_patches:
        try:
            store.backend.delete(layout.patch_path(target))
        except NotFound:
            pass
    if plan.repack is not None:  # after the records: no surviving record names a blob it drops
        execute_repack(store, plan.repack, lock=lock)
