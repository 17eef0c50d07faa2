"""Packed objects on a store (I/O): the loaded indexes (`PackSet`), writing packs (`PackWriter`) and
reading blobs out of them by coalesced ranged reads (`fetch_spans`).

Why: one object per file costs one request per file -- 100,000 GETs for a first install of a
100,000-file tree. Packs put thousands of small objects in one file a client reads with a few
ranged requests. Formats in packindex.py and FORMAT.md §3.1.

Publish order for a writer holding the lock: packs, then their index, then the index list that
names it -- so a listed index only names stored packs, and a pack nobody lists is garbage gc
removes after its grace period.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import IO, TYPE_CHECKING

import blake3

from . import layout
from .config import DEFAULT_PACK_SIZE
from .errors import NotFound, ObjectCorrupt, ObjectMissing, RecordTooLarge, StoreError
from .localfile import Wrap, save_atomic, writing
from .objects import FileDigest, ObjectId, decode, encode, object_id
from .packindex import (
    MAX_INDEX_BYTES,
    MAX_LIST_BYTES,
    Location,
    PackIndex,
    Span,
    coalesce,
    decode_list,
    encode_index,
    encode_list,
)
from .pool import bounded_map, window_for

if TYPE_CHECKING:
    from .objectstore import ObjectStore

log = logging.getLogger("regen.store")

MERGE_AT = 16  # a writer folds the indexes into one when the list would hold more than this


class PackSet:
    """The indexes the index list names, decoded: where every packed blob lies."""

    def __init__(self, indexes: list[PackIndex]) -> None:
        self.indexes = indexes

    @property
    def names(self) -> list[str]:
        return [i.name for i in self.indexes]

    def find(self, oid: ObjectId) -> Location | None:
        for idx in self.indexes:
            loc = idx.find(oid)
            if loc is not None:
                return loc
        return None

    def __iter__(self) -> Iterator[Location]:
        for idx in self.indexes:
            yield from idx


def read_list(store: ObjectStore) -> list[str]:
    """The index names `index/current.json` lists ([] when there is none yet)."""
    try:
        data = store.backend.read(layout.INDEX_LIST, max_bytes=MAX_LIST_BYTES)
    except NotFound:
        return []
    if len(data) > MAX_LIST_BYTES:
        raise ObjectCorrupt(f"index list {store.url}/{layout.INDEX_LIST} is over {MAX_LIST_BYTES} bytes",
                            path=layout.INDEX_LIST)
    return decode_list(data, f"{store.url}/{layout.INDEX_LIST}")


def load_packs(store: ObjectStore, cache_dir: str | None) -> PackSet:
    """Read the index list and every index it names (from `cache_dir` when kept there: immutable files;
    indexes the list no longer names -- a gc merged them -- are removed from it)."""
    names = read_list(store)
    found = PackSet([read_index(store, name, cache_dir) for name in names])
    if cache_dir is not None:
        for old in set(os.listdir(cache_dir) if os.path.isdir(cache_dir) else ()) - set(names):
            if len(old) == 64:
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(cache_dir, old))
    return found


def read_index(store: ObjectStore, name: str, cache_dir: str | None = None) -> PackIndex:
    """One index, verified against its name; a client keeps it in `cache_dir` (it never changes)."""
    local = os.path.join(cache_dir, name) if cache_dir else None
    if local is not None:
        try:
            with open(local, "rb") as fp:
                data = fp.read(MAX_INDEX_BYTES + 1)
            if object_id(data) == name:
                return PackIndex(name, data)
        except FileNotFoundError:
            pass
    path = layout.index_path(name)
    try:
        stored = store.backend.read(path)
    except NotFound:
        raise ObjectMissing(f"pack index {name} is missing from {store.url} ({path})", oid=name, path=path) from None
    data = decode(stored, name, where=f"{store.url}/{path}", limit=MAX_INDEX_BYTES)
    index = PackIndex(name, data)
    if local is not None and cache_dir is not None:
        os.makedirs(cache_dir, mode=0o700, exist_ok=True)
        save_atomic(local, data, durable=False)  # (a cache: fetched again if a crash loses it)
    return index


def read_blob(store: ObjectStore, loc: Location) -> bytes:
    """The stored bytes of one packed blob (one ranged read); ObjectMissing if its pack is gone."""
    path = layout.pack_path(loc.pack)
    try:
        data = store.backend.read_range(path, loc.offset, loc.length)
    except NotFound:
        raise ObjectMissing(f"object {loc.oid} is missing: its pack {path} is not in {store.url}",
                            oid=loc.oid, path=path) from None
    if len(data) != loc.length:
        raise ObjectCorrupt(f"object {loc.oid}: pack {store.url}/{path} ends before the blob does",
                            oid=loc.oid, path=path)
    return data


# -- writing ----------------------------------------------------------------------------------------
class PackWriter:
    """Collects encoded blobs into pack files of about `target` bytes, uploads each when full, and
    `finish` publishes their index and the new index list. Thread-safe: many threads add, the one
    that fills a pack uploads it while the others fill the next."""

    def __init__(self, store: ObjectStore, target: int = DEFAULT_PACK_SIZE) -> None:
        self.store = store
        self.target = target
        self._lock = threading.Lock()
        self._added: set[ObjectId] = set()
        self._fp: IO[bytes] | None = None
        self._rows: list[tuple[ObjectId, int, int]] = []
        self._size = 0
        self._hash = blake3.blake3()
        self.sealed: list[tuple[str, list[tuple[ObjectId, int, int]]]] = []
        self.bytes_written = 0

    def add(self, oid: ObjectId, tag: bytes, body: bytes) -> bool:
        """Add one blob (its stored form: tag + body); False if this writer already holds it."""
        full = None
        with self._lock:
            if oid in self._added:
                return False
            self._added.add(oid)
            if self._fp is None:
                self._fp = tempfile.TemporaryFile(prefix="regen-pack-")  # noqa: SIM115 - open until the pack is sealed
            self._fp.write(tag)
            self._fp.write(body)
            self._hash.update(tag)
            self._hash.update(body)
            self._rows.append((oid, self._size, 1 + len(body)))
            self._size += 1 + len(body)
            if self._size >= self.target:
                full = self._seal()
        if full is not None:
            self._upload(*full)
        return True

    def __contains__(self, oid: ObjectId) -> bool:
        with self._lock:
            return oid in self._added

    def _seal(self) -> tuple[IO[bytes], str, list[tuple[ObjectId, int, int]]] | None:
        if self._fp is None:
            return None
        out = (self._fp, self._hash.hexdigest(), self._rows)
        self._fp, self._rows, self._size, self._hash = None, [], 0, blake3.blake3()
        return out

    def _upload(self, fp: IO[bytes], pid: str, rows: list[tuple[ObjectId, int, int]]) -> None:
        try:
            self.store.backend.write_from(layout.pack_path(pid), fp)
            self.bytes_written += fp.tell()
        finally:
            fp.close()
        with self._lock:
            self.sealed.append((pid, rows))

    def flush(self) -> tuple[list[str], list[tuple[ObjectId, int, int, int]]]:
        """Upload the last pack; (pack ids, (id, pack number, offset, length) rows) of every pack written."""
        with self._lock:
            last = self._seal()
        if last is not None:
            self._upload(*last)
        blobs = [(oid, n, off, ln) for n, (_, rows) in enumerate(self.sealed) for oid, off, ln in rows]
        return [pid for pid, _ in self.sealed], blobs

    def finish(self) -> str | None:
        """Upload the last pack, write the index of this writer's packs and list it; the new index's name."""
        packs, blobs = self.flush()
        if not packs:
            return None
        listed = read_list(self.store)
        if len(listed) + 1 > MERGE_AT:  # fold every index into one: a client looks up in few indexes
            old = [loc for name in listed for loc in read_index(self.store, name) if loc.oid not in self._added]
            packs, blobs = merge_rows(packs, blobs, old)
            listed = []
        name = write_index(self.store, packs, blobs)
        write_list(self.store, [*listed, name])
        return name


def merge_rows(packs: list[str], blobs: list[tuple[ObjectId, int, int, int]],
               more: Iterable[Location]) -> tuple[list[str], list[tuple[ObjectId, int, int, int]]]:
    """`packs` and `blobs` extended by the blobs at `more` (their packs numbered after `packs`)."""
    packs, blobs = list(packs), list(blobs)
    order = {p: i for i, p in enumerate(packs)}
    for loc in more:
        if loc.pack not in order:
            order[loc.pack] = len(packs)
            packs.append(loc.pack)
        blobs.append((loc.oid, order[loc.pack], loc.offset, loc.length))
    return packs, blobs


def write_index(store: ObjectStore, packs: list[str], blobs: list[tuple[ObjectId, int, int, int]]) -> str:
    """Store an index (write-once, content-addressed); its name."""
    data = encode_index(packs, blobs)
    name = object_id(data)
    store.backend.write(layout.index_path(name), encode(data, store.config.compression))
    return name


def write_list(store: ObjectStore, names: Iterable[str]) -> None:
    """Replace the index list (atomic); the caller holds the writer lock."""
    store.backend.write(layout.INDEX_LIST, encode_list(names))
    store.forget_packs()


# -- reading many -----------------------------------------------------------------------------------
Deliver = Callable[[ObjectId, "FileDigest | StoreError"], None]


def fetch_spans(store: ObjectStore, locations: list[Location], dest: Callable[[ObjectId], str], *, fsync: bool,
                sizes: Mapping[ObjectId, int] | None, deliver: Deliver, wrap: Wrap | None = None) -> None:
    """Read `locations` by coalesced ranged reads, concurrently; each blob is verified into a temp file
    next to its destination (through `wrap`, see transfer.Wrap) and renamed there; `deliver(oid, digest
    or error)` hears of each."""

    def one(span: Span) -> list[tuple[ObjectId, FileDigest | StoreError]]:
        path = layout.pack_path(span.pack)
        try:
            data = store.backend.read_range(path, span.start, span.end - span.start)
        except NotFound:
            return [(loc.oid, ObjectMissing(f"object {loc.oid} is missing: its pack {path} is not in {store.url}",
                                            oid=loc.oid, path=path)) for loc in span.blobs]
        except StoreError as exc:
            return [(loc.oid, exc) for loc in span.blobs]
        out: list[tuple[ObjectId, FileDigest | StoreError]] = []
        for loc in span.blobs:
            blob = data[loc.offset - span.start: loc.offset - span.start + loc.length]
            out.append((loc.oid, _land(store, loc, blob, dest(loc.oid), fsync,
                                       None if sizes is None else sizes.get(loc.oid), wrap)))
        return out

    with ThreadPoolExecutor(store.concurrency) as pool:
        for results in bounded_map(pool, one, coalesce(locations), window_for(store.concurrency)):
            for oid, res in results:
                deliver(oid, res)


def _land(store: ObjectStore, loc: Location, blob: bytes, dest: str, fsync: bool,
          max_bytes: int | None, wrap: Wrap | None) -> FileDigest | StoreError:
    """Verify one blob into `dest` atomically; a bad copy is read once more on its own, then refused."""
    where = f"{store.url}/{layout.pack_path(loc.pack)}@{loc.offset}"
    fd, tmp = tempfile.mkstemp(prefix=".fetch-", dir=os.path.dirname(dest) or ".")
    try:
        with os.fdopen(fd, "wb") as out:
            if len(blob) != loc.length:
                raise ObjectCorrupt(f"object {loc.oid}: pack {where} ends before the blob does", oid=loc.oid)
            with writing(out, wrap) as sink:
                digest = store.decode_into(loc.oid, io.BytesIO(blob), sink, where=where, max_bytes=max_bytes)
            if fsync:
                out.flush()
                os.fsync(out.fileno())
        os.replace(tmp, dest)
        return digest
    except (ObjectCorrupt, RecordTooLarge):
        os.unlink(tmp)
        try:
            return store.fetch_to_file(loc.oid, dest, fsync=fsync, attempts=1, max_bytes=max_bytes, wrap=wrap)
        except StoreError as exc:
            return exc
    except StoreError as exc:
        os.unlink(tmp)
        return exc
    except OSError as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        return StoreError(f"object {loc.oid} could not be written locally: {exc.strerror or exc}",
                          hint="free disk space where it is written; the next run fetches it again")


__all__ = ["DEFAULT_PACK_SIZE", "PackSet", "PackWriter", "fetch_spans", "load_packs", "merge_rows", "read_blob",
           "read_index", "read_list", "write_index", "write_list"]
