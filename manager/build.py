"""A local tree into a stored manifest: scan, write the manifest, diff, upload what is new (I/O).

Shared by `regen snapshot` (a channel's generation) and `regen host set` (a host overlay).

Memory stays bounded by the tree's depth plus the objects to upload: the manifest streams
to a temporary file (ManifestWriter), the stat cache is merge-joined, and the diff against
the base manifest is a merge-join too. Only objects of files that are new or changed
relative to the base are candidates for upload (the base's objects are in the store: its
record is kept by gc, and the caller holds the writer lock); each candidate costs one
existence check, and only missing ones are read again and uploaded, verified against the
digest taken during the scan (a file that changed since then stops the snapshot).

Two exceptions to "the base's objects are there": objects `regen fsck --repair` set aside
(listed under corrupt/, one LIST per build) are candidates again, so the next snapshot
re-uploads them; and `full=True` (`regen snapshot --full`) makes every object a candidate,
for a store that lost objects some other way.
"""

from __future__ import annotations

import gc
import os
import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from regen.store import (
    FORMAT_META,
    RACY_WINDOW_NS,
    Entry,
    ManifestWriter,
    ObjectId,
    StagedWrites,
    Store,
    diff,
    is_object_id,
    put_manifest_patch,
    wants_manifest_patch,
)
from regen.store.errors import IntegrityError, ManifestInvalid, StoreError

from .errors import FileChanged, SourceInvalid
from .progress import NoProgress, Progress
from .scan import Scanner, shown
from .statcache import StatCache

UPLOAD_BATCH = 4096  # objects per put_many (on file:// one filesystem sync each)
INLINE_BYTES_IN_FLIGHT = 16 << 20  # content held for inline uploads not finished yet


@dataclass(frozen=True, slots=True)
class TreeBuild:
    """What building a tree did: the manifest, its stats, its changes against the base, the work."""

    manifest: ObjectId
    stats: dict[str, int]
    changes: dict[str, int]
    objects_uploaded: int
    bytes_uploaded: int
    files_hashed: int
    files_reused: int
    bytes_hashed: int
    skipped: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "manifest": self.manifest, "stats": dict(self.stats), "changes": dict(self.changes),
            "uploaded": {"objects": self.objects_uploaded, "bytes": self.bytes_uploaded},
            "files_hashed": self.files_hashed, "files_reused": self.files_reused, "bytes_hashed": self.bytes_hashed,
            "skipped": list(self.skipped),
        }


def check_source(src: str) -> str:
    path = os.path.abspath(os.path.expanduser(src))
    if not os.path.isdir(path):
        what = "does not exist" if not os.path.lexists(path) else "is not a directory"
        raise SourceInvalid(f"source {shown(path)} {what}", hint="give the directory to snapshot")
    return path


@contextmanager
def _base_entries(store: Store, base: ObjectId | None) -> Iterator[Iterator[Entry]]:
    if base is None:
        yield iter(())
    else:
        with store.open_manifest(base, trusted=True) as entries:  # (validated when it was published)
            yield entries


def build_tree(store: Store, src: str, *, exclude: tuple[str, ...] = (), base: ObjectId | None,
               cache_dir: Path, progress: Progress | None = None, full: bool = False,
               racy_window_ns: int = RACY_WINDOW_NS, one_file_system: bool = True) -> TreeBuild:
    """Store the tree at `src` as a manifest and return what it took; nothing refers to it yet.

    One pass: each entry of the walk goes to the manifest writer and, in the same step, into
    the merge-join against the base, which picks the upload candidates.
    """
    with _no_cyclic_gc():
        return _build_tree(store, src, exclude=exclude, base=base, cache_dir=cache_dir, progress=progress,
                           full=full, racy_window_ns=racy_window_ns, one_file_system=one_file_system)


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """The scan allocates a few objects per file and builds few cycles: with the default thresholds
    the cyclic collector re-walks the young heap every 700 allocations (several % of a big scan).
    Collections stay on, only rarer, so the cycles an error makes (traceback -> frame) still go."""
    before = gc.get_threshold()
    gc.set_threshold(100_000, 50, 50)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _build_tree(store: Store, src: str, *, exclude: tuple[str, ...], base: ObjectId | None, cache_dir: Path,
                progress: Progress | None, full: bool, racy_window_ns: int, one_file_system: bool) -> TreeBuild:
    progress = progress or NoProgress()
    root = check_source(src)
    suspects = None if full else set_aside_objects(store)
    skip = own_paths(root, store, cache_dir)
    _ = store.config  # read once, before upload threads start
    with tempfile.TemporaryDirectory(prefix="regen-snapshot-") as tmp:
        mpath = os.path.join(tmp, "manifest")
        try:
            # packed store: new objects go into pack files, published (packs, index, list) on leaving
            with store.packing(store.config.pack_size):
                # leaving this block waits for the inline uploads, then makes them durable and visible
                with store.staged() as batch, ThreadPoolExecutor(_workers(store, batch)) as pool:
                    inline = _InlineUploads(store, batch, pool)
                    with StatCache.open(cache_dir, store.store_id, root) as cache, \
                            _base_entries(store, base) as old, open(mpath, "wb") as out:
                        writer = ManifestWriter(out, FORMAT_META)
                        scanner = Scanner(root, cache, exclude=exclude, skip=skip, progress=progress,
                                          racy_window_ns=racy_window_ns, hold=inline.hold,
                                          one_file_system=one_file_system)
                        progress.start("scanning", total_items=None)
                        changes, candidates = _changes(old, _written(writer, scanner.entries(), root), suspects,
                                                       inline.want)
                        out.close()
                        inline.finish()
                        cache.commit()
                rest = {oid: where for oid, where in candidates.items() if oid not in inline.taken}
                uploaded, nbytes = _upload(store, root, rest, progress)
        finally:
            progress.finish()  # an error line must not be drawn over by a live bar
        store.put_file(mpath, writer.oid)
        _put_patch(store, base, mpath, writer.oid)
    counts = scanner.counts
    return TreeBuild(writer.oid, writer.stats.as_dict(), changes, uploaded + inline.objects, nbytes + inline.nbytes,
                     counts.files_hashed, counts.files_reused, counts.bytes_hashed, tuple(counts.skipped))


def _put_patch(store: Store, base: ObjectId | None, mpath: str, oid: ObjectId) -> None:
    """A big manifest of a packed store also gets a line patch from its base: a client holding the base
    reads the changed lines instead of the whole manifest (regen.store.patches, FORMAT.md §3.3)."""
    if base is None or not wants_manifest_patch(store, base, oid, os.path.getsize(mpath)):
        return
    with open(mpath, "rb") as fp:
        new = fp.read()
    put_manifest_patch(store, base, store.get(base), oid, new)


def _workers(store: Store, batch: StagedWrites) -> int:
    """Threads for inline uploads: a local store is bound by the CPUs, a remote one by latency."""
    return min(store.concurrency, os.cpu_count() or 2) if batch.batched else store.concurrency


class _InlineUploads:
    """Upload candidates from the very bytes the scan hashed: no second read, no second hash.

    The scanner `hold`s each small file it read; when the merge-join against the base names
    that file's object a candidate (`want`), it goes to the thread pool (existence check,
    compression, staged write) while the scan goes on. Bytes in flight are bounded.
    """

    def __init__(self, store: Store, batch: StagedWrites, pool: ThreadPoolExecutor) -> None:
        self.store = store
        self.batch = batch
        self.pool = pool
        self.held: tuple[ObjectId, bytes] | None = None
        self.taken: set[ObjectId] = set()
        self.objects = 0
        self.nbytes = 0
        self._inflight: deque[tuple[Future[bool], int]] = deque()
        self._bytes = 0

    def hold(self, item: tuple[ObjectId, bytes] | None) -> None:
        self.held = item

    def want(self, oid: ObjectId) -> None:
        held = self.held
        if held is None or held[0] != oid or oid in self.taken:
            return
        data = held[1]
        self.taken.add(oid)
        self._reap(INLINE_BYTES_IN_FLIGHT)
        self._inflight.append((self.pool.submit(self.store.put_bytes_staged, self.batch, data, oid), len(data)))
        self._bytes += len(data)

    def _reap(self, limit: int) -> None:
        q = self._inflight
        while q and (self._bytes > limit or q[0][0].done()):
            fut, size = q.popleft()
            self._bytes -= size
            if fut.result():  # a store error stops the build
                self.objects += 1
                self.nbytes += size

    def finish(self) -> None:
        self._reap(-1)


def own_paths(root: str, store: Store, cache_dir: Path) -> tuple[str, ...]:
    """regen's own local store and stat cache, relative to `root` when they are inside it: never snapshotted."""
    mine = [os.path.realpath(cache_dir)]
    if store.url.startswith("file://"):
        mine.append(os.path.realpath(store.url[len("file://"):]))
    real_root = os.path.realpath(root)
    return tuple(os.path.relpath(p, real_root) for p in mine
                 if p != real_root and p.startswith(real_root.rstrip("/") + "/"))


def _written(writer: ManifestWriter, entries: Iterator[Entry], root: str) -> Iterator[Entry]:
    """Pass entries on once the writer accepted them (it validates paths, order and parents)."""
    for entry in entries:
        try:
            writer.add(entry)
        except ManifestInvalid as exc:
            raise SourceInvalid(f"cannot describe {shown(os.path.join(root, entry.path))}: {exc.message}",
                                path=entry.path) from None
        yield entry


def _changes(old: Iterator[Entry], new: Iterator[Entry], suspects: set[ObjectId] | None,
             want: Callable[[ObjectId], None] | None = None,
             ) -> tuple[dict[str, int], dict[ObjectId, tuple[str, int]]]:
    """Counts of changes against the base, and the upload candidates (oid -> path, size): files new or
    changed against the base, plus unchanged files whose object is a suspect (suspects None: all).

    `want` hears of each candidate as soon as it is known: before the next entry is scanned.
    """
    counts = {"added": 0, "removed": 0, "modified": 0, "meta": 0}
    candidates: dict[ObjectId, tuple[str, int]] = {}

    def candidate(e: Entry) -> None:
        assert e.oid is not None
        if e.oid not in candidates:
            candidates[e.oid] = (e.path, e.size)
            if want is not None:
                want(e.oid)

    def watched(entries: Iterator[Entry]) -> Iterator[Entry]:
        for e in entries:
            if e.kind == "file" and e.oid is not None and (suspects is None or e.oid in suspects):
                candidate(e)
            yield e

    for change in diff(old, watched(new) if suspects is None or suspects else new):
        counts[change.kind] += 1
        e = change.new
        if e is not None and e.kind == "file" and change.kind != "meta" and e.oid is not None:
            candidate(e)
    return counts, candidates


def set_aside_objects(store: Store) -> set[ObjectId]:
    """Objects `regen fsck --repair` moved to corrupt/ (and removed from objects/)."""
    return {oid for oid in (p.rsplit("/", 1)[-1] for p in store.backend.list("corrupt")) if is_object_id(oid)}


def _upload(store: Store, root: str, candidates: dict[ObjectId, tuple[str, int]],
            progress: Progress) -> tuple[int, int]:
    """Upload the candidates the store lacks, concurrently, in batches; (objects, bytes) uploaded."""
    if not candidates:
        return 0, 0
    progress.start("uploading", total_items=len(candidates),
                   total_bytes=sum(size for _, size in candidates.values()))
    lacking = store.missing(candidates)  # one existence check per candidate
    progress.advance(len(candidates) - len(lacking), sum(s for o, (_, s) in candidates.items() if o not in lacking))
    items = [(oid, os.path.join(root, rel)) for oid, (rel, _size) in candidates.items() if oid in lacking]
    objects = nbytes = 0

    try:
        for i in range(0, len(items), UPLOAD_BATCH):
            batch = items[i : i + UPLOAD_BATCH]
            result = store.put_many(batch, progress=progress.advance, check=False)
            if result.errors:
                _raise_upload_errors(root, result.errors, result.failed)
            objects += len(result.done)
            nbytes += result.bytes
    except OSError as exc:  # the file went away or became unreadable between scan and upload
        where = shown(str(exc.filename or root))
        raise FileChanged(f"{where} became unreadable while it was uploaded: {exc.strerror or exc}") from None
    progress.finish()
    return objects, nbytes


def _raise_upload_errors(root: str, errors: dict[ObjectId, StoreError], failed: int) -> None:
    first = next(iter(errors.values()))
    more = f" (and {failed - 1} more failed uploads)" if failed > 1 else ""
    if isinstance(first, IntegrityError):  # put_file read other bytes than the scan did
        raise FileChanged(f"{shown(first.message)}{more}") from first
    raise type(first)(f"{first.message}{more}", hint=first.hint or None) from first
