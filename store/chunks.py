"""Big files as content-defined chunks (packed stores): a change inside a big file costs the chunks
around it, not the whole file (FORMAT.md §3.2).

A file above CHUNK_ABOVE bytes is cut by FastCDC (the `fastcdc` package's C implementation; the
parameters below) into chunks, each stored as a packed blob under its own BLAKE3 id; the file's
own id (the one the manifest names) holds a *chunk list* blob, tag ``c``. A reader rebuilds the
content from the chunks -- each verified against its id -- and verifies the whole against the
file's id at the end, so nothing unverified is ever exposed. Identical chunks are stored once,
across files and generations; a client reuses the chunks of content it already holds.
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import stat
import struct
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import IO, TYPE_CHECKING

import blake3
import xxhash

from . import layout
from .errors import ObjectCorrupt
from .objects import FileDigest, ObjectId, VerifyingWriter, check_read, decode, encode_parts
from .pool import bounded_map

if TYPE_CHECKING:
    from .objectstore import ObjectStore
    from .packindex import Location

log = logging.getLogger("regen.store")

TAG_CHUNKS = b"c"
CHUNK_ABOVE = 4 << 20  # files up to this size are one blob (transfer.INLINE_BYTES)
# FastCDC: chunks of 64 KiB to 1 MiB, 256 KiB on average. A change of N bytes costs about N plus
# one average chunk on each side: 1 MiB changed in a 256 MiB file fetches ~1.5 MiB (goal: 2 MiB)
MIN_CHUNK, AVG_CHUNK, MAX_CHUNK = 64 << 10, 256 << 10, 1 << 20
LIST_TYPE = "regen-chunk-list"
_ENTRY = struct.Struct(">32sI")
MAX_LIST_BYTES = 16 << 20  # 460,000 chunks: a 112 GiB file at the average size


def cut(view: memoryview) -> Iterator[memoryview]:
    """The content-defined chunks of `view`, in order."""
    # fastcdc's C (Cython) implementation; the package also has a pure-Python fallback
    from fastcdc.fastcdc_cy import fastcdc_cy  # type: ignore[import-not-found,import-untyped,unused-ignore]

    for c in fastcdc_cy(view, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK):
        yield view[c.offset: c.offset + c.length]


def encode_list(size: int, chunks: list[tuple[ObjectId, int]]) -> bytes:
    """Body of a chunk-list blob: a canonical JSON header line, then 36 bytes per chunk (id, length u32)."""
    head = json.dumps({"chunks": len(chunks), "format": 1, "size": size, "type": LIST_TYPE},
                      sort_keys=True, separators=(",", ":")).encode() + b"\n"
    return head + b"".join(_ENTRY.pack(bytes.fromhex(c), n) for c, n in chunks)


def decode_list(body: bytes, oid: ObjectId, where: str) -> list[tuple[ObjectId, int]]:
    """The (chunk id, length) pairs of a chunk-list body; ObjectCorrupt unless well formed and summing up."""
    nl = body.find(b"\n", 0, 256)
    try:
        head = json.loads(body[:nl]) if nl > 0 else None
    except ValueError:
        head = None
    ok = isinstance(head, dict) and head.get("type") == LIST_TYPE and head.get("format") == 1 \
        and isinstance(head.get("chunks"), int) and isinstance(head.get("size"), int)
    if not ok or len(body) != nl + 1 + _ENTRY.size * head["chunks"]:  # type: ignore[index]
        raise ObjectCorrupt(f"object {oid} at {where} has a malformed chunk list", oid=oid, path=where)
    chunks = [(c.hex(), n) for c, n in _ENTRY.iter_unpack(memoryview(body)[nl + 1:])]
    if sum(n for _, n in chunks) != head["size"] or any(n == 0 for _, n in chunks):  # type: ignore[index]
        raise ObjectCorrupt(f"object {oid} at {where}: its chunk list does not add up", oid=oid, path=where)
    return chunks


def stage_chunked(store: ObjectStore, path: str, oid: ObjectId | None) -> FileDigest:
    """Store local file `path` as chunks plus a chunk list under its id (the caller checked it is absent
    and that the store is packing). The whole content is hashed while it is cut: a file that changed
    since it was scanned stops here (check_read)."""
    packer = store.packer
    assert packer is not None
    whole, x = blake3.blake3(), xxhash.xxh3_128()
    chunks: list[tuple[ObjectId, int]] = []
    with open(path, "rb") as fp:
        size = os.fstat(fp.fileno()).st_size
        with mmap.mmap(fp.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            view = memoryview(mm)
            try:
                for part in cut(view):
                    whole.update(part)
                    x.update(part)
                    cid = blake3.blake3(part).hexdigest()
                    chunks.append((cid, len(part)))
                    if not store.has(cid):
                        packer.add(cid, *encode_parts(bytes(part), store.config.compression))
                    part.release()
            finally:
                view.release()
    digest = FileDigest(whole.hexdigest(), x.hexdigest(), size)
    check_read(path, oid, digest)
    packer.add(digest.oid, TAG_CHUNKS, encode_list(size, chunks))
    return digest


# -- reading ---------------------------------------------------------------------------------------
def assemble(store: ObjectStore, oid: ObjectId, body: bytes, out: IO[bytes], *, where: str,
             max_bytes: int | None) -> FileDigest:
    """Write the content a chunk list describes into `out`, verifying each chunk and then the whole."""
    chunks = decode_list(body, oid, where)
    writer = VerifyingWriter(oid, out, where=where, limit=max_bytes)
    local = store.local_chunks()
    runs = _runs(store, chunks, local)
    with ThreadPoolExecutor(store.concurrency) as pool:
        for parts in bounded_map(pool, lambda run: _read_run(store, run, local), runs, 2 * store.concurrency):
            for part in parts:
                writer._feed(part)
    digest = writer.finish()
    store.remember_chunks(oid, chunks)
    return digest


Run = list[tuple[ObjectId, "Location | None"]]


def _runs(store: ObjectStore, chunks: list[tuple[ObjectId, int]],
          local: dict[ObjectId, tuple[str, int, int]]) -> list[Run]:
    """Chunks in order, grouped into runs that one ranged read serves (neighbours in one pack)."""
    runs: list[Run] = []
    start = end = 0
    for cid, _ in chunks:
        loc = None if cid in local else store.locate(cid)
        if cid not in local and loc is None:
            raise ObjectCorrupt(f"chunk {cid} is in no pack index of {store.url}", oid=cid)
        prev = runs[-1][-1][1] if runs else None
        if loc is not None and prev is not None and prev.pack == loc.pack and \
                0 <= loc.offset - end <= 64 << 10 and loc.offset + loc.length - start <= 4 << 20:
            runs[-1].append((cid, loc))
        else:
            runs.append([(cid, loc)])
            start = loc.offset if loc is not None else 0
        end = loc.offset + loc.length if loc is not None else 0
    return runs


def _read_run(store: ObjectStore, run: Run, local: dict[ObjectId, tuple[str, int, int]]) -> list[bytes]:
    from .packs import read_blob

    first = run[0][1]
    if first is None:  # a chunk of content this client holds: read locally, verified like any other
        cid = run[0][0]
        path, offset, length = local[cid]
        with open(path, "rb") as fp:
            fp.seek(offset)
            data = fp.read(length)
        if blake3.blake3(data).hexdigest() == cid:
            return [data]
        loc = store.locate(cid)
        if loc is None:
            raise ObjectCorrupt(f"chunk {cid} is in no pack index of {store.url}", oid=cid)
        return [decode(read_blob(store, loc), cid, where=layout.pack_path(loc.pack))]
    last = run[-1][1]
    assert last is not None
    path = layout.pack_path(first.pack)
    data = store.backend.read_range(path, first.offset, last.offset + last.length - first.offset)
    out = []
    for cid, loc in run:
        assert loc is not None
        blob = data[loc.offset - first.offset: loc.offset - first.offset + loc.length]
        out.append(decode(blob, cid, where=f"{store.url}/{path}@{loc.offset}", limit=MAX_CHUNK))
    return out


def chunks_of_file(path: str) -> dict[ObjectId, tuple[str, int, int]]:
    """Chunk id -> (path, offset, length) of local file `path` cut as a writer cuts it: the installed
    previous version of a big file seeds its rebuild when no chunk list of it was kept (the first update
    after `regen migrate` or after the cache was lost). Empty unless a regular file above CHUNK_ABOVE.
    Nothing here is trusted: every chunk is verified against its id when it is read for a rebuild."""
    found: dict[ObjectId, tuple[str, int, int]] = {}
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return found
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size <= CHUNK_ABOVE:
            return found
        with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as mm:
            view = memoryview(mm)
            try:
                offset = 0
                for part in cut(view):
                    found.setdefault(blake3.blake3(part).hexdigest(), (path, offset, len(part)))
                    offset += len(part)
                    part.release()
            finally:
                view.release()
    except (OSError, ValueError):
        return {}
    finally:
        os.close(fd)
    return found


def local_chunk_map(lists_dir: str, content: Callable[[ObjectId], str | None]) -> dict[ObjectId, tuple[str, int, int]]:
    """Chunk id -> (local file, offset, length) over the chunk lists kept in `lists_dir` whose content
    the client still holds (`content(oid)`: its local path or None); lists of content gone are removed."""
    found: dict[ObjectId, tuple[str, int, int]] = {}
    try:
        names = os.listdir(lists_dir)
    except FileNotFoundError:
        return found
    for name in names:
        full = os.path.join(lists_dir, name)
        where = content(name) if len(name) == 64 else None
        if where is None:
            try:
                os.unlink(full)
            except OSError:
                pass
            continue
        try:
            with open(full, "rb") as fp:
                chunks = decode_list(fp.read(MAX_LIST_BYTES), name, full)
        except (OSError, ObjectCorrupt):
            continue
        offset = 0
        for cid, n in chunks:
            found.setdefault(cid, (where, offset, n))
            offset += n
    return found


__all__ = ["CHUNK_ABOVE", "TAG_CHUNKS", "assemble", "chunks_of_file", "cut", "decode_list", "encode_list",
           "local_chunk_map", "stage_chunked"]
