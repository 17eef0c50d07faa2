"""sftp:// -- writes are a temp file + posix-rename (replaces atomically); an exclusive create is a
plain SFTP rename (never replaces); paramiko's SFTP client is not thread-safe, so each thread
borrows its own connection from a small pool (connections.py); the optional known_hosts storage
option accepts only servers whose key it lists.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..atomic import via_temp
from ..listing import fs_ls, walk_files
from ..options import accepted, check_options
from ..streams import seek_read
from ..translate import is_missing
from .base import FS, Fill, Scheme, Stat, cat_or_stream, info_stat

if TYPE_CHECKING:
    from ..streams import RateGuard


class SftpScheme(Scheme):
    names = ("sftp",)
    read_only = False
    atomic_put = False
    listable = True
    pooled = True
    reconnect_on_retry = False
    needs_host = True
    local = False
    takes_known_hosts = True
    install_hint = "pip install 'regen[sftp]'"

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        def names() -> dict[str, Any]:
            import fsspec
            import paramiko  # SFTPFileSystem passes its options to SSHClient.connect

            fsspec.get_filesystem_class(self.protocol)  # (the backend is installed)
            return accepted((paramiko.SSHClient.connect, ("hostname", "sock", "transport_factory")))
        return check_options(self.protocol, options, names)

    def fs_options(self, opts: dict[str, Any], timeout: float, known_hosts: str | None) -> dict[str, Any]:
        opts["skip_instance_cache"] = True  # the pool owns its connections
        for key in ("timeout", "banner_timeout", "auth_timeout", "channel_timeout"):
            opts.setdefault(key, timeout)
        if known_hosts is not None:
            opts["host_key_policy"] = _known_hosts_policy(known_hosts)
        return opts

    def after_open(self, fs: Any, timeout: float) -> None:
        fs.ftp.get_channel().settimeout(timeout)  # a silent server raises instead of hanging

    def open_stream(self, fs: FS, full: str, on_request: Callable[[], None]) -> Any:
        return fs().open(full, "rb")

    def read_full(self, fs: FS, full: str, max_bytes: int | None, guard: RateGuard,
                  on_request: Callable[[], None]) -> bytes:
        return cat_or_stream(self, fs, full, max_bytes, guard, on_request)

    def read_range(self, fs: FS, full: str, start: int, length: int) -> bytes:
        return seek_read(fs(), full, start, length)

    def stat(self, fs: FS, full: str, path: str) -> Stat:
        return info_stat(fs(), full, path)

    def write_atomic(self, fs: FS, full: str, fill: Fill, *, url: str, rel: str | None,
                     sleep: Callable[[float], None]) -> None:
        sftp = fs()
        via_temp(sftp, full, fill, sftp.ftp.posix_rename)  # posix-rename@openssh.com replaces atomically

    def create_new(self, fs: FS, full: str, data: bytes) -> None:
        sftp = fs()
        via_temp(sftp, full, lambda fp: fp.write(data), lambda src, dst: _rename_new(sftp, src, dst))

    def ls(self, fs: FS, d: str) -> list[tuple[str, bool]]:
        return fs_ls(fs(), d)

    def files_below(self, fs: FS, top: str) -> list[str]:
        return walk_files(lambda d: self.ls(fs, d), top)


def _rename_new(fs: Any, src: str, dst: str) -> None:
    """Plain SSH_FXP_RENAME refuses an existing target (OpenSSH: link + unlink): FileExistsError then."""
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


__all__ = ["SftpScheme"]
