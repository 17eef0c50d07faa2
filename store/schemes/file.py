"""file:// -- a local folder (or a mounted share). Reads and stats are plain system calls (a client's
no-change run never imports fsspec); writes are a temp file, fsync and rename; an exclusive create
is link(2), or an O_EXCL copy where the filesystem has no hard links.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat as stat_mod
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from ..atomic import via_temp
from ..errors import InvalidURL
from ..listing import fs_ls, walk_files
from ..options import accepted, check_options
from .base import FS, Fill, Scheme, Stat

if TYPE_CHECKING:
    from urllib.parse import SplitResult

    from ..streams import RateGuard


class FileScheme(Scheme):
    names = ("file",)
    read_only = False
    atomic_put = False
    listable = True
    pooled = False
    reconnect_on_retry = False
    needs_host = False
    local = True
    takes_known_hosts = False
    install_hint = "install the fsspec backend"

    def check_url(self, url: str, parts: SplitResult) -> None:
        if not parts.path.startswith("/"):
            raise InvalidURL(f"store URL {url!r} must be an absolute path (file:///srv/regen)", url=url)

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        return check_options(self.protocol, options, lambda: {**accepted(), "auto_mkdir": None})

    def fs_options(self, opts: dict[str, Any], timeout: float, known_hosts: str | None) -> dict[str, Any]:
        return opts

    def after_open(self, fs: Any, timeout: float) -> None:
        pass  # nothing fsspec leaves unset

    def fs_root(self, url: str) -> str:
        # as fsspec's LocalFileSystem names it, without importing fsspec
        return os.path.abspath(url[len("file://"):]).rstrip("/") or "/"

    def open_stream(self, fs: FS, full: str, on_request: Callable[[], None]) -> IO[bytes]:
        return open_local(full)

    def read_full(self, fs: FS, full: str, max_bytes: int | None, guard: RateGuard,
                  on_request: Callable[[], None]) -> bytes:
        with open_local(full) as fp:
            return fp.read() if max_bytes is None else fp.read(max_bytes + 1)

    def read_range(self, fs: FS, full: str, start: int, length: int) -> bytes:
        with open_local(full) as fp:
            fp.seek(start)
            return fp.read(length)

    def stat(self, fs: FS, full: str, path: str) -> Stat:
        s = os.stat(full)  # one stat(2), without fsspec's per-call overhead
        if stat_mod.S_ISDIR(s.st_mode):
            raise FileNotFoundError(errno.ENOENT, "is a folder", path)
        return Stat(s.st_size, s.st_mtime)

    def absent(self, root: str, paths: list[str], missing: Callable[[str], bool],
               bump: Callable[[str], None]) -> list[bool]:
        # the stats run here, without a thread hand-off or fsspec
        found: list[bool] = []
        for p in paths:
            bump("stats")
            try:
                s = os.stat(f"{root}/{p}")
            except (FileNotFoundError, NotADirectoryError):
                found.append(True)
                continue
            except OSError:  # anything else: the backend's stat, with retries and translation
                found.append(missing(p))
                continue
            found.append(stat_mod.S_ISDIR(s.st_mode))
        return found

    def write_atomic(self, fs: FS, full: str, fill: Fill, *, url: str, rel: str | None,
                     sleep: Callable[[float], None]) -> None:
        via_temp(fs(), full, fill, os.replace, durable=True)

    def create_new(self, fs: FS, full: str, data: bytes) -> None:
        via_temp(fs(), full, lambda fp: fp.write(data), _link_new, durable=True)

    def ls(self, fs: FS, d: str) -> list[tuple[str, bool]]:
        return fs_ls(fs(), d)

    def files_below(self, fs: FS, top: str) -> list[str]:
        return walk_files(lambda d: self.ls(fs, d), top)


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


def _link_new(src: str, dst: str) -> None:
    """Give complete file src the name dst only if dst does not exist (FileExistsError otherwise)."""
    try:
        os.link(src, dst)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS):
            raise
        _exclusive_copy(src, dst)  # no hard links here: O_EXCL create (a reader may see it growing)
    os.unlink(src)


def _exclusive_copy(src: str, dst: str) -> None:
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
        shutil.copyfileobj(inp, out)
        out.flush()
        os.fsync(out.fileno())


__all__ = ["FileScheme", "open_local"]
