"""The storage boundary: `Backend`, the one door through which regen reaches fsspec filesystems.
Its helpers work on what it hands them: schemes/ (one class per URL scheme, chosen once here:
URLs, capabilities, options, opening a filesystem, how it streams, stats, writes atomically,
creates exclusively and lists), connections.py (shared or per-thread filesystems), streams.py
(reading streams, the min_rate cut), atomic.py and listing.py (the shapes of atomic writes and
listings the schemes share), options.py (storage options) and counters.py (request counts).
They never import the backend back: staging.py (batched durable writes) sits above it and
drives it through its public methods (`call`, `check_writable`, `fill_atomic`, `relative`).

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
import logging
import random
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any, TypeVar

from .breaker import Breaker
from .connections import Connections
from .counters import Counters
from .errors import NotFound, StoreAccessDenied, StoreError, StoreExists, StoreReadOnly, StoreUnreachable
from .layout import TEMP_PREFIX
from .listing import subfolders
from .options import DEFAULT_MIN_RATE, DEFAULT_TIMEOUT, known_hosts, max_rate, min_rate, positive_seconds
from .schemes import Stat, resolve
from .streams import CountingReader, RateGuard
from .throttle import Throttle
from .translate import translate

log = logging.getLogger("regen.store.backend")
T = TypeVar("T")


class Backend:
    """One fsspec filesystem rooted at `url`, with the narrow interface regen needs.

    How each URL scheme streams, writes atomically, creates exclusively and lists is said once, in
    its module of schemes/ (file, memory, s3, smb, sftp, http; contrib/backends/ sets up servers);
    the backend asks the scheme it picked when it was built (`driver`).
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
        # the one place a scheme is chosen: every per-scheme decision is a question to `driver`
        self.driver, self.url = resolve(url)
        self.scheme = self.driver.protocol
        self.url = self.url.rstrip("/")
        # as given (regen's own options included), checked by name and type, JSON tables decoded
        self.options = self.driver.check_options(dict(storage_options or {}))
        self.timeout = positive_seconds(self.options.get("timeout", DEFAULT_TIMEOUT), self.url)
        self.min_rate = min_rate(self.options.get("min_rate", DEFAULT_MIN_RATE), self.url)
        self.known_hosts: str | None = known_hosts(self.options.get("known_hosts"), self.driver.takes_known_hosts,
                                                   self.url)
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        self.counters = Counters()
        for option, counted in (("max_rate", "bytes_read"), ("max_upload_rate", "bytes_written")):
            cap = max_rate(option, self.options.get(option), self.url)
            if cap is not None:  # (every byte is counted: the counters pace them)
                self.counters.caps[counted] = Throttle(cap)
        self.breaker = Breaker(self.url)
        self.capabilities = self.driver.capabilities
        self._root: str | None = None
        self._conns = Connections(self._make_fs, pooled=self.driver.pooled)

    # -- plumbing ---------------------------------------------------------------------------
    def _make_fs(self) -> Any:
        return self.driver.make_fs(self.url, self.options, self.timeout, self.known_hosts)

    @property
    def fs(self) -> Any:
        """The fsspec filesystem (for sftp: the connection this thread borrowed for the operation)."""
        return self._conns.current()

    @property
    def root(self) -> str:
        """The store's root as the filesystem names it (found without connecting)."""
        if self._root is None:
            self._root = self.driver.fs_root(self.url)
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
                    if self.driver.reconnect_on_retry:
                        self._conns.reset()  # reconnect (smb: re-register the session with its credentials)
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

    def read_call(self, path: str, op: Callable[[], T]) -> T:
        """`call` for a read. A refusal becomes NotFound only if the scheme can list exactly `path`
        and that listing answers without it (S3 says 403 for a missing key to a client that may
        list only the prefixes it can miss: contrib/backends/s3-client-policy.json)."""
        try:
            return self.call(path, op)
        except StoreAccessDenied:
            if not self._listed_absent(path):
                raise
        raise NotFound(f"{path} does not exist in {self.url} (a read was refused; a listing shows it absent)",
                       url=self.url, path=path)

    def _listed_absent(self, path: str) -> bool:
        def op() -> bool | None:
            self.counters.bump("lists")
            return self.driver.key_listed(self._conns.current, self.full(path))
        try:
            return self.call(path, op) is False
        except StoreAccessDenied:
            return False

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
        return self.read_call(path, op)

    def read_range(self, path: str, start: int, length: int) -> bytes:
        """Bytes [start, start+length) of `path` in one request (HTTP Range, ranged S3 GET, seek on
        file/smb/sftp); fewer only where the file ends before. NotFound as `read`."""
        def op() -> bytes:
            self.counters.bump("reads")
            data = self.driver.read_range(self._conns.current, self.full(path), start, length)
            self.counters.bump("bytes_read", len(data))
            return data
        return self.read_call(path, op)

    def _read_full(self, full: str, max_bytes: int | None) -> bytes:
        return self.driver.read_full(self._conns.current, full, max_bytes, self.rate_guard(full), self._count_read)

    def _open_raw(self, full: str) -> Any:
        return self.driver.open_stream(self._conns.current, full, self._count_read)

    def _count_read(self) -> None:
        self.counters.bump("reads")

    @contextmanager
    def open_read(self, path: str) -> Iterator[IO[bytes]]:
        """A stream of `path`'s content (one GET on http and for S3 objects up to 8 MiB)."""
        def op() -> tuple[Any, Any]:
            self.counters.bump("reads")
            fp = self._open_raw(self.full(path))
            return fp, (self._conns.detach() if self._conns.pooled else None)
        fp, owner = self.read_call(path, op)
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
        self.driver.write_atomic(self._conns.current, full, fill, url=self.url, rel=self.relative(full),
                                 sleep=self._sleep)

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
            self.driver.create_new(self._conns.current, full, data)
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
            return self.driver.stat(self._conns.current, self.full(path), path)
        return self.read_call(path, op)

    def absent(self, paths: list[str]) -> list[bool]:
        """For each file path, whether the backend definitely says it does not exist (one stat each,
        or the scheme's cheaper way: on file:// without a thread hand-off or fsspec)."""
        def missing(p: str) -> bool:
            try:
                self.stat(p)
                return False
            except NotFound:
                return True
        return self.driver.absent(self.full(""), paths, missing, self.counters.bump)

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
            found = self.driver.files_below(self._conns.current, top)
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
            return subfolders(lambda d: self.driver.ls(self._conns.current, d), top)
        return self.call(prefix, op)

    def clear_cache(self) -> None:
        fs = self._conns.shared
        if fs is not None and hasattr(fs, "invalidate_cache"):
            fs.invalidate_cache()


_MAX_DELAY = 30.0


def open_backend(url: str, storage_options: dict[str, Any] | None = None, **kw: Any) -> Backend:
    return Backend(url, storage_options, **kw)
