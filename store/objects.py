"""Object ids and the stored encoding of objects (pure, except `hash_file`).

An object id is the BLAKE3-256 hex digest of the *uncompressed* content. A stored object
is one tag byte followed by the body: ``z`` + a zstd frame, or ``r`` + the raw content.
Readers verify the id of what they decode; nothing unverified is ever returned.
"""

from __future__ import annotations

import io
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import blake3
import xxhash

from .errors import IntegrityError, ObjectCorrupt, RecordTooLarge

ObjectId = str

_OID_RE = re.compile(r"^[0-9a-f]{64}$")
TAG_ZSTD = b"z"
TAG_RAW = b"r"
CHUNK = 1 << 20
EMPTY_ID = blake3.blake3(b"").hexdigest()


def is_object_id(value: object) -> bool:
    return isinstance(value, str) and bool(_OID_RE.match(value))


def object_id(data: bytes) -> ObjectId:
    return blake3.blake3(data, max_threads=blake3.blake3.AUTO if len(data) > 1 << 22 else 1).hexdigest()


def xxh(data: bytes) -> str:
    return xxhash.xxh3_128_hexdigest(data)


@dataclass(frozen=True, slots=True)
class FileDigest:
    """Both digests of one file, computed in a single read."""

    oid: ObjectId
    xxh: str
    size: int


def hash_stream(read: Callable[[int], bytes], buf_size: int = CHUNK) -> FileDigest:
    b = blake3.blake3()
    x = xxhash.xxh3_128()
    size = 0
    while True:
        chunk = read(buf_size)
        if not chunk:
            break
        b.update(chunk)
        x.update(chunk)
        size += len(chunk)
    return FileDigest(b.hexdigest(), x.hexdigest(), size)


def hash_file(path: str | os.PathLike[str], buf: bytearray | None = None) -> FileDigest:
    """BLAKE3 and xxh3-128 of a file in one pass, reading into a reused buffer."""
    buf = buf if buf is not None else bytearray(CHUNK)
    view = memoryview(buf)
    b = blake3.blake3()
    x = xxhash.xxh3_128()
    size = 0
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        while True:
            n = os.readv(fd, [buf])
            if n == 0:
                break
            part = view[:n]
            b.update(part)
            x.update(part)
            size += n
    finally:
        os.close(fd)
    return FileDigest(b.hexdigest(), x.hexdigest(), size)


def encode(data: bytes, compression: str = "zstd", level: int = 3) -> bytes:
    if compression == "zstd":
        import zstandard  # (on first use: reading a record or the tree needs no codec)

        return TAG_ZSTD + zstandard.ZstdCompressor(level=level).compress(data)
    return TAG_RAW + data


RAW_ABOVE = 0.97  # a zstd body above this share of the content saves too little: store it raw
_local = threading.local()


def encode_parts(data: bytes, compression: str = "zstd", level: int = 3) -> tuple[bytes, bytes]:
    """(tag, body) of `data`, zstd unless that saves under 3% (random or already compressed data is
    stored raw: the same id, cheaper to write and to read). Thread-safe: one compressor per thread."""
    if compression == "zstd" and data:
        comp = getattr(_local, "zstd", None)
        if comp is None or _local.level != level:
            import zstandard

            comp = _local.zstd = zstandard.ZstdCompressor(level=level)
            _local.level = level
        body = comp.compress(data)
        if len(body) <= len(data) * RAW_ABOVE:
            return TAG_ZSTD, body
    return TAG_RAW, data


def decode(stored: bytes, oid: ObjectId, *, where: str = "", limit: int | None = None) -> bytes:
    """Decode a stored object and verify its id; never returns bad bytes.

    Goes through `VerifyingWriter`, so whole-object and streaming reads accept and refuse
    exactly the same stored bytes.
    """
    out = io.BytesIO()
    VerifyingWriter(oid, out, where=where, limit=limit).copy_from(io.BytesIO(stored))
    return out.getvalue()


class VerifyingWriter:
    """Decode a stored object stream into `out` while hashing it; `finish` checks the id.

    The caller writes into a temporary file and renames only after `finish` passed,
    so a corrupt object never reaches its destination.
    """

    def __init__(self, oid: ObjectId, out: IO[bytes], *, where: str = "", limit: int | None = None) -> None:
        self.oid = oid
        self.out = out
        self.where = where
        self.limit = limit
        self.size = 0
        self._hash = blake3.blake3()
        self._xxh = xxhash.xxh3_128()

    def copy_from(self, src: IO[bytes]) -> FileDigest:
        tag = src.read(1)
        if not tag:
            raise ObjectCorrupt(f"object {self.oid} at {self.where or '?'} is empty", oid=self.oid, path=self.where)
        if tag == TAG_ZSTD:
            import zstandard

            try:
                # concatenated frames decode as one stream (as `zstd -d` does); trailing bytes
                # that are not a frame are refused
                reader = zstandard.ZstdDecompressor().stream_reader(src, closefd=False, read_across_frames=True)
                for chunk in iter(lambda: reader.read(CHUNK), b""):
                    self._feed(chunk)
            except zstandard.ZstdError as exc:
                raise ObjectCorrupt(
                    f"object {self.oid} at {self.where or '?'} does not decompress: {exc}", oid=self.oid,
                    path=self.where
                ) from exc
        elif tag == TAG_RAW:
            for chunk in iter(lambda: src.read(CHUNK), b""):
                self._feed(chunk)
        else:
            raise ObjectCorrupt(
                f"object {self.oid} at {self.where or '?'} has unknown encoding tag {tag!r}", oid=self.oid,
                path=self.where
            )
        return self.finish()

    def _feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.limit is not None and self.size > self.limit:
            raise RecordTooLarge(
                f"object {self.oid} is larger than the limit of {self.limit} bytes", oid=self.oid, limit=self.limit
            )
        self._hash.update(chunk)
        self._xxh.update(chunk)
        self.out.write(chunk)

    def finish(self) -> FileDigest:
        actual = self._hash.hexdigest()
        if actual != self.oid:
            raise ObjectCorrupt(
                f"object {self.oid} at {self.where or '?'} has content hashing to {actual}",
                oid=self.oid,
                path=self.where,
                actual=actual,
            )
        return FileDigest(actual, self._xxh.hexdigest(), self.size)


def encode_stream(src: IO[bytes], out: IO[bytes], compression: str = "zstd", level: int = 3) -> FileDigest:
    """Encode `src` into `out` (tag + body) and return the digests of the content."""
    b = blake3.blake3()
    x = xxhash.xxh3_128()
    size = 0
    if compression == "zstd":
        import zstandard

        out.write(TAG_ZSTD)
        writer = zstandard.ZstdCompressor(level=level).stream_writer(out, closefd=False)
        sink: Callable[[bytes], object] = writer.write
    else:
        out.write(TAG_RAW)
        writer = None
        sink = out.write
    for chunk in iter(lambda: src.read(CHUNK), b""):
        b.update(chunk)
        x.update(chunk)
        size += len(chunk)
        sink(chunk)
    if writer is not None:
        writer.close()  # type: ignore[no-untyped-call]  # ends the one frame (a flush(FLUSH_FRAME) first would add an empty second frame)
    return FileDigest(b.hexdigest(), x.hexdigest(), size)


def iter_chunks(fp: IO[bytes]) -> Iterator[bytes]:
    return iter(lambda: fp.read(CHUNK), b"")


class Prefixed:
    """A stream whose first byte was already read (a reader peeked at the tag), as if it had not been."""

    def __init__(self, first: bytes, src: Any) -> None:
        self._first = first
        self._src = src

    def read(self, n: int = -1) -> bytes:
        if self._first:
            head, self._first = self._first, b""
            rest: bytes = self._src.read() if n is None or n < 0 else (self._src.read(n - 1) if n > 1 else b"")
            return head + rest
        data: bytes = self._src.read(n)
        return data



def check_read(path: str, oid: ObjectId | None, digest: FileDigest) -> None:
    """Refuse a local file whose content is no longer the `oid` the caller hashed (it is being written)."""
    if oid is not None and digest.oid != oid:
        raise IntegrityError(f"{path} changed while it was read (expected {oid}, read {digest.oid})",
                             hint="retry when the file is no longer being written", path=path)


__all__ = [
    "EMPTY_ID",
    "check_read",
    "FileDigest",
    "IntegrityError",
    "ObjectId",
    "Prefixed",
    "VerifyingWriter",
    "decode",
    "encode",
    "encode_parts",
    "encode_stream",
    "hash_file",
    "hash_stream",
    "is_object_id",
    "object_id",
    "xxh",
]
