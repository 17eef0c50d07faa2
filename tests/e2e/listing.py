"""An mtree-style listing of a tree: what makes two machines identical, as comparable values.

Per path (the root excluded): type, mode, uid, gid, user and group names (through the tree's
own etc/passwd and etc/group, as a chroot sees them), size, mtime (ns), extended attributes
(capabilities and ACLs included, exact bytes), symlink target, hard-link group (the first path
of the group in walk order) and device number. Independent of regen's code on purpose: it
reads the disk with os.* and parses the databases itself.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from typing import Any

_TYPES = ((stat.S_ISDIR, "dir"), (stat.S_ISREG, "file"), (stat.S_ISLNK, "link"), (stat.S_ISFIFO, "fifo"),
          (stat.S_ISCHR, "char"), (stat.S_ISBLK, "block"), (stat.S_ISSOCK, "socket"))


def _names(path: str) -> dict[int, str]:
    out: dict[int, str] = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as fp:
            for line in fp:
                parts = line.split(":")
                if len(parts) > 2 and parts[2].isdigit():
                    out.setdefault(int(parts[2]), parts[0])
    except OSError:
        pass
    return out


def _xattrs(full: str) -> dict[str, str]:
    try:
        names = os.listxattr(full, follow_symlinks=False)
    except OSError:
        return {}
    return {n: os.getxattr(full, n, follow_symlinks=False).hex() for n in sorted(names)}


def listing(root: str | os.PathLike[str], skip: Callable[[str], bool] = lambda p: False,
            dir_times: bool = True) -> dict[str, dict[str, Any]]:
    root = os.fspath(root)
    users = _names(os.path.join(root, "etc/passwd"))
    groups = _names(os.path.join(root, "etc/group"))
    first: dict[tuple[int, int], str] = {}
    out: dict[str, dict[str, Any]] = {}
    for dirpath, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            if skip(rel):
                if name in dirs:
                    dirs.remove(name)
                continue
            s = os.lstat(full)
            kind = next(k for test, k in _TYPES if test(s.st_mode))
            row: dict[str, Any] = {"type": kind, "mode": oct(stat.S_IMODE(s.st_mode)), "uid": s.st_uid,
                                   "gid": s.st_gid, "user": users.get(s.st_uid), "group": groups.get(s.st_gid),
                                   "xattrs": _xattrs(full)}
            if kind != "dir" or dir_times:
                row["mtime"] = s.st_mtime_ns
            if kind == "file":
                row["size"] = s.st_size
                if s.st_nlink > 1:
                    row["hardlink"] = first.setdefault((s.st_dev, s.st_ino), rel)
            elif kind == "link":
                row["target"] = os.readlink(full)
            elif kind in ("char", "block"):
                row["rdev"] = (os.major(s.st_rdev), os.minor(s.st_rdev))
            out[rel] = row
    return out


def differences(a: dict[str, dict[str, Any]], b: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What differs between two listings (empty: equal), readable in an assertion message."""
    diff: dict[str, Any] = {}
    for p in sorted(set(a) | set(b)):
        if p not in a or p not in b:
            diff[p] = "only in " + ("first" if p in a else "second")
        elif a[p] != b[p]:
            diff[p] = {k: (a[p].get(k), b[p].get(k)) for k in sorted(set(a[p]) | set(b[p]))
                       if a[p].get(k) != b[p].get(k)}
    return diff
