"""Moving many objects between local files and a store: which ones it lacks, fetching them into
local files, uploading them as one staged batch.

Transfers run on the store's thread pool with bounded memory (pool.py) and never stop at the
first failure: each object's error is collected in a `TransferResult` and the rest go on, so
one damaged object or full disk costs that object, not the run. Every download is verified
before it is renamed into place; every upload is staged, so the store only ever holds complete
objects. The functions take the store whose objects they move (an `ObjectStore`: they never import
the facade that calls them) and go through its methods
(`has`, `get_to`, `put_file`, ...), so they behave exactly as those do.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Protocol, cast

from . import chunks, layout, packs
from .errors import ObjectCorrupt, ObjectMissing, RecordTooLarge, StoreError
from .localfile import Wrap, writing
from .objects import FileDigest, ObjectId, check_read, encode_stream, hash_stream, object_id, xxh
from .pool import bounded_map, window_for

if TYPE_CHECKING:
    from .objectstore import ObjectStore
    from .staging import StagedWrites

log = logging.getLogger("regen.store")  # the facade's logger: transfers log as they did from store.py

Progress = Callable[[int, int], None]  # (items done, bytes done) increments
EXAMPLES = 20  # failures kept with their message (the rest are counted)
INLINE_BYTES = 4 << 20  # put_many reads files up to this size whole: one read, hashed and compressed from memory


@dataclass(slots=True)
class TransferResult:
    """Outcome of a batch transfer: what moved and, per object, what failed (the rest went on)."""

    done: list[ObjectId] = field(default_factory=list)
    skipped: list[ObjectId] = field(default_factory=list)
    bytes: int = 0
    errors: dict[ObjectId, StoreError] = field(default_factory=dict)  # the first EXAMPLES failures only
    failed: int = 0                                                   # every failure counted
    stopped: bool = False                                             # `stop` was set: the rest not tried
    # per failure class (errors.FAILURES, or "other"): (count, the first one's line) -- one summary
    # line per class, however many objects failed (issue 17)
    classes: dict[str, tuple[int, str]] = field(default_factory=dict)

    def fail(self, oid: ObjectId, exc: StoreError) -> None:
        """Count a failure; keep it (without its traceback) only as one of the first examples:
        a million missing objects must not hold a million exceptions with their frames (issue 13:
        ~10 KB each, 9.5 GiB)."""
        self.failed += 1
        if len(self.errors) < EXAMPLES:
            self.errors[oid] = exc.with_traceback(None)
        name = exc.failure or "other"
        count, first = self.classes.get(name) or (0, exc.one_line())
        self.classes[name] = (count + 1, first)


def missing(store: ObjectStore, oids: Iterable[ObjectId]) -> set[ObjectId]:
    """The ids of `oids` the store lacks (only a definite "no such file" counts as lacking)."""
    ids = sorted(set(oids))
    if store.config.packed:  # packed ones are known from the indexes: no request
        ids = [oid for oid in ids if store.locate(oid) is None]
        if store.packer is not None:  # a snapshot packs what the indexes lack: 100,000 new files, no HEADs
            return {oid for oid in ids if oid not in store.packer}
    if store.backend.driver.local:  # a local stat costs less than handing it to a thread
        gone = store.backend.absent([layout.object_path(oid) for oid in ids])
        return {oid for oid, no in zip(ids, gone) if no}
    with ThreadPoolExecutor(store.concurrency) as pool:
        present = list(bounded_map(pool, store.has, ids, window_for(store.concurrency)))
    return {oid for oid, ok in zip(ids, present) if not ok}


class Stopping(Protocol):
    """What tells a batch to stop starting transfers (a threading.Event set by a signal handler)."""

    def is_set(self) -> bool: ...


# -- fetching -----------------------------------------------------------------------------------
def fetch_to_file(store: ObjectStore, oid: ObjectId, dest: str, *, fsync: bool = True, attempts: int = 2,
                  max_bytes: int | None = None, wrap: Wrap | None = None) -> FileDigest:
    """Download `oid` to local `dest` atomically; a corrupt copy is retried, then refused.

    `max_bytes` (the size a manifest gives the object) stops a stored object that inflates
    beyond it (a decompression bomb) before it can fill the disk; like any corrupt copy it is
    retried once, then refused as ObjectCorrupt.
    """
    parent = os.path.dirname(dest) or "."
    for attempt in range(attempts):
        fd, tmp = tempfile.mkstemp(prefix=".fetch-", dir=parent)
        try:
            with os.fdopen(fd, "wb") as out:
                with writing(out, wrap) as sink:
                    digest = store.get_to(oid, sink, max_bytes=max_bytes)
                if fsync:
                    out.flush()
                    os.fsync(out.fileno())
            os.replace(tmp, dest)
            return digest
        except (ObjectCorrupt, RecordTooLarge) as exc:
            os.unlink(tmp)
            if attempt + 1 < attempts:
                log.warning("object %s arrived corrupt; retrying once", oid)
                continue
            if isinstance(exc, RecordTooLarge):
                # larger than its manifest entry says: damaged or hostile, not a limit to raise
                raise ObjectCorrupt(
                    f"object {oid} at {store.url}/{layout.object_path(oid)} is larger than the {max_bytes} "
                    "bytes its manifest gives", oid=oid, path=layout.object_path(oid)) from exc
            raise
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    raise AssertionError("unreachable")


def fetch_many(store: ObjectStore, oids: Iterable[ObjectId], dest: Callable[[ObjectId], str], *, fsync: bool = True,
               progress: Progress | None = None, sizes: Mapping[ObjectId, int] | None = None,
               stop: Stopping | None = None, wrap: Wrap | None = None) -> TransferResult:
    """Fetch objects concurrently into local files; failures are collected, not raised.

    `sizes`: the expected size of each object (from its manifest entry); a stored object
    larger than that is refused as soon as it passes it. A local write failure (a full
    disk) is collected as that object's error too, never raised out of the pool.
    """
    result = TransferResult()

    def deliver(oid: ObjectId, res: FileDigest | StoreError) -> None:
        if isinstance(res, StoreError):
            result.fail(oid, res)
        else:
            result.done.append(oid)
            result.bytes += res.size
            if progress:
                progress(1, res.size)

    wanted: Iterable[ObjectId] = dict.fromkeys(oids)
    if store.config.packed:  # packed blobs by coalesced ranged reads; the rest as loose objects
        located = [(oid, store.locate(oid)) for oid in wanted]
        packs.fetch_spans(store, [loc for _, loc in located if loc is not None], dest, fsync=fsync, sizes=sizes,
                          deliver=deliver, wrap=wrap)
        wanted = [oid for oid, loc in located if loc is None]
        gone = [oid for oid, err in result.errors.items() if isinstance(err, ObjectMissing)]
        if gone:  # a gc repacked since the index list was read: read it again, fetch those once more
            store.forget_packs()
            again = [(oid, store.locate(oid)) for oid in gone]
            for oid, loc in again:
                if loc is not None:
                    del result.errors[oid]
            packs.fetch_spans(store, [loc for _, loc in again if loc is not None], dest, fsync=fsync, sizes=sizes,
                              deliver=deliver, wrap=wrap)

    def one(oid: ObjectId) -> tuple[ObjectId, FileDigest | StoreError]:
        try:
            return oid, store.fetch_to_file(oid, dest(oid), fsync=fsync,
                                            max_bytes=None if sizes is None else sizes.get(oid), wrap=wrap)
        except StoreError as exc:
            return oid, exc
        except OSError as exc:
            return oid, StoreError(f"object {oid} could not be written locally: {exc.strerror or exc}",
                                   hint="free disk space where it is written; the next run fetches it again")

    with ThreadPoolExecutor(store.concurrency) as pool:
        for oid, res in bounded_map(pool, one, wanted, window_for(store.concurrency)):
            deliver(oid, res)
            if stop is not None and stop.is_set():  # SIGINT/SIGTERM: nothing more is started (issue 13)
                result.stopped = True
                break
    return result


# -- uploading ----------------------------------------------------------------------------------
def put_many(store: ObjectStore, items: Iterable[tuple[ObjectId, str]], *, progress: Progress | None = None,
             check: bool = True) -> TransferResult:
    """Upload (oid, local path) pairs the store lacks, concurrently; errors are collected.

    The objects are written as one staged batch (Store.staged): on file:// one sync of
    the store's filesystem for the batch instead of one fsync per object; every object
    still appears complete or not at all. A file up to INLINE_BYTES is read once into
    memory, and hashed and compressed from that one buffer. `check=False`: the caller
    knows the store lacks these objects (it asked `missing` just before).
    """
    result = TransferResult()

    _ = store.config  # read once before threads start
    with store.staged() as batch:
        def one(item: tuple[ObjectId, str]) -> tuple[ObjectId, FileDigest | None | StoreError]:
            oid, path = item
            try:
                return oid, stage_file(store, batch, path, oid, check=check)
            except StoreError as exc:
                return oid, exc

        with ThreadPoolExecutor(store.concurrency) as pool:
            for oid, res in bounded_map(pool, one, dict(items).items(), window_for(store.concurrency)):
                if isinstance(res, StoreError):
                    result.fail(oid, res)
                elif res is None:
                    result.skipped.append(oid)
                else:
                    result.done.append(oid)
                    result.bytes += res.size
                    if progress:
                        progress(1, res.size)
    return result


def stage_file(store: ObjectStore, batch: StagedWrites, path: str, oid: ObjectId | None, *,
               check: bool = True) -> FileDigest | None:
    """Stage local file `path` as an object of `batch`; None if the store already holds it.

    A small file is read whole (one read, hashed and compressed from memory); a big one is
    uploaded at once when the batch is not batched, else streamed into its staged temp file.
    """
    if oid is not None and check and store.has(oid):
        return None
    with open(path, "rb") as src:
        if os.fstat(src.fileno()).st_size <= INLINE_BYTES:
            data = src.read(INLINE_BYTES + 1)
            if len(data) <= INLINE_BYTES:
                digest = FileDigest(object_id(data), xxh(data), len(data))
                check_read(path, oid, digest)
                if oid is None and check and store.has(digest.oid):
                    return None
                store.put_bytes_staged(batch, data, digest.oid, check=False)
                return digest
            del data
    if store.packer is not None:  # a big file in a packed store: content-defined chunks
        return chunks.stage_chunked(store, path, oid)
    if not batch.batched:
        return store.put_file(path, oid, check=oid is None and check)
    return _stage_stream(store, batch, path, oid, check=check)


def _stage_stream(store: ObjectStore, batch: StagedWrites, path: str, oid: ObjectId | None, *,
                  check: bool) -> FileDigest | None:
    """A big file streamed into its staged temp file (file:// only: a failed fill leaves nothing)."""
    digest: FileDigest | None = None

    def fill(fp: Any) -> None:
        nonlocal digest
        src.seek(0)  # (again when the write is retried)
        digest = encode_stream(cast("IO[bytes]", _SourceReader(src)), fp, store.config.compression)
        check_read(path, oid, digest)

    with open(path, "rb") as src:
        if oid is None:  # the id decides the path: hash first (a second read, for this rare case)
            found = hash_stream(_SourceReader(src).read)
            if check and store.has(found.oid):
                return None
            oid = found.oid
            src.seek(0)
        try:
            batch.write(layout.object_path(oid), fill)
        except StoreError as exc:
            if isinstance(exc.__cause__, _SourceFailed):
                raise exc.__cause__.error from None
            raise
    return digest


class _SourceFailed(Exception):
    """A local source file's read error, carried through the backend's error translation unchanged."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


class _SourceReader:
    def __init__(self, fp: Any) -> None:
        self._fp = fp

    def read(self, n: int = -1) -> bytes:
        try:
            return self._fp.read(n)  # type: ignore[no-any-return]
        except OSError as exc:
            raise _SourceFailed(exc) from exc


__all__ = ["INLINE_BYTES", "Progress", "TransferResult", "fetch_many", "fetch_to_file", "missing",
           "put_many", "stage_file"]
