"""Reading streams of the backends: byte counting and error translation, the low-speed cut
(min_rate), and the ranged reads the schemes share (each scheme picks its own, schemes/)."""

from __future__ import annotations

import time
from typing import IO, Any

from .counters import Counters
from .errors import StoreError, StoreUnreachable
from .translate import translate


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


def cat_range(fs: Any, full: str, start: int, length: int) -> bytes:
    """Bytes [start, start+length) of `full` by one ranged request (http(s), memory); fewer only at the end."""
    if length <= 0:
        return b""
    data = bytes(fs.cat_file(full, start=start, end=start + length))
    if len(data) > length:  # a server that ignores Range sends the whole file (200): cut it here
        data = data[start:start + length]
    return data


def seek_read(fs: Any, full: str, start: int, length: int, **open_kw: Any) -> bytes:
    """Bytes [start, start+length) of `full` by a seek and a read (smb, sftp); fewer only at the end."""
    if length <= 0:
        return b""
    with fs.open(full, "rb", **open_kw) as fp:
        fp.seek(start)
        parts: list[bytes] = []
        while length > 0:
            chunk = fp.read(length)
            if not chunk:
                break
            parts.append(bytes(chunk))
            length -= len(chunk)
        return b"".join(parts)


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


__all__ = ["CountingReader", "RateGuard", "cat_range", "read_upto", "seek_read"]
