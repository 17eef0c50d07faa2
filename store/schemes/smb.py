"""smb:// -- writes are a temp file + replace (retried while another client holds the file open);
an exclusive create is a rename without replace; readers share read and delete access, so many
clients can read while the publisher replaces; a folder is read by one scandir (fsspec's ls would
stat every entry); a retry reconnects (re-registers the session with its credentials).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..atomic import via_temp
from ..errors import InvalidURL, StoreAccessDenied
from ..listing import walk_files
from ..options import accepted, check_options
from ..streams import read_upto, seek_read
from ..translate import _ntstatus_of
from .base import FS, Fill, Scheme, Stat, info_stat

if TYPE_CHECKING:
    from urllib.parse import SplitResult

    from ..streams import RateGuard

_REPLACE_TRIES = 10  # about 6 s of waiting for readers of a replaced file
# share read+delete: other clients may read a file, and the publisher may replace it, meanwhile
_SHARED = {"share_access": "rd"}


class SmbScheme(Scheme):
    names = ("smb",)
    read_only = False
    atomic_put = False
    listable = True
    pooled = False
    reconnect_on_retry = True
    needs_host = True
    local = False
    takes_known_hosts = False
    install_hint = "pip install 'regen[smb]'"

    def check_url(self, url: str, parts: SplitResult) -> None:
        super().check_url(url, parts)
        if len([p for p in parts.path.split("/") if p]) < 1:
            raise InvalidURL(f"store URL {url!r} lacks a share name (smb://host/share/path)", url=url)

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        def names() -> dict[str, Any]:
            import fsspec

            return accepted((fsspec.get_filesystem_class(self.protocol).__init__, ("host",)))
        return check_options(self.protocol, options, names)

    def fs_options(self, opts: dict[str, Any], timeout: float, known_hosts: str | None) -> dict[str, Any]:
        opts.setdefault("skip_instance_cache", True)
        opts.setdefault("timeout", timeout)
        opts.setdefault("register_session_retries", 0)  # retried here
        return opts

    def after_open(self, fs: Any, timeout: float) -> None:
        pass  # nothing fsspec leaves unset

    def open_stream(self, fs: FS, full: str, on_request: Callable[[], None]) -> Any:
        return fs().open(full, "rb", **_SHARED)

    def read_full(self, fs: FS, full: str, max_bytes: int | None, guard: RateGuard,
                  on_request: Callable[[], None]) -> bytes:
        with self.open_stream(fs, full, on_request) as fp:
            if max_bytes is None:
                return bytes(fp.read())
            return read_upto(fp, max_bytes + 1, guard)

    def read_range(self, fs: FS, full: str, start: int, length: int) -> bytes:
        return seek_read(fs(), full, start, length, **_SHARED)

    def stat(self, fs: FS, full: str, path: str) -> Stat:
        return info_stat(fs(), full, path)

    def write_atomic(self, fs: FS, full: str, fill: Fill, *, url: str, rel: str | None,
                     sleep: Callable[[float], None]) -> None:
        smb = fs()
        via_temp(smb, full, fill, lambda src, dst: _replace(smb, src, dst, url=url, rel=rel, sleep=sleep))

    def create_new(self, fs: FS, full: str, data: bytes) -> None:
        import smbclient

        smb = fs()
        via_temp(smb, full, lambda fp: fp.write(data),  # ReplaceIfExists=False
                 lambda src, dst: smbclient.rename(_unc(smb, src), _unc(smb, dst), port=smb._port))

    def ls(self, fs: FS, d: str) -> list[tuple[str, bool]]:
        import smbclient

        smb = fs()
        # scandir gets names and types in one query; fsspec's ls would stat every entry
        return [(f"{d}/{e.name}", e.is_dir()) for e in smbclient.scandir(_unc(smb, d), port=smb._port)]

    def files_below(self, fs: FS, top: str) -> list[str]:
        return walk_files(lambda d: self.ls(fs, d), top)


def _replace(fs: Any, src: str, dst: str, *, url: str, rel: str | None, sleep: Callable[[float], None]) -> None:
    """Rename src over dst atomically (readers see old or new dst)."""
    import smbclient

    # SMB refuses to rename over a file another client has open (ACCESS_DENIED or
    # SHARING_VIOLATION, even when it shares delete access). Only small files are ever
    # replaced (refs, overlays, latest reports) and readers hold them briefly: try again.
    for attempt in range(_REPLACE_TRIES):
        try:
            smbclient.replace(_unc(fs, src), _unc(fs, dst), port=fs._port)
            return
        except OSError as exc:
            if _ntstatus_of(exc) not in (0xC0000022, 0xC0000043):
                raise
            if attempt + 1 == _REPLACE_TRIES:
                raise StoreAccessDenied(
                    f"the server refused to replace {url}/{rel}: another client keeps it "
                    f"open, or this account may not replace it", url=url, path=rel or "",
                    hint="retry later; check the account's delete right on that folder") from exc
            sleep(min(1.0, 0.02 * 2**attempt) * (0.5 + random.random()))


def _unc(fs: Any, path: str) -> str:
    """\\\\host\\share\\path for smbclient, from fsspec's /share/path."""
    return "\\\\" + str(fs.host) + path.replace("/", "\\")


__all__ = ["SmbScheme"]
