"""s3:// -- one PUT is atomic; an exclusive create is a PUT with If-None-Match: *; reads are (ranged)
GETs, never HEAD + GET, streamed in 8 MiB ranges; a listing is one paginated LIST, never cached
(a cached listing would make has() lie); s3fs's and botocore's own retries are off (the backend
retries, with counters).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..about import user_agent
from ..atomic import put_whole
from ..listing import fs_ls
from ..options import accepted, check_botocore_config, check_options
from ..translate import _status_of
from .base import FS, Fill, Scheme, Stat, timestamp

if TYPE_CHECKING:
    from ..streams import RateGuard

_CHUNK = 8 << 20  # S3 objects are streamed by ranged GETs of this size: one GET up to 8 MiB


class S3Scheme(Scheme):
    names = ("s3",)
    read_only = False
    atomic_put = True
    listable = True
    pooled = False
    reconnect_on_retry = False
    needs_host = True
    local = False
    takes_known_hosts = False
    install_hint = "pip install 'regen[s3]'"

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        def names() -> dict[str, Any]:
            import fsspec
            from aiobotocore.session import AioSession  # s3fs passes its leftover options to AioSession

            cls = fsspec.get_filesystem_class(self.protocol)
            return accepted((cls.__init__, ()), (AioSession.__init__, ()))
        return check_options(self.protocol, options, names, {"config_kwargs": check_botocore_config})

    def fs_options(self, opts: dict[str, Any], timeout: float, known_hosts: str | None) -> dict[str, Any]:
        opts.setdefault("skip_instance_cache", True)
        opts.setdefault("use_listings_cache", False)  # a cached listing would make has() lie
        cfg = dict(opts.get("config_kwargs") or {})
        cfg.setdefault("connect_timeout", timeout)
        cfg.setdefault("read_timeout", timeout)
        cfg.setdefault("retries", {"total_max_attempts": 1})  # retried here, with counters
        cfg.setdefault("user_agent_extra", user_agent())  # servers' logs tell regen's clients apart
        opts["config_kwargs"] = cfg
        return opts

    def after_open(self, fs: Any, timeout: float) -> None:
        fs.retries = 1  # s3fs's own retry loop off: ours counts, backs off and honours Retry-After

    def open_stream(self, fs: FS, full: str, on_request: Callable[[], None]) -> RangeReader:
        return RangeReader(fs(), full, _CHUNK, on_request)

    def read_full(self, fs: FS, full: str, max_bytes: int | None, guard: RateGuard,
                  on_request: Callable[[], None]) -> bytes:
        return s3_range(fs(), full, 0, None if max_bytes is None else max_bytes + 1)

    def read_range(self, fs: FS, full: str, start: int, length: int) -> bytes:
        if length <= 0:
            return b""
        return s3_range(fs(), full, start, start + length)

    def stat(self, fs: FS, full: str, path: str) -> Stat:
        s3 = fs()
        bucket, key, _ = s3.split_path(full)
        head = s3.call_s3("head_object", Bucket=bucket, Key=key)
        return Stat(int(head["ContentLength"]), timestamp(head.get("LastModified")))

    def key_listed(self, fs: FS, full: str) -> bool | None:
        """One ListObjectsV2 with the exact key as prefix. S3 answers a GET of a missing key with
        403, not 404, to a caller that may not list the bucket unconditionally; a client granted
        listing only of the prefixes it may miss (contrib/backends/s3-client-policy.json) tells
        "missing" from "denied" this way: a listing that answered is the server saying so (R4)."""
        s3 = fs()
        bucket, key, _ = s3.split_path(full)
        found = s3.call_s3("list_objects_v2", Bucket=bucket, Prefix=key, MaxKeys=1).get("Contents", [])
        return any(o.get("Key") == key for o in found)

    def write_atomic(self, fs: FS, full: str, fill: Fill, *, url: str, rel: str | None,
                     sleep: Callable[[float], None]) -> None:
        put_whole(fs(), full, fill)

    def create_new(self, fs: FS, full: str, data: bytes) -> None:
        s3 = fs()
        bucket, key, _ = s3.split_path(full)
        s3.call_s3("put_object", Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")

    def ls(self, fs: FS, d: str) -> list[tuple[str, bool]]:
        return fs_ls(fs(), d)

    def files_below(self, fs: FS, top: str) -> list[str]:
        return [p for p in fs().find(top) if not p.endswith("/")]  # one paginated LIST


def s3_range(fs: Any, full: str, start: int, end: int | None) -> bytes:
    """One GET of bytes [start, end) (to the end if None); b"" past the end or for an empty object."""
    try:
        return bytes(fs.cat_file(full, start=start, end=end))
    except OSError as exc:
        if _status_of(exc) == 416:  # InvalidRange: nothing at or after `start`
            return b""
        raise


class RangeReader:
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

    def __enter__(self) -> RangeReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["RangeReader", "S3Scheme", "s3_range"]
