"""The storage boundary: the only module that opens fsspec filesystems (its helpers
streams.py -- reading streams, the min_rate cut, S3 ranged reads -- and staging.py -- batched
durable writes -- work on what it hands them).

A `Backend` is a narrow interface over one fsspec filesystem rooted at a URL: read,
open_read, write (atomic: no reader ever sees a partial file), create_exclusive, stat,
list, delete. Foreign exceptions are translated here, by one table (translate.py), into
regen errors; only a definite "no such file" ever means "missing" (fsspec's exists() and
isfile() are never used: they answer False on any error). Transient failures are retried
with exponential backoff and jitter, honouring Retry-After. Counters record every request
so tests and reports can prove how light a run was on the server.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import random
import shutil
import stat as stat_mod
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any, Callable, TypeVar
from urllib.parse import urlsplit

from .errors import (InvalidInput, InvalidURL, NotFound, StoreAccessDenied, StoreError, StoreExists, StoreReadOnly,
                     StoreUnreachable)
from .staging import TEMP_PREFIX as _TEMP_PREFIX
from .staging import StagedWrites
from .streams import RateGuard, _CountingReader, _RangeReader, _s3_range
from .translate import _NAMED, _chain, _ntstatus_of, _status_of, is_missing, translate  # noqa: F401 - re-exported

log = logging.getLogger("regen.store.backend")
T = TypeVar("T")

SCHEMES = ("file", "memory", "s3", "smb", "sftp", "http", "https")
_READ_ONLY = ("http", "https")
# single PUT is atomic on these: no temp name + rename needed
_ATOMIC_PUT = ("s3", "memory")
DEFAULT_TIMEOUT = 30.0  # seconds to connect, and of silence while reading, before a server counts as dead
# a transfer averaging less than this (bytes/s) over `timeout` seconds is cut: a server trickling
# a byte now and then never trips the idle timeout, yet would hold a run for days (curl's
# --speed-limit/--speed-time); 0 turns the check off
DEFAULT_MIN_RATE = 1024.0
# storage options regen consumes itself (mapped onto each library's own settings)
_OWN_OPTIONS = ("timeout", "min_rate", "known_hosts")


@dataclass(frozen=True, slots=True)
class Stat:
    size: int
    mtime: float | None


@dataclass(slots=True)
class Counters:
    """Requests made through this backend (one per logical call, retries counted too)."""

    reads: int = 0
    writes: int = 0
    lists: int = 0
    stats: int = 0
    deletes: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    retries: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def bump(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def as_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in ("reads", "writes", "lists", "stats", "deletes", "bytes_read",
                                               "bytes_written", "retries")}


@dataclass(frozen=True, slots=True)
class Capabilities:
    read_only: bool
    atomic_put: bool
    conditional_create: bool
    listable: bool = True


def parse_url(url: str) -> tuple[str, str]:
    """Return (scheme, url) with a plain path normalised to file://; raise InvalidURL otherwise."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidURL("no store URL given", url=url, hint="pass --store URL or set REGEN_STORE")
    url = url.strip()
    if "://" not in url:
        if url.startswith("/") or url.startswith("."):
            return "file", "file://" + os.path.abspath(url)
        raise InvalidURL(f"store URL {url!r} has no scheme", url=url)
    scheme = url.split("://", 1)[0].lower()
    if scheme not in SCHEMES:
        raise InvalidURL(f"store URL {url!r} has unsupported scheme {scheme!r}", url=url)
    parts = urlsplit(url)
    if scheme in ("s3", "smb", "sftp", "http", "https") and not parts.netloc:
        raise InvalidURL(f"store URL {url!r} lacks a host or bucket", url=url)
    if scheme == "smb" and len([p for p in parts.path.split("/") if p]) < 1:
        raise InvalidURL(f"store URL {url!r} lacks a share name (smb://host/share/path)", url=url)
    if scheme == "file" and not parts.path.startswith("/"):
        raise InvalidURL(f"store URL {url!r} must be an absolute path (file:///srv/regen)", url=url)
    return scheme, url


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
        self.options = dict(storage_options or {})  # as given (regen's own options included)
        self.timeout = _positive_seconds(self.options.get("timeout", DEFAULT_TIMEOUT), self.url)
        self.min_rate = _min_rate(self.options.get("min_rate", DEFAULT_MIN_RATE), self.url)
        self.known_hosts: str | None = self.options.get("known_hosts")
        if self.known_hosts is not None and self.scheme != "sftp":
            raise InvalidInput(f"storage option known_hosts applies to sftp:// stores, not {self.url}",
                               hint="remove known_hosts from the storage options")
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        self.counters = Counters()
        self.capabilities = Capabilities(
            read_only=self.scheme in _READ_ONLY,
            atomic_put=self.scheme in _ATOMIC_PUT,
            conditional_create=self.scheme not in _READ_ONLY,
            listable=self.scheme not in _READ_ONLY,
        )
        self._fs: Any = None
        self._root: str | None = None
        self._fs_lock = threading.Lock()
        self._pooled = self.scheme == "sftp"
        self._idle: list[Any] = []
        self._tls = threading.local()

    # -- plumbing ---------------------------------------------------------------------------
    def _fs_options(self) -> dict[str, Any]:
        """Storage options for fsspec, with regen's defaults: timeouts, no listing cache, one retry loop."""
        opts = {k: v for k, v in self.options.items() if k not in _OWN_OPTIONS}
        t = self.timeout
        if self.scheme == "s3":
            opts.setdefault("skip_instance_cache", True)
            opts.setdefault("use_listings_cache", False)  # a cached listing would make has() lie
            cfg = dict(opts.get("config_kwargs") or {})
            cfg.setdefault("connect_timeout", t)
            cfg.setdefault("read_timeout", t)
            cfg.setdefault("retries", {"total_max_attempts": 1})  # retried here, with counters
            opts["config_kwargs"] = cfg
        elif self.scheme in ("http", "https"):
            opts.setdefault("skip_instance_cache", True)
            opts.setdefault("use_listings_cache", False)
            client = dict(opts.get("client_kwargs") or {})
            if "timeout" not in client:
                import aiohttp

                client["timeout"] = aiohttp.ClientTimeout(total=None, sock_connect=t, sock_read=t)
            opts["client_kwargs"] = client
        elif self.scheme == "smb":
            opts.setdefault("skip_instance_cache", True)
            opts.setdefault("timeout", t)
            opts.setdefault("register_session_retries", 0)  # retried here
        elif self.scheme == "sftp":
            opts["skip_instance_cache"] = True  # the pool owns its connections
            for key in ("timeout", "banner_timeout", "auth_timeout", "channel_timeout"):
                opts.setdefault(key, t)
            if self.known_hosts is not None:
                opts["host_key_policy"] = _known_hosts_policy(self.known_hosts)
        return opts

    def _make_fs(self) -> Any:
        import fsspec.core  # (imported on first use: reads of a file:// store do without it)

        try:
            fs, _ = fsspec.core.url_to_fs(self.url, **self._fs_options())
        except ImportError as exc:
            hint = {"s3": "pip install 'regen[s3]'", "smb": "pip install 'regen[smb]'",
                    "sftp": "pip install 'regen[sftp]'"}.get(self.scheme, "install the fsspec backend")
            raise InvalidURL(f"cannot open store {self.url}: {exc}", url=self.url, hint=hint) from exc
        except TypeError as exc:
            raise InvalidURL(f"cannot open store {self.url}: bad storage option: {exc}", url=self.url,
                             hint=f"check the storage options for {self.scheme}:// stores") from exc
        except ValueError as exc:
            if any(isinstance(e, OSError) for e in _chain(exc)):  # smbprotocol: connection failures
                raise translate(exc, self.url, "") from exc
            raise InvalidURL(f"cannot open store {self.url}: {exc}", url=self.url,
                             hint=f"check the URL and storage options for {self.scheme}:// stores") from exc
        except Exception as exc:  # noqa: BLE001 - translated
            raise translate(exc, self.url, "") from exc
        if self.scheme == "s3":
            fs.retries = 1  # s3fs's own retry loop off: ours counts, backs off and honours Retry-After
        elif self.scheme == "sftp":
            fs.ftp.get_channel().settimeout(self.timeout)  # a silent server raises instead of hanging
        return fs

    @property
    def fs(self) -> Any:
        """The fsspec filesystem (for sftp: the connection this thread borrowed for the operation)."""
        leased = getattr(self._tls, "fs", None)
        if leased is not None:
            return leased
        if self._fs is None:
            with self._fs_lock:
                if self._fs is None:
                    self._fs = self._make_fs()
        return self._fs

    @property
    def root(self) -> str:
        """The store's root as the filesystem names it (found without connecting)."""
        if self._root is None:
            if self.scheme in ("http", "https"):
                self._root = self.url
            elif self.scheme == "file":  # as fsspec's LocalFileSystem names it, without importing fsspec
                self._root = os.path.abspath(self.url[len("file://"):]).rstrip("/") or "/"
            else:
                import fsspec

                try:
                    cls = fsspec.get_filesystem_class(self.scheme)
                except ImportError as exc:
                    raise InvalidURL(f"cannot open store {self.url}: {exc}", url=self.url,
                                     hint=f"pip install 'regen[{self.scheme}]'") from exc
                self._root = str(cls._strip_protocol(self.url)).rstrip("/")
        return self._root

    def full(self, path: str) -> str:
        return f"{self.root}/{path}" if path else self.root

    def _rel(self, name: str) -> str | None:
        root = self.root.strip("/")
        q = name.strip("/")
        return q[len(root) + 1:] if q.startswith(root + "/") else None

    @contextmanager
    def _leased(self) -> Iterator[None]:
        """For pooled schemes, give this thread its own connection for the operation."""
        if not self._pooled or getattr(self._tls, "fs", None) is not None:
            yield
            return
        fs = self._acquire()
        self._tls.fs = fs
        try:
            yield
        finally:
            if getattr(self._tls, "fs", None) is fs:  # not handed over to a stream (_detach)
                self._tls.fs = None
                self._release(fs)

    def _acquire(self) -> Any:
        with self._fs_lock:
            if self._idle:
                return self._idle.pop()
        return self._make_fs()

    def _release(self, fs: Any) -> None:
        if _alive(fs):
            with self._fs_lock:
                if len(self._idle) < _POOL_IDLE:
                    self._idle.append(fs)
                    return
        _close_fs(fs)

    def _detach(self) -> Any:
        """Hand this thread's borrowed connection to a stream, which releases it when closed."""
        fs = getattr(self._tls, "fs", None)
        self._tls.fs = None
        return fs

    def close(self) -> None:
        """Close pooled connections (the backend stays usable: it reconnects on demand)."""
        with self._fs_lock:
            idle, self._idle = self._idle, []
            shared, self._fs = (self._fs, None) if self._pooled else (None, self._fs)
        for fs in idle + ([shared] if shared is not None else []):
            _close_fs(fs)

    def _call(self, path: str, op: Callable[[], T]) -> T:
        attempt = 0
        while True:
            try:
                with self._leased():
                    return op()
            except BaseException as exc:  # noqa: BLE001 - translated and re-raised
                if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
                    raise
                err = translate(exc, self.url, path)
                if not isinstance(err, StoreUnreachable) or attempt >= self.retries:
                    if err is exc:
                        raise
                    raise err from exc
                delay = getattr(err, "retry_after", None)
                if delay is None:
                    delay = self.backoff * (2**attempt) * (0.5 + random.random())
                log.warning("retrying %s after %.2fs: %s", path or self.url, delay, err)
                self.counters.bump("retries")
                if self.scheme == "smb":
                    self._fs = None  # reconnect: re-register the session with its credentials
                self._sleep(min(delay, _MAX_DELAY))
                attempt += 1

    def _check_writable(self, path: str) -> None:
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
        return self._call(path, op)

    def _read_full(self, full: str, max_bytes: int | None) -> bytes:
        if self.scheme == "file":  # plain reads: a client's no-change run never imports fsspec
            with open(full, "rb") as fp:
                return fp.read() if max_bytes is None else fp.read(max_bytes + 1)
        fs = self.fs
        if self.scheme == "s3":
            return _s3_range(fs, full, 0, None if max_bytes is None else max_bytes + 1)
        if max_bytes is None and self.scheme not in ("smb",):
            return bytes(fs.cat_file(full))
        with self._open_raw(full) as fp:
            if max_bytes is None:
                return bytes(fp.read())
            # a streamed read (http) returns what has arrived so far: read until the limit or the end
            parts: list[bytes] = []
            want = max_bytes + 1
            guard = self.rate_guard(full)
            while want > 0:
                chunk = guard.read(fp, want)
                if not chunk:
                    break
                parts.append(bytes(chunk))
                want -= len(chunk)
            return b"".join(parts)

    def _open_raw(self, full: str) -> Any:
        if self.scheme == "file":
            return open(full, "rb")
        fs = self.fs
        if self.scheme == "s3":
            return _RangeReader(fs, full, _S3_CHUNK, lambda: self.counters.bump("reads"))
        if self.scheme in ("http", "https"):
            # one streaming GET: block_size=0 streams, and a given size spares fsspec's HEAD
            return fs.open(full, "rb", block_size=0, size=1)
        if self.scheme == "smb":
            # share read+delete: other clients may read it, and the publisher may replace it, meanwhile
            return fs.open(full, "rb", share_access="rd")
        if self.scheme == "memory":
            return io.BytesIO(fs.cat_file(full))  # memory's open() shares one position among readers
        return fs.open(full, "rb")

    @contextmanager
    def open_read(self, path: str) -> Iterator[IO[bytes]]:
        """A stream of `path`'s content (one GET on http and for S3 objects up to 8 MiB)."""
        def op() -> tuple[Any, Any]:
            self.counters.bump("reads")
            fp = self._open_raw(self.full(path))
            return fp, (self._detach() if self._pooled else None)
        fp, owner = self._call(path, op)
        try:
            yield _CountingReader(fp, self.counters, self.url, path, self.rate_guard(path))  # type: ignore[misc]
        finally:
            try:
                fp.close()
            except Exception as exc:  # noqa: BLE001 - the data was already read or its error raised
                log.debug("closing %s: %s", path, exc)
            if owner is not None:
                self._release(owner)

    def rate_guard(self, path: str) -> RateGuard:
        return RateGuard(self.min_rate, self.timeout, self.url, path)

    # -- writing ------------------------------------------------------------------------------
    def write(self, path: str, data: bytes) -> None:
        """Atomically create or replace `path`: readers see the old or the new content, never a part."""
        self._check_writable(path)
        def op() -> None:
            self.counters.bump("writes")
            self._write_atomic(path, lambda fp: fp.write(data))
            self.counters.bump("bytes_written", len(data))
        self._call(path, op)

    def write_from(self, path: str, src: IO[bytes]) -> None:
        """Atomically write `path` from a seekable local stream (rewound on retry)."""
        self._check_writable(path)
        def op() -> None:
            self.counters.bump("writes")
            src.seek(0)
            self._write_atomic(path, lambda fp: shutil.copyfileobj(src, fp, 1 << 20))
            self.counters.bump("bytes_written", src.tell())
        self._call(path, op)

    def staged(self) -> StagedWrites:
        """A batch of atomic writes made durable together (see StagedWrites); use as a context manager."""
        return StagedWrites(self)

    def _write_atomic(self, path: str, fill: Callable[[IO[bytes]], object]) -> None:
        full = self.full(path)
        if self.capabilities.atomic_put:
            with self.fs.open(full, "wb") as fp:
                fill(fp)
            return
        tmp = self._write_temp(full, fill)
        try:
            self._replace(tmp, full)
        except BaseException:
            self._discard(tmp)
            raise

    def _write_temp(self, full: str, fill: Callable[[IO[bytes]], object]) -> str:
        """Write a new temp file next to `full` (creating the folders on first need); return its name."""
        parent = full.rsplit("/", 1)[0]
        tmp = f"{parent}/{_TEMP_PREFIX}{uuid.uuid4().hex}"
        for attempt in (0, 1):
            try:
                with self.fs.open(tmp, "wb") as fp:
                    fill(fp)
                    if self.scheme == "file":
                        fp.flush()
                        os.fsync(fp.fileno())
                return tmp
            except BaseException as exc:
                if attempt or not is_missing(exc):
                    self._discard(tmp)
                    raise
            self.fs.makedirs(parent, exist_ok=True)  # folders exist after the first write: one try saved
        raise AssertionError("unreachable")

    def _discard(self, tmp: str) -> None:
        try:
            self.fs.rm_file(tmp)
        except Exception:  # noqa: BLE001 - best effort cleanup of our own temp file
            pass

    def _replace(self, src: str, dst: str) -> None:
        """Rename src over dst atomically (readers see old or new dst)."""
        fs = self.fs
        if self.scheme == "file":
            os.replace(src, dst)
        elif self.scheme == "smb":
            import smbclient  # type: ignore[import-untyped]

            # SMB refuses to rename over a file another client has open (ACCESS_DENIED or
            # SHARING_VIOLATION, even when it shares delete access). Only small files are ever
            # replaced (refs, overlays, latest reports) and readers hold them briefly: try again.
            for attempt in range(_SMB_REPLACE_TRIES):
                try:
                    smbclient.replace(_unc(fs, src), _unc(fs, dst), port=fs._port)
                    return
                except OSError as exc:
                    if _ntstatus_of(exc) not in (0xC0000022, 0xC0000043):
                        raise
                    if attempt + 1 == _SMB_REPLACE_TRIES:
                        raise StoreAccessDenied(
                            f"the server refused to replace {self.url}/{self._rel(dst)}: another client keeps it "
                            f"open, or this account may not replace it", url=self.url, path=self._rel(dst) or "",
                            hint="retry later; check the account's delete right on that folder") from exc
                    self._sleep(min(1.0, 0.02 * 2**attempt) * (0.5 + random.random()))
        else:  # sftp: posix-rename@openssh.com replaces atomically
            fs.ftp.posix_rename(src, dst)

    def _link_new(self, src: str, dst: str) -> None:
        """Give complete file src the name dst only if dst does not exist (FileExistsError otherwise)."""
        fs = self.fs
        if self.scheme == "file":
            try:
                os.link(src, dst)
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS):
                    raise
                _exclusive_copy(src, dst)  # no hard links here: O_EXCL create (a reader may see it growing)
            os.unlink(src)
        elif self.scheme == "smb":
            import smbclient

            smbclient.rename(_unc(fs, src), _unc(fs, dst), port=fs._port)  # ReplaceIfExists=False
        else:  # sftp: plain SSH_FXP_RENAME refuses an existing target (OpenSSH: link + unlink)
            try:
                fs.ftp.rename(src, dst)
            except OSError as exc:
                if is_missing(exc) or exc.errno is not None:
                    raise
                try:
                    fs.ftp.stat(dst)
                except OSError:
                    raise exc from None
                raise FileExistsError(errno.EEXIST, "already exists", dst) from None

    def create_exclusive(self, path: str, data: bytes) -> None:
        """Create `path` with `data` only if it does not exist; StoreExists otherwise (never overwrites).

        The content appears at once and complete (a lock or a record is never seen half-written).
        """
        self._check_writable(path)
        full = self.full(path)
        attempts = 0

        def op() -> None:
            nonlocal attempts
            attempts += 1
            self.counters.bump("writes")
            fs = self.fs
            if self.scheme == "s3":
                bucket, key, _ = fs.split_path(full)
                fs.call_s3("put_object", Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")
            elif self.scheme == "memory":
                with fs.open(full, "xb") as fp:
                    fp.write(data)
            else:
                tmp = self._write_temp(full, lambda fp: fp.write(data))
                try:
                    self._link_new(tmp, full)
                except BaseException:
                    self._discard(tmp)
                    raise
            self.counters.bump("bytes_written", len(data))
        try:
            self._call(path, op)
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
        self._check_writable(path)
        def op() -> None:
            self.counters.bump("deletes")
            self.fs.rm_file(self.full(path))
        self._call(path, op)

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
        return self._call(path, op)

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
            if self.scheme == "s3":
                found = [p for p in self.fs.find(top) if not p.endswith("/")]  # one paginated LIST
            else:
                found = self._walk_files(top)
            out = []
            for p in found:
                rel = self._rel(p)
                if rel and not rel.rsplit("/", 1)[-1].startswith(_TEMP_PREFIX):
                    out.append(rel)
            return sorted(out)
        return self._call(prefix, op)

    def _walk_files(self, top: str) -> list[str]:
        out: list[str] = []
        stack = [top]
        while stack:
            d = stack.pop()
            try:
                entries = self._ls(d)
            except Exception as exc:  # noqa: BLE001 - a vanished folder is empty; anything else is raised
                if is_missing(exc):
                    continue
                raise
            for name, is_dir in entries:
                (stack if is_dir else out).append(name)
        return out

    def _ls(self, d: str) -> list[tuple[str, bool]]:
        """(full name, is a folder) of the entries of folder `d`, in one request where possible."""
        fs = self.fs
        if self.scheme == "smb":
            import smbclient

            # scandir gets names and types in one query; fsspec's ls would stat every entry
            return [(f"{d}/{e.name}", e.is_dir()) for e in smbclient.scandir(_unc(fs, d), port=fs._port)]
        return [(e["name"].rstrip("/"), e.get("type") == "directory") for e in fs.ls(d, detail=True)]

    def list_dirs(self, prefix: str) -> list[str]:
        """Names of the direct subfolders of `prefix` (on S3: the prefixes that hold files)."""
        self._check_listable(prefix)
        def op() -> list[str]:
            self.counters.bump("lists")
            try:
                entries = self._ls(self.full(prefix))
            except Exception as exc:  # noqa: BLE001 - translated below unless it means "no such folder"
                if is_missing(exc):
                    return []
                raise
            return sorted(name.rsplit("/", 1)[-1] for name, is_dir in entries if is_dir)
        return self._call(prefix, op)

    def clear_cache(self) -> None:
        fs = self._fs
        if fs is not None and hasattr(fs, "invalidate_cache"):
            fs.invalidate_cache()


_SMB_REPLACE_TRIES = 10  # about 6 s of waiting for readers of a replaced file
_POOL_IDLE = 16
_MAX_DELAY = 30.0
_S3_CHUNK = 8 << 20


def _min_rate(value: Any, url: str) -> float:
    try:
        rate = float(value)
    except (TypeError, ValueError):
        rate = -1.0
    if not 0 <= rate < float("inf"):
        raise InvalidInput(f"storage option min_rate={value!r} for {url} is not a number of bytes per second",
                           hint="set min_rate to the slowest acceptable transfer in bytes/s, e.g. 1024, or 0 for none")
    return rate


def _positive_seconds(value: Any, url: str) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if not seconds > 0:
        raise InvalidInput(f"storage option timeout={value!r} for {url} is not a positive number of seconds",
                           hint="set timeout to the seconds to wait for the server, e.g. 30")
    return seconds


def _timestamp(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    return float(value)


def _unc(fs: Any, path: str) -> str:
    """\\\\host\\share\\path for smbclient, from fsspec's /share/path."""
    return "\\\\" + fs.host + path.replace("/", "\\")


def _alive(fs: Any) -> bool:
    client = getattr(fs, "client", None)  # sftp: paramiko SSHClient
    transport = client.get_transport() if client is not None else None
    return transport is not None and transport.is_active()


def _close_fs(fs: Any) -> None:
    for obj in (getattr(fs, "ftp", None), getattr(fs, "client", None)):
        try:
            if obj is not None:
                obj.close()
        except Exception:  # noqa: BLE001 - closing a dead connection
            pass


def _exclusive_copy(src: str, dst: str) -> None:
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
        shutil.copyfileobj(inp, out)
        out.flush()
        os.fsync(out.fileno())


def _known_hosts_policy(path: str) -> Any:
    """A paramiko policy accepting a server only if its key is in the OpenSSH known_hosts file `path`."""
    import paramiko

    class UnknownHostKey(paramiko.SSHException):
        pass

    class KnownHostsOnly(paramiko.MissingHostKeyPolicy):
        def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
            try:
                known = paramiko.HostKeys(path)
            except (OSError, paramiko.SSHException) as exc:
                raise UnknownHostKey(f"cannot read known_hosts file {path}: {exc}") from None
            if known.check(hostname, key):
                return
            listed = known.lookup(hostname)
            if listed is not None and key.get_name() in listed:
                raise paramiko.BadHostKeyException(hostname, key, listed[key.get_name()])
            raise UnknownHostKey(f"the {key.get_name()} host key of {hostname} is not in {path}")

    return KnownHostsOnly()


def open_backend(url: str, storage_options: dict[str, Any] | None = None, **kw: Any) -> Backend:
    return Backend(url, storage_options, **kw)
