"""The local object cache in state_dir: the objects of the installed generation (local I/O).

An object is kept at objects/<2 hex>/<62 hex>.z as one zstd frame of its content, compressed as it
is fetched (Store.fetch_many through `ObjectCache.compressing`), so the cache costs a fraction of the tree,
not a second copy (issue 14: 321 MB tree, 643 MB used). Level 3 keeps up with a fetch (~170 MB/s
on a binary, 1.2 GB/s on data that does not compress, which zstd stores as raw blocks: no
separate check is needed). A cache written before compression holds objects/<2 hex>/<62 hex>, the
content itself: still read as it is (`open`), so an upgrade invalidates nothing.

Objects are verified when fetched (the store streams through a verifying writer and renames only a
complete copy into place) and again whenever one is installed: apply hashes the bytes it writes
(after decompression), and a mismatch or a damaged frame deletes the entry (`discard`) so it is
fetched again. Repairs from the cache therefore work offline, and a corrupt cache entry never
reaches a managed path.

`[cache] max_bytes` caps the cache's allocated bytes (`fit`, after a run that wrote to it):
objects least recently used go first (the mtime, set again whenever one is installed: it works
on noatime mounts and is not moved by a backup reading state_dir), the biggest first among those
of the same hour. An object dropped is fetched again when a repair needs it (while the store is
reachable), and an update only refills the cache up to the budget (`room`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from regen.store import EMPTY_ID, is_object_id, syncfs

CACHE_DIR = "objects"
ZSUFFIX = ".z"          # a zstd frame of the content
LEVEL = 3
_CHUNK = 1 << 20
LEGACY_PER_RUN = 256 << 20   # uncompressed objects of an older cache rewritten per run
_HOUR_NS = 3600 * 10**9


@dataclass(frozen=True, slots=True)
class Cached:
    """One file of the cache: its object, path, allocated bytes and last use (mtime, ns)."""

    oid: str
    path: str
    allocated: int
    used_ns: int


def eviction_order(entries: Iterable[Cached]) -> list[Cached]:
    """Least recently used first (to the hour), the biggest first among equals: the budget then
    keeps the most objects, and the ones repairs used lately (pure)."""
    return sorted(entries, key=lambda c: (c.used_ns // _HOUR_NS, -c.allocated, c.oid))


def to_fetch(missing: Iterable[str], needed: set[str], sizes: dict[str, int], room: int | None) -> list[str]:
    """Of the objects the cache lacks, those an update fetches: every one its plan writes (`needed`),
    and the others only while they fit in `room` (None: all). Objects dropped to keep the budget are
    thus not fetched again by every update; a cache that was lost is refilled up to its budget (pure)."""
    out: list[str] = []
    for oid in missing:
        if oid in needed or room is None:
            out.append(oid)
        elif sizes.get(oid, 0) <= room:
            out.append(oid)
            room -= sizes.get(oid, 0)
    return out


class ObjectCache:
    def __init__(self, state_dir: str, max_bytes: int | None = None) -> None:
        self.dir = os.path.join(state_dir, CACHE_DIR)
        self.max_bytes = max_bytes
        self.wrote = False    # an object was fetched into the cache by this instance (fit has work)
        self._local = threading.local()
        self.fresh: set[str] = set()  # fetched uncompressed by this instance for an install (`raw_dest`)

    def compressing(self, fp: IO[bytes]) -> contextlib.AbstractContextManager[Any]:
        """The writer a fetch puts an object's content into: one zstd frame on `fp` (store.localfile.Wrap).
        One compressor per fetching thread (making one costs ~35 us, a small object's compression ~3)."""
        comp = getattr(self._local, "comp", None)
        if comp is None:
            import zstandard

            comp = self._local.comp = zstandard.ZstdCompressor(level=LEVEL)
        return comp.stream_writer(fp, closefd=False)

    def path(self, oid: str) -> str:
        """Where an uncompressed copy of `oid` is kept (a cache written before compression)."""
        return os.path.join(self.dir, oid[:2], oid[2:])

    def _found(self, oid: str) -> str | None:
        p = self.path(oid)
        for candidate in (p, p + ZSUFFIX):  # (both only while compress_uncompressed runs: the old is durable)
            if os.path.isfile(candidate):
                return candidate
        return None

    def has(self, oid: str) -> bool:
        return oid == EMPTY_ID or self._found(oid) is not None

    def local_path(self, oid: str) -> str | None:
        """An uncompressed copy of `oid` readable at any offset, or None: the store reuses the chunks
        of big files from it (Store.local_object); compressed objects are seeded from the tree instead."""
        p = self.path(oid)
        return p if os.path.isfile(p) else None

    def dest(self, oid: str) -> str:
        """Where a fetch writes `oid` through `compressing` (its fan-out directory created)."""
        p = self.path(oid) + ZSUFFIX
        os.makedirs(os.path.dirname(p), mode=0o700, exist_ok=True)
        self.wrote = True
        return p

    def raw_dest(self, oid: str) -> str:
        """Where an install's fetch writes `oid` uncompressed (its fan-out directory created): apply
        then moves it into the tree rather than copying it (tree/apply.py `move`), and a later run
        puts a compressed copy back (run/refill.py)."""
        p = self.path(oid)
        os.makedirs(os.path.dirname(p), mode=0o700, exist_ok=True)
        return p

    @contextlib.contextmanager
    def open(self, oid: str) -> Iterator[IO[bytes]]:
        """The content of `oid`, decompressed as it is read; FileNotFoundError when not cached.
        Unverified: the caller hashes what it reads. Marks the object used (its mtime)."""
        p = self._found(oid)
        if p is None:
            raise FileNotFoundError(self.path(oid))
        with open(p, "rb") as fp:
            with contextlib.suppress(OSError):
                os.utime(fp.fileno())
            if not p.endswith(ZSUFFIX):
                yield fp
                return
            import zstandard

            with zstandard.ZstdDecompressor().stream_reader(fp, closefd=False) as reader:
                yield reader  # (a readable stream: read(n) is all callers use)

    def copy_to(self, oid: str, write: Callable[[bytes], object], limit: int | None = None) -> None:
        """Stream the content of `oid` into `write`, at most `limit` + 1 bytes (a frame inflating past
        its entry's size is cut short). A damaged frame ends the copy early: the caller's hash check
        then sees a corrupt entry. FileNotFoundError when not cached."""
        import zstandard

        left = None if limit is None else limit + 1
        with self.open(oid) as src:
            try:
                while left is None or left > 0:
                    chunk = src.read(_CHUNK if left is None else min(_CHUNK, left))
                    if not chunk:
                        return
                    write(chunk)
                    if left is not None:
                        left -= len(chunk)
            except zstandard.ZstdError:
                return

    def missing(self, oids: Iterable[str]) -> list[str]:
        """The ids of `oids` not in the cache: one listing per fan-out directory concerned
        instead of a stat per object (an update checks every object of the generation)."""
        wanted = {o for o in oids if o != EMPTY_ID}
        if len(wanted) <= 64:
            return sorted(o for o in wanted if not self.has(o))
        fans: dict[str, set[str]] = {}
        for o in wanted:
            fans.setdefault(o[:2], set()).add(o[2:])
        out: list[str] = []
        for fan, rests in fans.items():
            present: set[str] = set()
            try:
                with os.scandir(os.path.join(self.dir, fan)) as it:
                    for e in it:
                        name = e.name.removesuffix(ZSUFFIX)
                        if name in rests and e.is_file():
                            present.add(name)
            except (FileNotFoundError, NotADirectoryError):
                pass
            out.extend(fan + r for r in rests - present)
        out.sort()
        return out

    def discard(self, oid: str) -> None:
        p = self.path(oid)
        for name in (p + ZSUFFIX, p):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)

    def _files(self) -> Iterator[tuple[str, str]]:
        """(oid, path) of every file in the cache; oid '' for anything else (fetch temp files)."""
        try:
            fans = sorted(os.listdir(self.dir))
        except FileNotFoundError:
            return
        for fan in fans:
            sub = os.path.join(self.dir, fan)
            if len(fan) != 2 or not os.path.isdir(sub):
                continue
            for name in os.listdir(sub):
                oid = fan + name.removesuffix(ZSUFFIX)
                yield (oid if is_object_id(oid) else ""), os.path.join(sub, name)

    def entries(self) -> list[Cached]:
        """Every cached object with its allocated bytes and last use."""
        out: list[Cached] = []
        for oid, p in self._files():
            if not oid:
                continue
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                continue
            out.append(Cached(oid, p, st.st_blocks * 512, st.st_mtime_ns))
        return out

    def oids(self) -> list[str]:
        return sorted({oid for oid, _ in self._files() if oid})

    def prune(self, keep: set[str]) -> tuple[int, int]:
        """Delete objects not in `keep` (after an update) and stray temp files; (count, bytes) freed."""
        count = size = 0
        for oid, p in list(self._files()):
            if oid in keep:
                continue
            try:
                size += os.lstat(p).st_size
                os.unlink(p)
                count += 1
            except FileNotFoundError:
                pass
        return count, size

    def total_bytes(self) -> int:
        """The cache's allocated bytes (what it costs on disk)."""
        return sum(c.allocated for c in self.entries())

    def room(self) -> int | None:
        """Bytes the cache may still grow by under its budget (None: no budget)."""
        if self.max_bytes is None:
            return None
        return max(0, self.max_bytes - self.total_bytes())

    def compress_uncompressed(self, limit: int = LEGACY_PER_RUN) -> int:
        """Rewrite objects an older regend cached uncompressed as zstd frames, about `limit` bytes of
        content per call (the upgrade's cost spread over runs); each is verified against its id as it
        is read (a corrupt one is dropped). The old files are removed only once the frames are on disk
        (one syncfs): a crash leaves the old file, still read first. Returns the bytes rewritten."""
        import blake3

        done = 0
        olds: list[str] = []
        for oid, p in list(self._files()):
            if done >= limit:
                break
            if not oid or p.endswith(ZSUFFIX):
                continue
            fd, tmp = tempfile.mkstemp(prefix=".fetch-", dir=os.path.dirname(p))
            try:
                digest = blake3.blake3()
                with open(p, "rb") as src, os.fdopen(fd, "wb") as out, self.compressing(out) as sink:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        sink.write(chunk)
                        done += len(chunk)
                if digest.hexdigest() == oid:
                    os.replace(tmp, p + ZSUFFIX)
                olds.append(p)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        if olds:
            fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY)
            try:
                if not syncfs(fd):
                    os.sync()
            finally:
                os.close(fd)
            for p in olds:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(p)
        return done

    def fit(self) -> tuple[int, int]:
        """Drop objects in `eviction_order` until the cache is within `max_bytes`; (count, bytes) freed."""
        self.wrote = False
        if self.max_bytes is None:
            return 0, 0
        found = self.entries()
        total = sum(c.allocated for c in found)
        count = freed = 0
        for c in eviction_order(found):
            if total <= self.max_bytes:
                break
            with contextlib.suppress(FileNotFoundError):
                os.unlink(c.path)
            total -= c.allocated
            freed += c.allocated
            count += 1
        return count, freed


__all__ = ["CACHE_DIR", "Cached", "ObjectCache", "eviction_order", "to_fetch"]
