"""User and group names of a tree: ids <-> names from its own etc/passwd and etc/group (local I/O).

Why the tree's own files: a reference is often a chroot (a debootstrap root, an image being
built) whose users are not the host's, and a client maps a manifest's names through *its*
root's databases, as tar does on extraction. A tree without etc/passwd (an application
directory) uses the host's databases (pwd/grp) instead.
"""

from __future__ import annotations

import grp
import os
import pwd
from dataclasses import dataclass, field

from .manifest_meta import NAME_RE  # the names a manifest may carry (others fall back to ids)

_MAX_DB_BYTES = 16 << 20  # a passwd or group file larger than this is not read (names fall back to ids)


def parse_db(text: str) -> dict[int, str]:
    """id -> name of a passwd or group file (name:x:id:...); the first name of an id wins (pure)."""
    out: dict[int, str] = {}
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) < 3 or not parts[0] or parts[0].startswith(("#", "+", "-")):
            continue
        try:
            ident = int(parts[2])
        except ValueError:
            continue
        name = parts[0]
        if 0 <= ident < 1 << 32 and NAME_RE.match(name):
            out.setdefault(ident, name)
    return out


def _read(path: str) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        data = os.read(fd, _MAX_DB_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    return None if len(data) > _MAX_DB_BYTES else data.decode("utf-8", "replace")


@dataclass(slots=True)
class IdNames:
    """Names by id and ids by name of one tree. `users`/`groups` None: the host's databases."""

    users: dict[int, str] | None
    groups: dict[int, str] | None
    _uids: dict[str, int] = field(default_factory=dict)
    _gids: dict[str, int] = field(default_factory=dict)
    _cache: dict[tuple[str, int], str | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for ident, name in sorted((self.users or {}).items(), reverse=True):
            self._uids[name] = ident  # (lowest id wins for a name listed twice)
        for ident, name in sorted((self.groups or {}).items(), reverse=True):
            self._gids[name] = ident

    @classmethod
    def of_tree(cls, root: str, *, host_fallback: bool = True) -> IdNames:
        """The databases below `root`; where one is missing, the host's (`host_fallback`) or none."""
        p = _read(os.path.join(root, "etc", "passwd"))
        g = _read(os.path.join(root, "etc", "group"))
        none: dict[int, str] | None = None if host_fallback else {}
        return cls(parse_db(p) if p is not None else none, parse_db(g) if g is not None else none)

    def user(self, uid: int) -> str | None:
        if self.users is not None:
            return self.users.get(uid)
        return self._host("u", uid)

    def group(self, gid: int) -> str | None:
        if self.groups is not None:
            return self.groups.get(gid)
        return self._host("g", gid)

    def uid_of(self, name: str) -> int | None:
        return self._uids.get(name) if self.users is not None else _host_id(pwd.getpwnam, name)

    def gid_of(self, name: str) -> int | None:
        return self._gids.get(name) if self.groups is not None else _host_id(grp.getgrnam, name)

    def _host(self, which: str, ident: int) -> str | None:
        key = (which, ident)
        if key not in self._cache:
            try:
                self._cache[key] = pwd.getpwuid(ident).pw_name if which == "u" else grp.getgrgid(ident).gr_name
            except (KeyError, OverflowError):
                self._cache[key] = None
        return self._cache[key]


def _host_id(lookup: object, name: str) -> int | None:
    try:
        entry = lookup(name)  # type: ignore[operator]
    except KeyError:
        return None
    return int(entry[2])


__all__ = ["IdNames", "parse_db"]
