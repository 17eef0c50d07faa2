"""Reading streams of the backends: byte counting and error translation, the low-speed cut
(min_rate), and S3 objects read by ranged GETs."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import IO, Any

from .counters import Counters
from .errors import StoreError, StoreUnreachable
from .translate import _status_of, translate

_S3_CHUNK = 8 << 20  # S3 objects are streamed by ranged GETs of this size: one GET up to 8 MiB


class RateGuard:
    """Cuts a transfer slower than `min_rate` bytes/s over a whole `window` of seconds spent
    waiting for it (time inside read calls only: a reader that pauses to work is not the
    server's fault)."""

    def __init__(self, min_rate: float, window: float, url: str, path: str) -> None:
        self.min_rate, self.window, self.url, self.path = min_rate, window, url, path
        self._busy = 0.0
        self._n = 0

    def read(self, fp: Any, n: int) -> Any:
        t0 = time.monotonic()
        data = fp.read(n)
        if self.min_rate:
            self._busy += time.monotonic() - t0
            self._n += len(data)
            if self._busy >= self.window:
                self._check()
        return data

    def _check(self) -> None:
        elapsed = self._busy
        if self._n < self.min_rate * elapsed:
            raise StoreUnreachable(
                f"{self.url}/{self.path} arrived at {self._n / elapsed:.0f} bytes/s over {elapsed:.0f} s, under "
                f"the {self.min_rate:.0f} bytes/s a transfer needs (storage option min_rate); cut off",
                url=self.url, path=self.path, hint="check the network and the server; the next run tries again")
        self._busy, self._n = 0.0, 0


def open_stream(fs: Any, scheme: str, full: str, on_request: Callable[[], None]) -> Any:
    """A binary stream of `full` on filesystem `fs` (not file://), opened the cheapest way for `scheme`;
    `on_request` is called for each further request an S3 stream makes."""
    if scheme == "s3":
        return _RangeReader(fs, full, _S3_CHUNK, on_request)
    if scheme in ("http", "https"):
        # one streaming GET: block_size=0 streams, and a given size spares fsspec's HEAD
        return fs.open(full, "rb", block_size=0, size=1)
    if scheme == "smb":
        # share read+delete: other clients may read it, and the publisher may replace it, meanwhile
        return fs.open(full, "rb", share_access="rd")
    if scheme == "memory":
        return io.BytesIO(fs.cat_file(full))  # memory's open() shares one position among readers
    return fs.open(full, "rb")


def read_upto(fp: Any, want: int, guard: RateGuard) -> bytes:
    """`want` bytes of `fp`, or all up to its end if fewer, read through `guard`."""
    # a streamed read (http) returns what has arrived so far: read until the limit or the end
    parts: list[bytes] = []
    while want > 0:
        chunk = guard.read(fp, want)
        if not chunk:
            break
        parts.append(bytes(chunk))
        want -= len(chunk)
    return b"".join(parts)


def read_range(fs: Any, scheme: str, full: str, start: int, length: int) -> bytes:
    """Bytes [start, start+length) of `full` on `fs` (not file://) in one request: a ranged GET on s3 and
    http(s), a seek and a read on smb and sftp. Fewer bytes only at the end of the file."""
    if length <= 0:
        return b""
    if scheme == "s3":
        return s3_range(fs, full, start, start + length)
    if scheme in ("http", "https", "memory"):
        data = bytes(fs.cat_file(full, start=start, end=start + length))
        if len(data) > length:  # a server that ignores Range sends the whole file (200): cut it here
            data = data[start:start + length]
        return data
    kw = {"share_access": "rd"} if scheme == "smb" else {}
    with fs.open(full, "rb", **kw) as fp:
        fp.seek(start)
        parts: list[bytes] = []
        while length > 0:
            chunk = fp.read(length)
            if not chunk:
                break
            parts.append(bytes(chunk))
            length -= len(chunk)
        return b"".join(parts)


def s3_range(fs: Any, full: str, start: int, end: int | None) -> bytes:
    """One GET of bytes [start, end) (to the end if None); b"" past the end or for an empty object."""
    try:
        return bytes(fs.cat_file(full, start=start, end=end))
    except OSError as exc:
        if _status_of(exc) == 416:  # InvalidRange: nothing at or after `start`
            return b""
        raise


class _RangeReader:
    """Stream an S3 object by ranged GETs of `chunk` bytes: one request for small objects, no HEAD."""

    def __init__(self, fs: Any, full: str, chunk: int, on_request: Callable[[], None]) -> None:
        self._fs = fs
        self._full = full
        self._chunk = chunk
        self._on_request = on_request
        self._pos = 0
        self._buf = b""
        self._off = 0
        self._eof = False
        self._fill()  # the first GET now: a missing object fails at open, as on other backends

    def _fill(self) -> None:
        data = s3_range(self._fs, self._full, self._pos, self._pos + self._chunk)
        self._pos += len(data)
        self._eof = len(data) < self._chunk
        self._buf = self._buf[self._off:] + data if self._off < len(self._buf) else data
        self._off = 0

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            parts = [self._buf[self._off:]]
            self._buf, self._off = b"", 0
            while not self._eof:
                self._on_request()
                self._fill()
                parts.append(self._buf)
                self._buf = b""
            return b"".join(parts)
        while len(self._buf) - self._off < n and not self._eof:
            self._on_request()
            self._fill()
        out = self._buf[self._off:self._off + n]
        self._off += len(out)
        return out

    def close(self) -> None:
        self._buf = b""

    def __enter__(self) -> _RangeReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CountingReader:
    """File wrapper that counts bytes and translates read errors."""

    def __init__(self, fp: IO[bytes], counters: Counters, url: str, path: str, guard: RateGuard) -> None:
        self._fp = fp
        self._guard = guard
        self._counters = counters
        self._url = url
        self._path = path

    def read(self, n: int = -1) -> bytes:
        try:
            data: bytes = self._guard.read(self._fp, n)
        except StoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - translated
            raise translate(exc, self._url, self._path) from exc
        self._counters.bump("bytes_read", len(data))
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._fp.close()


__all__ = ["CountingReader", "RateGuard", "open_stream", "read_range", "read_upto", "s3_range"]
