"""http:// and https:// -- read-only client stores: every read is one GET (no HEAD, no LIST; a
stream is one streaming GET, a range one ranged GET); every write and every listing is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from ..about import user_agent
from ..errors import StoreReadOnly
from ..options import accepted, check_options
from ..streams import cat_range
from .base import FS, Fill, Scheme, Stat, cat_or_stream, info_stat

if TYPE_CHECKING:
    from ..streams import RateGuard


class HttpScheme(Scheme):
    names = ("http", "https")
    read_only = True
    atomic_put = False
    listable = False
    pooled = False
    reconnect_on_retry = False
    needs_host = True
    local = False
    takes_known_hosts = False
    install_hint = "install the fsspec backend"

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        def names() -> dict[str, Any]:
            import aiohttp  # HTTPFileSystem passes its leftover options to every request
            import fsspec

            cls = fsspec.get_filesystem_class(self.protocol)
            return accepted((cls.__init__, ("storage_options",)),
                            (aiohttp.ClientSession._request, ("method", "str_or_url")))
        return check_options(self.protocol, options, names)

    def fs_options(self, opts: dict[str, Any], timeout: float, known_hosts: str | None) -> dict[str, Any]:
        opts.setdefault("skip_instance_cache", True)
        opts.setdefault("use_listings_cache", False)
        client = dict(opts.get("client_kwargs") or {})
        client["headers"] = {"User-Agent": user_agent(), **dict(client.get("headers") or {})}
        if "timeout" not in client:
            import aiohttp

            client["timeout"] = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
        opts["client_kwargs"] = client
        return opts

    def after_open(self, fs: Any, timeout: float) -> None:
        pass  # nothing fsspec leaves unset

    def fs_root(self, url: str) -> str:
        return url

    def open_stream(self, fs: FS, full: str, on_request: Callable[[], None]) -> Any:
        # one streaming GET: block_size=0 streams, and a given size spares fsspec's HEAD
        return fs().open(full, "rb", block_size=0, size=1)

    def read_full(self, fs: FS, full: str, max_bytes: int | None, guard: RateGuard,
                  on_request: Callable[[], None]) -> bytes:
        return cat_or_stream(self, fs, full, max_bytes, guard, on_request)

    def read_range(self, fs: FS, full: str, start: int, length: int) -> bytes:
        return cat_range(fs(), full, start, length)

    def stat(self, fs: FS, full: str, path: str) -> Stat:
        return info_stat(fs(), full, path)

    # The backend refuses writes and listings before asking (Backend.check_writable, capabilities).
    def write_atomic(self, fs: FS, full: str, fill: Fill, *, url: str, rel: str | None,
                     sleep: Callable[[float], None]) -> None:
        _refuse(full)

    def create_new(self, fs: FS, full: str, data: bytes) -> None:
        _refuse(full)

    def ls(self, fs: FS, d: str) -> list[tuple[str, bool]]:
        _refuse(d)

    def files_below(self, fs: FS, top: str) -> list[str]:
        _refuse(top)


def _refuse(full: str) -> NoReturn:
    raise StoreReadOnly(f"cannot write or list {full}: http(s) stores are read-only", url=full, path="")


__all__ = ["HttpScheme"]
