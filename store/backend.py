"""The storage boundary: `Backend`, the one door through which regen reaches fsspec filesystems.
Its helpers work on what it hands them: schemes.py (URLs, capabilities, options, opening a
filesystem), connections.py (shared or per-thread filesystems), streams.py (reading streams, the
min_rate cut, S3 ranged reads), atomic.py (atomic replace, exclusive create), listing.py (folder
listings) and counters.py (request counts). They never import the backend back: staging.py
(batched durable writes) sits above it and drives it through its public methods (`call`,
`check_writable`, `fill_atomic`, `relative`).

A `Backend` is a narrow interface over one fsspec filesystem rooted at a URL: read,
open_read, write (atomic: no reader ever sees a partial file), create_exclusive, stat,
list, delete. Foreign exceptions are translated here, by one table (translate.py), into
regen errors; only a definite "no such file" ever means "missing" (fsspec's exists() and
isfile() are never used: they answer False on any error). Transient failures are retried
with exponential backoff and jitter, honouring Retry-After. Counters record every request
so tests and reports can prove how light a run was on the server.
"""

from __future__ import annotations

import builtins
import errno
import logging
import os
import random
import shutil
import stat as stat_mod
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any, TypeVar

from .atomic import create_new, write_atomic
from .breaker import Breaker
from .connections import Connections
from .counters import Counters
from .errors import NotFound, StoreError, StoreExists, StoreReadOnly, StoreUnreachable
from .layout import TEMP_PREFIX
from .listing import files_below, subfolders
from .options import check_options
from .schemes import (
    DEFAULT_MIN_RATE,
    DEFAULT_TIMEOUT,
    _known_hosts,
    _min_rate,
    _positive_seconds,
    capabilities,
    fs_root,
    make_fs,
    max_rate,
    parse_url,
)
from .streams import CountingReader, RateGuard, open_stream, read_range, read_upto, s3_range
from .throttle import Throttle
from .translate import translate

log = logging.getLogger("regen.store.backend")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Stat:
    size: int
    mtime: float | None


def open_local(full: str) -> IO[bytes]:
    """A file of a file:// store, for reading: never through a symlink (its last component) and
    never blocking on a FIFO (O_NOFOLLOW | O_NONBLOCK, then S_ISREG): a symlink to a FIFO in a
    host's report folder hung `regen status` (issue 13)."""
    fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat_mod.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", full)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


class Backend:
    """One fsspec filesystem rooted at `url`, with the narrow interface regen needs.

    Per scheme (see contrib/backends/ for server set-up):
      file    temp file + fsync + rename; exclusive create by link(2)
      memory  tests only
      s3      one PUT is atomic; exclusive create by If-None-Match: *; reads are (ranged) GETs,
              never HEAD + GET; listings uncached
      smb     temp file + replace; exclusive create by rename without replace; readers share
              read and delete access, so many clients can read while the publisher replaces
      sftp    temp file + posix-rename; exclusive create by plain SFTP rename (never replaces);
              paramiko's SFTP client is not thread-safe, so each thread borrows its own
              connection from a small pool; optional known_hosts check of the server's key
      http(s) read-only; every read is one GET (no HEAD, no LIST); listing is refused
    Own storage options: `timeout` (seconds, default 30: connect and read idle time, so a dead
    server fails instead of hanging), `min_rate` (bytes/s, default 1024: a streamed read slower
    than that over `timeout` seconds is cut, so a trickling server cannot hold a run forever; 0:
    off) and `known_hosts` (sftp: OpenSSH known_hosts file).
    """

    def __init__(
        self,
        url: str,
        storage_options: dict[str, Any] | None = None,
        *,
        retries: int = 3,
        backoff: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.scheme, self.url = parse_url(url)
        self.url = self.url.rstrip("/")
        # as given (regen's own options included), checked by name and type, JSON tables decoded
        self.options = check_options(self.scheme, dict(storage_options or {}))
        self.timeout = _positive_seconds(self.options.get("timeout", DEFAULT_TIMEOUT), self.url)
        self.min_rate = _min_rate(self.options.get("min_rate", DEFAULT_MIN_RATE), self.url)
        self.known_hosts: str | None = _known_hosts(self.options.get("known_hosts"), self.scheme, self.url)
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        self.counters = Counters()
        for option, counted in (("max_rate", "bytes_read"), ("max_upload_rate", "bytes_written")):
            cap = max_rate(option, self.options.get(option), self.url)
            if cap is not None:  # (every byte is counted: the counters pace them)
                self.counters.caps[counted] = Throttle(cap)
        self.breaker = Breaker(self.url)
        self.capabilities = capabilities(self.scheme)
        self._root: str | None = None
        self._conns = Connections(self._make_fs, pooled=self.scheme == "sftp")

    # -- plumbing ---------------------------------------------------------------------------
    def _make_fs(self) -> Any:
        return make_fs(self.scheme, self.url, self.options, self.timeout, self.known_hosts)

    @property
    def fs(self) -> Any:
        """The fsspec filesystem (for sftp: the connection this thread borrowed for the operation)."""
        return self._conns.current()

    @property
    def root(self) -> str:
        """The store's root as the filesystem names it (found without connecting)."""
        if self._root is None:
            self._root = fs_root(self.scheme, self.url)
        return self._root

    def full(self, path: str) -> str:
        return f"{self.root}/{path}" if path else self.root

    def relative(self, name: str) -> str | None:
        """`name` (a full filesystem path) relative to the store root; None if it lies outside."""
        root = self.root.strip("/")
        q = name.strip("/")
        return q[len(root) + 1:] if q.startswith(root + "/") else None

    def close(self) -> None:
        """Close pooled connections (the backend stays usable: it reconnects on demand)."""
        self._conns.close()

    def call(self, path: str, op: Callable[[], T]) -> T:
        """Run `op` (one request about `path`) with this backend's connection and error translation.
        Transient failures are retried with backoff (honouring Retry-After) within the run's retry
        budget; a server that failed `BREAKER_THRESHOLD` requests in a row is not asked again in
        this run (breaker.py); anything else is raised as a regen error."""
        attempt = 0
        self.breaker.check(self.url, path)
        while True:
            try:
                with self._conns.leased():
                    result = op()
                self.breaker.success()
                return result
            except BaseException as exc:  # noqa: BLE001 - translated and re-raised
                if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
                    raise
                err = translate(exc, self.url, path)
                unreachable = isinstance(err, StoreUnreachable)
                if unreachable and attempt < self.retries and self.breaker.may_retry():
                    delay = err.retry_after
                    if delay is None:
                        delay = self.backoff * (2**attempt) * (0.5 + random.random())
                    log.info("retrying %s after %.2fs: %s", path or self.url, delay, err)
                    self.counters.bump("retries")
                    if self.scheme == "smb":
                        self._conns.reset()  # reconnect: re-register the session with its credentials
                    self._sleep(min(delay, _MAX_DELAY))
                    attempt += 1
                    continue
                if unreachable:
                    self.breaker.failure(err)  # type: ignore[arg-type]
                else:
                    self.breaker.success()  # the server answered (a "no such file" is an answer)
                if err is exc:
                    raise
                raise err from exc

    def check_writable(self, path: str) -> None:
        """StoreReadOnly unless this backend may write (http(s) stores are read-only)."""
        if self.capabilities.read_only:
            raise StoreReadOnly(f"cannot write {path}: store {self.url} is read-only", url=self.url, path=path)

    # -- reading ------------------------------------------------------------------------------
    def read(self, path: str, max_bytes: int | None = None) -> bytes:
        """Whole content of `path` in one request; NotFound only if the backend said it does not exist.

        With `max_bytes`, at most max_bytes + 1 bytes are transferred (the caller sees it was too big).
        """
        def op() -> bytes:
            self.counters.bump("reads")
            data = self._read_full(self.full(path), max_bytes)
            self.counters.bump("bytes_read", len(data))
            return data
        return self.call(path, op)

    def read_range(self, path: str, start: int, length: int) -> bytes:
        """Bytes [start, start+length) of `path` in one request (HTTP Range, ranged S3 GET, seek on
        file/smb/sftp); fewer only where the file ends before. NotFound as `read`."""
        def op() -> bytes:
            self.counters.bump("reads")
            full = self.full(path)
            if self.scheme == "file":
                with open_local(full) as fp:
                    fp.seek(start)
                    data = fp.read(length)
            else:
                data = read_range(self.fs, self.scheme, full, start, length)
            self.counters.bump("bytes_read", len(data))
            return data
        return self.call(path, op)

    def _read_full(self, full: str, max_bytes: int | None) -> bytes:
        if self.scheme == "file":  # plain reads: a client's no-change run never imports fsspec
            with open_local(full) as fp:
                return fp.read() if max_bytes is None else fp.read(max_bytes + 1)
        fs = self.fs
        if self.scheme == "s3":
            return s3_range(fs, full, 0, None if max_bytes is None else max_bytes + 1)
        if max_bytes is None and self.scheme not in ("smb",):
            return bytes(fs.cat_file(full))
        with self._open_raw(full) as fp:
            if max_bytes is None:
                return bytes(fp.read())
            return read_upto(fp, max_bytes + 1, self.rate_guard(full))

    def _open_raw(self, full: str) -> Any:
        if self.scheme == "file":
            return open_local(full)
        return open_stream(self.fs, self.scheme, full, lambda: self.counters.bump("reads"))

    @contextmanager
    def open_read(self, path: str) -> Iterator[IO[bytes]]:
        """A stream of `path`'s content (one GET on http and for S3 objects up to 8 MiB)."""
        def op() -> tuple[Any, Any]:
            self.counters.bump("reads")
            fp = self._open_raw(self.full(path))
            return fp, (self._conns.detach() if self._conns.pooled else None)
        fp, owner = self.call(path, op)
        try:
            yield CountingReader(fp, self.counters, self.url, path, self.rate_guard(path))  # type: ignore[misc]
        finally:
            try:
                fp.close()
            except Exception as exc:  # noqa: BLE001 - the data was already read or its error raised
                log.debug("closing %s: %s", path, exc)
            if owner is not None:
                self._conns.release(owner)

    def rate_guard(self, path: str) -> RateGuard:
        return RateGuard(self.min_rate, self.timeout, self.url, path)

    # -- writing ------------------------------------------------------------------------------
    def write(self, path: str, data: bytes) -> None:
        """Atomically create or replace `path`: readers see the old or the new content, never a part."""
        self.check_writable(path)
        def op() -> None:
            self.counters.bump("writes")
            self.fill_atomic(path, lambda fp: fp.write(data))
            self.counters.bump("bytes_written", len(data))
        self.call(path, op)

    def write_from(self, path: str, src: IO[bytes]) -> None:
        """Atomically write `path` from a seekable local stream (rewound on retry)."""
        self.check_writable(path)
        def op() -> None:
            self.counters.bump("writes")
            src.seek(0)
            self.fill_atomic(path, lambda fp: shutil.copyfileobj(src, fp, 1 << 20))
            self.counters.bump("bytes_written", src.tell())
        self.call(path, op)

    def fill_atomic(self, path: str, fill: Callable[[IO[bytes]], object]) -> None:
        """One attempt at atomically writing `path` with what `fill` writes (call it inside `call`)."""
        full = self.full(path)
        write_atomic(self.fs, self.scheme, full, fill, atomic_put=self.capabilities.atomic_put, url=self.url,
                     rel=self.relative(full), sleep=self._sleep)

    def create_exclusive(self, path: str, data: bytes) -> None:
        """Create `path` with `data` only if it does not exist; StoreExists otherwise (never overwrites).

        The content appears at once and complete (a lock or a record is never seen half-written).
        """
        self.check_writable(path)
        full = self.full(path)
        attempts = 0

        def op() -> None:
            nonlocal attempts
            attempts += 1
            self.counters.bump("writes")
            create_new(self.fs, self.scheme, full, data)
            self.counters.bump("bytes_written", len(data))
        try:
            self.call(path, op)
        except StoreExists:
            if attempts > 1 and self._holds(path, data):
                return  # an earlier attempt of ours landed before its answer was lost
            raise StoreExists(f"{self.url}/{path} already exists", url=self.url, path=path) from None

    def _holds(self, path: str, data: bytes) -> bool:
        try:
            return self.read(path, max_bytes=len(data)) == data
        except StoreError:
            return False

    def delete(self, path: str) -> None:
        """Remove `path`; a missing path raises NotFound, or nothing where the server cannot tell (S3)."""
        self.check_writable(path)
        def op() -> None:
            self.counters.bump("deletes")
            self.fs.rm_file(self.full(path))
        self.call(path, op)

    # -- metadata and listing -----------------------------------------------------------------
    def stat(self, path: str) -> Stat:
        """Size and mtime of file `path` (one HEAD on S3 and http); NotFound for a folder."""
        def op() -> Stat:
            self.counters.bump("stats")
            full = self.full(path)
            if self.scheme == "file":  # one stat(2), without fsspec's per-call overhead
                s = os.stat(full)
                if stat_mod.S_ISDIR(s.st_mode):
                    raise FileNotFoundError(errno.ENOENT, "is a folder", path)
                return Stat(s.st_size, s.st_mtime)
            fs = self.fs
            if self.scheme == "s3":
                bucket, key, _ = fs.split_path(full)
                head = fs.call_s3("head_object", Bucket=bucket, Key=key)
                return Stat(int(head["ContentLength"]), _timestamp(head.get("LastModified")))
            info = fs.info(full)
            if info.get("type") == "directory":
                raise FileNotFoundError(errno.ENOENT, "is a folder", path)
            mtime = info.get("mtime") or info.get("LastModified") or info.get("created")
            return Stat(int(info.get("size") or 0), _timestamp(mtime))
        return self.call(path, op)

    def absent(self, paths: list[str]) -> list[bool]:
        """For each file path, whether the backend definitely says it does not exist (one stat each).

        On file:// the stats run here, without a thread hand-off or fsspec; elsewhere `stat`.
        """
        if self.scheme != "file":
            out = []
            for p in paths:
                try:
                    self.stat(p)
                    out.append(False)
                except NotFound:
                    out.append(True)
            return out
        root = self.full("")
        found: list[bool] = []
        for p in paths:
            self.counters.bump("stats")
            try:
                s = os.stat(f"{root}/{p}")
            except (FileNotFoundError, NotADirectoryError):
                found.append(True)
                continue
            except OSError:  # anything else: the full path, with retries and translation
                try:
                    self.stat(p)
                    found.append(False)
                except NotFound:
                    found.append(True)
                continue
            found.append(stat_mod.S_ISDIR(s.st_mode))
        return found

    def _check_listable(self, prefix: str) -> None:
        if not self.capabilities.listable:
            raise StoreReadOnly(f"cannot list {self.url}/{prefix}: http(s) stores cannot be listed",
                                url=self.url, path=prefix)

    def list(self, prefix: str) -> list[str]:
        """Every file below `prefix`, as paths relative to the store root; [] if there is none.

        Errors are raised, never mistaken for an empty folder (fsspec's find() swallows them).
        """
        self._check_listable(prefix)
        def op() -> list[str]:
            self.counters.bump("lists")
            top = self.full(prefix)
            found = files_below(self.fs, self.scheme, top)
            out = []
            for p in found:
                rel = self.relative(p)
                if rel and not rel.rsplit("/", 1)[-1].startswith(TEMP_PREFIX):
                    out.append(rel)
            return sorted(out)
        return self.call(prefix, op)

    def list_dirs(self, prefix: str) -> builtins.list[str]:
        """Names of the direct subfolders of `prefix` (on S3: the prefixes that hold files)."""
        self._check_listable(prefix)
        def op() -> list[str]:
            self.counters.bump("lists")
            top = self.full(prefix)
            return subfolders(self.fs, self.scheme, top)
        return self.call(prefix, op)

    def clear_cache(self) -> None:
        fs = self._conns.shared
        if fs is not None and hasattr(fs, "invalidate_cache"):
            fs.invalidate_cache()


_MAX_DELAY = 30.0


def _timestamp(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    return float(value)


def open_backend(url: str, storage_options: dict[str, Any] | None = None, **kw: Any) -> Backend:
    return Backend(url, storage_options, **kw)
