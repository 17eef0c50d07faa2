"""Walking a local tree in manifest (tree) order, never following symlinks (local I/O).

Shared by the manager's snapshot and the daemon's scan so both see a tree the same way:
depth first, siblings sorted by the bytes of their names, which is exactly `sort_key`
order, so walks merge-join against manifests without sorting.
"""

from __future__ import annotations

import errno
import os
import stat as st
from collections.abc import Callable, Iterator
from typing import Any, Literal

Kind = Literal["file", "dir", "symlink", "special"]


def kind_of(mode: int) -> Kind:
    if st.S_ISREG(mode):
        return "file"
    if st.S_ISDIR(mode):
        return "dir"
    if st.S_ISLNK(mode):
        return "symlink"
    return "special"


def node_kind(mode: int) -> Literal["fifo", "chardev", "blockdev"] | None:
    """The manifest kind of a FIFO or device node (format 2), None for anything else."""
    if st.S_ISFIFO(mode):
        return "fifo"
    if st.S_ISCHR(mode):
        return "chardev"
    if st.S_ISBLK(mode):
        return "blockdev"
    return None


def read_xattrs(path: str, *, dir_fd: int | None = None) -> tuple[tuple[str, bytes], ...]:
    """Every extended attribute of `path` (never following a final symlink) this process can
    read, sorted by name, exact bytes: user.*, security.* (capabilities, SELinux labels),
    system.posix_acl_* (ACLs), trusted.* as root. `dir_fd`: `path` is a name in that directory.
    Raises OSError (ENOTSUP: the file system has none, which callers read as no attributes)."""
    if dir_fd is not None:
        path = f"/proc/self/fd/{dir_fd}/{path}"
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return ()
        raise
    if not names:
        return ()
    out = []
    for name in sorted(names):
        try:
            out.append((name, os.getxattr(path, name, follow_symlinks=False)))
        except OSError as exc:
            if exc.errno != errno.ENODATA:  # (removed between list and get)
                raise
    return tuple(out)


def walk(
    root: str,
    *,
    prune: Callable[[str], bool] | None = None,
    onerror: Callable[[str, OSError], None] | None = None,
) -> Iterator[tuple[str, os.stat_result]]:
    """Yield (relative POSIX path, lstat) for everything below `root`, in tree order.

    `prune(relpath)` returning True skips that path and, for a directory, all below it.
    Errors reading a directory go to `onerror` (default: raise). Names that are not
    valid UTF-8 come through as surrogate-escaped str (os.fsdecode); callers decide.
    """
    stack: list[tuple[str, Iterator[tuple[str, os.stat_result | OSError]]]] = []

    def open_dir(rel: str, seen: os.stat_result | None) -> Iterator[tuple[str, os.stat_result | OSError]] | None:
        """The directory's (name, lstat) in name order. It is opened with O_NOFOLLOW and must be
        the very directory the walk saw (device and inode): one swapped for a symlink (or moved)
        during the walk is reported, never listed in its place (issue 13: a walk listed /etc)."""
        full = os.path.join(root, rel) if rel else root
        try:
            fd = os.open(full, _DIR_FLAGS if rel else _ROOT_FLAGS)
            try:
                here = os.fstat(fd)
                if seen is not None and (here.st_dev, here.st_ino) != (seen.st_dev, seen.st_ino):
                    raise OSError(errno.ELOOP, "replaced during the walk; not followed", full)
                with os.scandir(fd) as it:
                    names = sorted((e.name for e in it), key=os.fsencode)
                out: list[tuple[str, os.stat_result | OSError]] = []
                for name in names:
                    try:
                        out.append((name, os.stat(name, dir_fd=fd, follow_symlinks=False)))
                    except FileNotFoundError:
                        continue  # vanished between listing and stat
                    except OSError as exc:
                        out.append((name, exc))
            finally:
                os.close(fd)
        except OSError as exc:
            if onerror is None:
                raise
            onerror(rel, exc)
            return None
        return iter(out)

    first = open_dir("", None)
    if first is None:
        return
    stack.append(("", first))
    while stack:
        base, it = stack[-1]
        item = next(it, None)
        if item is None:
            stack.pop()
            continue
        name, s = item
        rel = f"{base}/{name}" if base else name
        if prune is not None and prune(rel):
            continue
        if isinstance(s, OSError):
            if onerror is None:
                raise s
            onerror(rel, s)
            continue
        yield rel, s
        if st.S_ISDIR(s.st_mode):
            sub = open_dir(rel, s)
            if sub is not None:
                stack.append((rel, sub))


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_ROOT_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC  # root itself may be a symlink (configured)


_SYNCFS: Any = None


def syncfs(fd: int) -> bool:
    """syncfs(2): flush the one filesystem holding descriptor `fd` (far cheaper than a system-wide
    sync(2) on a busy machine). False when the call is unavailable or fails: the caller then
    falls back to os.sync()."""
    global _SYNCFS
    if _SYNCFS is None:
        try:
            import ctypes

            fn = ctypes.CDLL(None, use_errno=True).syncfs  # the process's own symbols: libc
            fn.argtypes = [ctypes.c_int]
            fn.restype = ctypes.c_int
            _SYNCFS = fn
        except (OSError, AttributeError):
            _SYNCFS = False
    return bool(_SYNCFS) and _SYNCFS(fd) == 0
