"""Atomic writes made durable together: one filesystem sync per batch (file://), not one fsync per file."""

from __future__ import annotations

import functools
import itertools
import os
import threading
import uuid
from collections.abc import Callable
from typing import IO

from .backend import Backend
from .layout import TEMP_PREFIX
from .tree import syncfs

_STAGED_MAX_FILES = 4096  # temp files a batch holds before it syncs and renames them
_STAGED_MAX_BYTES = 512 << 20


class StagedWrites:
    """Atomic writes that become durable together: one filesystem sync per batch, not one fsync per file.

    On file:// each `write` puts its content in a `.tmp-` file next to its destination (no
    fsync); `commit` makes all of them durable with one sync of the store's filesystem and
    only then renames each into place. A kill or power loss at any moment therefore leaves
    every destination absent or complete: at worst `.tmp-` files, which readers, gc and fsck
    ignore. A batch commits by itself once it holds many files or bytes, so a big upload
    never keeps an unbounded set of temp files. Elsewhere `write` is the backend's own atomic
    write, at once, and `commit` has nothing left to do. `write` may be called from several
    threads; `commit` and `discard` from the owner. Leaving the `with` block commits, or
    discards on an exception.
    """

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.batched = backend.driver.local  # False: each write is done at once
        self._lock = threading.Lock()
        self._pending: list[tuple[str, str]] = []  # (temp, destination), full local paths
        self._bytes = 0
        self._token = uuid.uuid4().hex[:16]  # temp names: unique per batch, created exclusively
        self._serial = itertools.count()

    def write(self, path: str, data: bytes | tuple[bytes, ...] | Callable[[IO[bytes]], object]) -> None:
        """Write `path` (bytes, parts to concatenate, or a function filling a binary stream);
        durable and visible after commit."""
        b = self.backend
        b.check_writable(path)
        parts = (data,) if isinstance(data, bytes) else data if isinstance(data, tuple) else None
        fill: Callable[[IO[bytes]], object] = data if parts is None else (  # type: ignore[assignment]
            lambda fp: [fp.write(p) for p in parts])
        if not self.batched:
            def direct() -> None:
                b.counters.bump("writes")
                b.fill_atomic(path, fill)
                if parts is not None:
                    b.counters.bump("bytes_written", sum(map(len, parts)))
            b.call(path, direct)
            return
        def op() -> tuple[str, int]:
            b.counters.bump("writes")
            full = b.full(path)
            tmp = f"{full.rsplit('/', 1)[0]}/{TEMP_PREFIX}{self._token}-{next(self._serial)}"
            size = _write_local_temp(tmp, fill) if parts is None else _write_local_parts(tmp, parts)
            b.counters.bump("bytes_written", size)
            return tmp, size
        tmp, size = b.call(path, op)
        with self._lock:
            self._pending.append((tmp, b.full(path)))
            self._bytes += size
            full_batch = len(self._pending) >= _STAGED_MAX_FILES or self._bytes >= _STAGED_MAX_BYTES
        if full_batch:
            self.commit()

    def commit(self) -> None:
        """Make every write so far durable (one filesystem sync), then visible (renames)."""
        with self._lock:
            pending, self._pending, self._bytes = self._pending, [], 0
        if not pending:
            return
        b = self.backend
        done = 0
        try:
            b.call("", lambda: _sync_filesystem(b.root))
            for tmp, dst in pending:
                b.call(b.relative(dst) or dst, functools.partial(os.replace, tmp, dst))
                done += 1
        except BaseException:
            _remove_quietly(tuple(t for t, _ in pending[done:]))
            raise

    def discard(self) -> None:
        """Drop the writes not committed yet (their temp files are removed)."""
        with self._lock:
            pending, self._pending, self._bytes = self._pending, [], 0
        _remove_quietly(tuple(t for t, _ in pending))

    def __enter__(self) -> StagedWrites:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def _write_local_temp(tmp: str, fill: Callable[[IO[bytes]], object]) -> int:
    """Create local file `tmp` (exclusively; folders made on need) holding what `fill` writes; its size."""
    try:
        fp = open(tmp, "xb")
    except FileNotFoundError:
        os.makedirs(tmp.rsplit("/", 1)[0], exist_ok=True)
        fp = open(tmp, "xb")
    try:
        with fp:
            fill(fp)
            return fp.tell()
    except BaseException:
        _remove_quietly((tmp,))
        raise


def _write_local_parts(tmp: str, parts: tuple[bytes, ...]) -> int:
    """Create local file `tmp` holding `parts` (one writev, no buffering copies); its size."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(tmp, flags, 0o666)
    except FileNotFoundError:
        os.makedirs(tmp.rsplit("/", 1)[0], exist_ok=True)
        fd = os.open(tmp, flags, 0o666)
    try:
        total = sum(map(len, parts))
        done = os.writev(fd, parts)
        if done < total:  # a short write: write the rest plainly
            rest = memoryview(b"".join(parts))[done:]
            while rest:
                rest = rest[os.write(fd, rest):]
    except BaseException:
        os.close(fd)
        _remove_quietly((tmp,))
        raise
    os.close(fd)
    return total


def _remove_quietly(paths: tuple[str, ...]) -> None:
    for p in paths:
        try:
            os.unlink(p)
        except OSError:
            pass


def _sync_filesystem(path: str) -> None:
    """Flush the filesystem holding `path` to stable storage: syncfs(2) where there is one, else sync(2)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if not syncfs(fd):
            os.sync()
    finally:
        os.close(fd)


__all__ = ["StagedWrites"]
