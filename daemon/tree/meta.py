"""Metadata of a path, applied in the order the kernel's rules need (local I/O).

content -> owner -> mode -> extended attributes -> mtime, because chown(2) clears the
setuid/setgid bits (so the mode comes after the owner) and the file capability
(security.capability, so attributes come after the owner too), and every one of these moves
ctime but only utimensat(2) sets the mtime (so it is last). Attributes not in the entry are
removed: a capability planted on a managed binary does not survive a repair.

Two ways in: on the descriptor of a temporary file just written (`on_fd`, before it is
renamed into place), and by name in a directory reached through SafeRoot (`at`): the final
component is never followed (fchownat/utimensat with AT_SYMLINK_NOFOLLOW, lsetxattr through
/proc/self/fd/<dir>, chmod through an O_PATH descriptor, so a device node is never opened).
"""

from __future__ import annotations

import errno
import os
import stat as st
from collections.abc import Callable

from regen.daemon.errors import UnsafePath
from regen.store import Entry, read_xattrs

Warn = Callable[[str], None]


def on_fd(fd: int, e: Entry, *, required: bool, warn: Warn, shown: str) -> None:
    """Owner, mode, attributes, mtime of the open file `fd` (a temporary regend just wrote)."""
    if e.uid is not None and e.gid is not None:
        os.fchown(fd, e.uid, e.gid)
    os.fchmod(fd, e.mode)
    if e.has_meta or e.xattrs:
        _xattrs(fd, e, required=required, warn=warn, shown=shown)
    if e.mtime is not None:
        os.utime(fd, ns=(e.mtime, e.mtime))


def at(dir_fd: int, name: str, e: Entry, *, required: bool, warn: Warn, shown: str, times: bool = True) -> None:
    """The same for `name` in directory `dir_fd` (any kind; never followed). `times`: set the mtime."""
    s = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    is_link = st.S_ISLNK(s.st_mode)
    if (e.kind == "symlink") != is_link:
        raise UnsafePath(f"{shown} is no longer a {e.kind}; its metadata was not set", path=e.path)
    if e.uid is not None and e.gid is not None:
        os.chown(name, e.uid, e.gid, dir_fd=dir_fd, follow_symlinks=False)
    if not is_link:
        pfd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            if st.S_ISLNK(os.fstat(pfd).st_mode):
                raise UnsafePath(f"{shown} became a symlink; its mode was not set", path=e.path)
            os.chmod(f"/proc/self/fd/{pfd}", e.mode)
        finally:
            os.close(pfd)
    if e.has_meta or e.xattrs:
        _xattrs(f"/proc/self/fd/{dir_fd}/{name}", e, required=required, warn=warn, shown=shown)
    if times and e.mtime is not None:
        os.utime(name, ns=(e.mtime, e.mtime), dir_fd=dir_fd, follow_symlinks=False)


def set_mtime(dir_fd: int, name: str, mtime: int) -> None:
    os.utime(name, ns=(mtime, mtime), dir_fd=dir_fd, follow_symlinks=False)


def _xattrs(target: int | str, e: Entry, *, required: bool, warn: Warn, shown: str) -> None:
    """Make the attributes exactly e.xattrs: set what differs, remove what is not listed."""
    follow = isinstance(target, int)
    try:
        have = dict(_read(target))
    except OSError as exc:
        if e.xattrs:
            _refused(exc, shown, e.xattrs[0][0], required, warn)
        return
    want = dict(e.xattrs)
    for name in have.keys() - want.keys():
        try:
            os.removexattr(target, name, follow_symlinks=follow)
        except OSError as exc:
            if exc.errno != errno.ENODATA:
                _refused(exc, shown, name, required, warn)
    for name, value in e.xattrs:
        if have.get(name) == value:
            continue
        try:
            os.setxattr(target, name, value, follow_symlinks=follow)
        except OSError as exc:
            _refused(exc, shown, name, required, warn)


def _read(target: int | str) -> tuple[tuple[str, bytes], ...]:
    if isinstance(target, int):
        names = os.listxattr(target)
        return tuple((n, os.getxattr(target, n)) for n in sorted(names))
    return read_xattrs(target)


def _refused(exc: OSError, shown: str, name: str, required: bool, warn: Warn) -> None:
    """A file system that refuses an attribute (tmpfs without user xattrs, NFS, vfat): one line
    naming the path and the attribute; an error unless the config says xattrs = "best-effort"."""
    line = f"{shown}: the file system refused extended attribute {name}: {exc.strerror or exc}"
    if required:
        raise OSError(exc.errno, line)
    warn(line)


def read_back(dir_fd: int, name: str) -> tuple[tuple[str, bytes], ...]:
    """The attributes now on `name` (for its index row); none if they cannot be read."""
    try:
        return read_xattrs(name, dir_fd=dir_fd)
    except OSError:
        return ()


__all__ = ["at", "on_fd", "read_back", "set_mtime"]
