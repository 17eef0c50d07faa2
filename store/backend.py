"""The storage boundary: the only module that talks to fsspec.

A `Backend` is a narrow interface over one fsspec filesystem rooted at a URL: read,
open_read, write (atomic: no reader ever sees a partial file), create_exclusive, stat,
list, delete. Foreign exceptions are translated here, by one table, into regen errors;
only FileNotFoundError ever means "missing" (fsspec's exists()/isfile() are never used:
they answer False on any error). Transient failures are retried with exponential
backoff and jitter. Counters record every request so tests and reports can prove how
light a run was on the server.
"""

from __future__ import annotations

import errno
import logging
import os
import random
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any, Callable, TypeVar
from urllib.parse import urlsplit

import fsspec

from .errors import (
    InvalidURL,
    NotFound,
    StoreAccessDenied,
    StoreError,
    StoreExists,
    StoreReadOnly,
    StoreUnreachable,
)

log = logging.getLogger("regen.store.backend")
T = TypeVar("T")

SCHEMES = ("file", "memory", "s3", "smb", "sftp", "http", "https")
_READ_ONLY = ("http", "https")
# single PUT is atomic on these: no temp name + rename needed
_ATOMIC_PUT = ("s3", "memory")
_TRANSIENT_ERRNOS = {errno.EIO, errno.EBUSY, errno.ECONNRESET, errno.ECONNREFUSED, errno.ETIMEDOUT, errno.EPIPE,
                     errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ECONNABORTED, errno.EAGAIN}
# Foreign exception class names (optional libraries are not imported here) -> regen error.
_NAMED: dict[str, type[StoreError]] = {
    "ClientConnectorError": StoreUnreachable,  # aiohttp
    "ServerDisconnectedError": StoreUnreachable,
    "ServerTimeoutError": StoreUnreachable,
    "ClientPayloadError": StoreUnreachable,
    "ClientOSError": StoreUnreachable,
    "EndpointConnectionError": StoreUnreachable,  # botocore
    "ConnectTimeoutError": StoreUnreachable,
    "ReadTimeoutError": StoreUnreachable,
    "ConnectionClosedError": StoreUnreachable,
    "SSHException": StoreUnreachable,  # paramiko
    "NoValidConnectionsError": StoreUnreachable,
    "AuthenticationException": StoreAccessDenied,
    "SMBAuthenticationError": StoreAccessDenied,  # smbprotocol
    "SMBConnectionClosed": StoreUnreachable,
    "SMBException": StoreUnreachable,
    "NoCredentialsError": StoreAccessDenied,
    "InvalidAccessKeyId": StoreAccessDenied,
}


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


def _status_of(exc: BaseException) -> int | None:
    for attr in ("status", "status_code"):
        v = getattr(exc, attr, None)
        if isinstance(v, int):
            return v
    resp = getattr(exc, "response", None)
    if isinstance(resp, dict):
        code = resp.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if isinstance(code, int):
            return code
    return None


def translate(exc: BaseException, url: str, path: str) -> StoreError:
    """The one translation table from foreign exceptions to regen errors."""
    where = f"{url.rstrip('/')}/{path}" if path else url
    if isinstance(exc, StoreError):
        return exc
    if isinstance(exc, FileNotFoundError):
        return NotFound(f"{where} does not exist", url=url, path=path)
    if isinstance(exc, FileExistsError):
        return StoreExists(f"{where} already exists", url=url, path=path)
    if isinstance(exc, PermissionError):
        return StoreAccessDenied(f"access to {where} was denied", url=url, path=path)
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return StoreUnreachable(f"cannot reach {where}: {exc or type(exc).__name__}", url=url, path=path)
    status = _status_of(exc)
    if status is not None:
        if status == 404:
            return NotFound(f"{where} does not exist", url=url, path=path)
        if status in (401, 403):
            return StoreAccessDenied(f"access to {where} was denied (HTTP {status})", url=url, path=path)
        if status == 429 or status >= 500:
            err = StoreUnreachable(f"{where} answered HTTP {status}", url=url, path=path)
            err.retry_after = _retry_after(exc)  # type: ignore[attr-defined]
            return err
    for cls in type(exc).__mro__:
        mapped = _NAMED.get(cls.__name__)
        if mapped is not None:
            return mapped(f"{where}: {type(exc).__name__}: {exc}", url=url, path=path)
    if isinstance(exc, OSError):
        if exc.errno in (errno.EACCES, errno.EPERM):
            return StoreAccessDenied(f"access to {where} was denied", url=url, path=path)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return StoreError(f"no space left on the store at {where}", url=url, path=path,
                              hint="free space on the store or run 'regen gc'")
        if exc.errno in _TRANSIENT_ERRNOS or exc.errno is None:
            return StoreUnreachable(f"cannot access {where}: {exc}", url=url, path=path)
        return StoreError(f"cannot access {where}: {exc}", url=url, path=path)
    return StoreError(f"unexpected error at {where}: {type(exc).__name__}: {exc}", url=url, path=path)


def _retry_after(exc: BaseException) -> float | None:
    headers = getattr(exc, "headers", None)
    try:
        value = headers.get("Retry-After") if headers is not None else None
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


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
    """One fsspec filesystem rooted at `url`, with the narrow interface regen needs."""

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
        self.options = dict(storage_options or {})
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        self.counters = Counters()
        self.capabilities = Capabilities(
            read_only=self.scheme in _READ_ONLY,
            atomic_put=self.scheme in _ATOMIC_PUT,
            conditional_create=self.scheme in ("file", "memory", "s3", "sftp", "smb"),
        )
        self._fs: Any = None
        self._root = ""
        self._fs_lock = threading.Lock()

    # -- plumbing ---------------------------------------------------------------------------
    @property
    def fs(self) -> Any:
        """The fsspec filesystem, created on first use (constructors have no side effects)."""
        if self._fs is None:
            with self._fs_lock:
                if self._fs is None:
                    opts = dict(self.options)
                    if self.scheme in ("http", "https"):
                        opts.setdefault("skip_instance_cache", True)
                    try:
                        fs, root = fsspec.core.url_to_fs(self.url, **opts)
                    except (ImportError, ValueError, TypeError) as exc:
                        hint = {"s3": "pip install 'regen[s3]'", "smb": "pip install 'regen[smb]'",
                                "sftp": "pip install 'regen[sftp]'"}.get(self.scheme, "check the storage options")
                        raise InvalidURL(f"cannot open store {self.url}: {exc}", url=self.url, hint=hint) from exc
                    except Exception as exc:
                        raise translate(exc, self.url, "") from exc
                    self._root = root.rstrip("/") if self.scheme not in ("http", "https") else self.url
                    self._fs = fs
        return self._fs

    def full(self, path: str) -> str:
        _ = self.fs
        return f"{self._root}/{path}" if path else self._root

    def _call(self, path: str, op: Callable[[], T]) -> T:
        attempt = 0
        while True:
            try:
                return op()
            except BaseException as exc:  # noqa: BLE001 - translated and re-raised
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
                err = translate(exc, self.url, path)
                if not isinstance(err, StoreUnreachable) or attempt >= self.retries:
                    raise err from exc
                delay = getattr(err, "retry_after", None) or self.backoff * (2**attempt) * (0.5 + random.random())
                log.warning("retrying %s after %.2fs: %s", path, delay, err)
                self.counters.bump("retries")
                self._sleep(min(delay, 30.0))
                attempt += 1

    def _check_writable(self, path: str) -> None:
        if self.capabilities.read_only:
            raise StoreReadOnly(f"cannot write {path}: store {self.url} is read-only", url=self.url, path=path)

    # -- the interface --------------------------------------------------------------------------
    def read(self, path: str, max_bytes: int | None = None) -> bytes:
        """Whole content of `path`; NotFound only if the backend said it does not exist."""
        def op() -> bytes:
            self.counters.bump("reads")
            if max_bytes is None:
                data = self.fs.cat_file(self.full(path))
            else:
                with self.fs.open(self.full(path), "rb", **self._stream_kw()) as fp:
                    data = fp.read(max_bytes + 1)
            self.counters.bump("bytes_read", len(data))
            return bytes(data)
        return self._call(path, op)

    def _stream_kw(self) -> dict[str, Any]:
        # http: stream one GET, no HEAD, no range requests (python's http.server has none)
        return {"block_size": 0} if self.scheme in ("http", "https") else {}

    @contextmanager
    def open_read(self, path: str) -> Iterator[IO[bytes]]:
        def op() -> IO[bytes]:
            self.counters.bump("reads")
            return self.fs.open(self.full(path), "rb", **self._stream_kw())  # type: ignore[no-any-return]
        fp = self._call(path, op)
        try:
            yield _CountingReader(fp, self.counters, self.url, path)
        finally:
            fp.close()

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

    def _write_atomic(self, path: str, fill: Callable[[IO[bytes]], object]) -> None:
        full = self.full(path)
        parent = full.rsplit("/", 1)[0]
        if self.scheme not in ("s3", "memory", "http", "https"):
            self.fs.makedirs(parent, exist_ok=True)
        if self.capabilities.atomic_put:
            with self.fs.open(full, "wb") as fp:
                fill(fp)
            return
        tmp = f"{parent}/.tmp-{uuid.uuid4().hex}"
        try:
            with self.fs.open(tmp, "wb") as fp:
                fill(fp)
            self._replace(tmp, full)
        except BaseException:
            try:
                self.fs.rm_file(tmp)
            except Exception:  # noqa: BLE001 - best effort cleanup of our own temp file
                pass
            raise

    def _replace(self, src: str, dst: str) -> None:
        if self.scheme == "file":
            os.replace(src, dst)
        elif self.scheme == "smb":
            import smbclient  # type: ignore[import-untyped]
            from fsspec.implementations.smb import _as_unc_path

            fs = self.fs
            smbclient.replace(_as_unc_path(fs.host, src), _as_unc_path(fs.host, dst), port=fs._port)
        else:  # sftp: posix-rename@openssh.com replaces atomically
            self.fs.mv(src, dst)

    def create_exclusive(self, path: str, data: bytes) -> None:
        """Create `path` only if it does not exist; StoreExists otherwise (never overwrites)."""
        self._check_writable(path)
        full = self.full(path)
        def op() -> None:
            self.counters.bump("writes")
            parent = full.rsplit("/", 1)[0]
            if self.scheme == "s3":
                self.fs.pipe_file(full, data, mode="create")
                return
            if self.scheme != "memory":
                self.fs.makedirs(parent, exist_ok=True)
            if self.scheme == "file":
                fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                with os.fdopen(fd, "wb") as fp:
                    fp.write(data)
                    fp.flush()
                    os.fsync(fp.fileno())
                return
            with self.fs.open(full, "xb") as fp:
                fp.write(data)
        try:
            self._call(path, op)
        except StoreError as exc:
            cause = exc.__cause__
            if isinstance(exc, StoreExists) or (cause is not None and _status_of(cause) == 412):
                raise StoreExists(f"{self.url}/{path} already exists", url=self.url, path=path) from cause
            raise

    def stat(self, path: str) -> Stat:
        def op() -> Stat:
            self.counters.bump("stats")
            info = self.fs.info(self.full(path))
            if info.get("type") == "directory":
                raise FileNotFoundError(path)
            mtime = info.get("mtime") or info.get("LastModified") or info.get("time") or info.get("created")
            if hasattr(mtime, "timestamp"):
                mtime = mtime.timestamp()
            return Stat(int(info.get("size") or 0), float(mtime) if mtime is not None else None)
        return self._call(path, op)

    def list(self, prefix: str) -> list[str]:
        """Every file below `prefix`, as paths relative to the store root; [] if there is none."""
        def op() -> list[str]:
            self.counters.bump("lists")
            try:
                found = self.fs.find(self.full(prefix))
            except FileNotFoundError:
                return []
            root = self._root.strip("/")
            out = []
            for p in found:
                q = p.strip("/")
                if q.startswith(root + "/"):
                    out.append(q[len(root) + 1 :])
            return out
        return self._call(prefix, op)

    def list_dirs(self, prefix: str) -> list[str]:
        """Names of the direct subdirectories of `prefix`."""
        def op() -> list[str]:
            self.counters.bump("lists")
            try:
                entries = self.fs.ls(self.full(prefix), detail=True)
            except FileNotFoundError:
                return []
            return sorted(e["name"].rstrip("/").rsplit("/", 1)[-1] for e in entries if e.get("type") == "directory")
        return self._call(prefix, op)

    def delete(self, path: str) -> None:
        self._check_writable(path)
        def op() -> None:
            self.counters.bump("deletes")
            self.fs.rm_file(self.full(path))
        self._call(path, op)

    def clear_cache(self) -> None:
        fs = self._fs
        if fs is not None and hasattr(fs, "invalidate_cache"):
            fs.invalidate_cache()


class _CountingReader:
    """File wrapper that counts bytes and translates read errors."""

    def __init__(self, fp: IO[bytes], counters: Counters, url: str, path: str) -> None:
        self._fp = fp
        self._counters = counters
        self._url = url
        self._path = path

    def read(self, n: int = -1) -> bytes:
        try:
            data = self._fp.read(n)
        except Exception as exc:  # noqa: BLE001 - translated
            raise translate(exc, self._url, self._path) from exc
        self._counters.bump("bytes_read", len(data))
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._fp.close()


def open_backend(url: str, storage_options: dict[str, Any] | None = None, **kw: Any) -> Backend:
    return Backend(url, storage_options, **kw)
