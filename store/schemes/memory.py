"""memory:// -- fsspec's in-process filesystem, for tests: one open("wb") is atomic, an exclusive
create is open("xb"); every reader gets its own copy (memory's open() shares one position among
readers). Storage options are passed through unchecked.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..atomic import put_whole
from ..listing import fs_ls, walk_files
from ..streams import cat_range
from .base import FS, Fill, Scheme, Stat, cat_or_stream, info_stat

if TYPE_CHECKING:
    from ..streams import RateGuard


class MemoryScheme(Scheme):
    names = ("memory",)
    read_only = False
    atomic_put = True
    listable = True
    pooled = False
    reconnect_on_retry = False
    needs_host = False
    local = False
    takes_known_hosts = False
    install_hint = "install the fsspec backend"

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        return dict(options)

    def fs_options(self, opts: dict[str, Any], timeout: float, known_hosts: str | None) -> dict[str, Any]:
        return opts

    def after_open(self, fs: Any, timeout: float) -> None:
        pass  # nothing fsspec leaves unset

    def open_stream(self, fs: FS, full: str, on_request: Callable[[], None]) -> io.BytesIO:
        return io.BytesIO(fs().cat_file(full))

    def read_full(self, fs: FS, full: str, max_bytes: int | None, guard: RateGuard,
                  on_request: Callable[[], None]) -> bytes:
        return cat_or_stream(self, fs, full, max_bytes, guard, on_request)

    def read_range(self, fs: FS, full: str, start: int, length: int) -> bytes:
        return cat_range(fs(), full, start, length)

    def stat(self, fs: FS, full: str, path: str) -> Stat:
        return info_stat(fs(), full, path)

    def write_atomic(self, fs: FS, full: str, fill: Fill, *, url: str, rel: str | None,
                     sleep: Callable[[float], None]) -> None:
        put_whole(fs(), full, fill)

    def create_new(self, fs: FS, full: str, data: bytes) -> None:
        with fs().open(full, "xb") as fp:
            fp.write(data)

    def ls(self, fs: FS, d: str) -> list[tuple[str, bool]]:
        return fs_ls(fs(), d)

    def files_below(self, fs: FS, top: str) -> list[str]:
        return walk_files(lambda d: self.ls(fs, d), top)


__all__ = ["MemoryScheme"]
