"""Owners of format-2 entries mapped to this client's ids (pure, given the client's databases).

A manifest carries the reference's numeric ids and names; like tar, a client maps each name
through *its own* root's etc/passwd and etc/group (store.IdNames, read once per plan) and
falls back to the number when the name is unknown there, with one warning per name. A
client not running as root cannot give files away or set privileged attributes: it keeps
neither owners nor attributes outside user.* (and says so once).
"""

from __future__ import annotations

import os
from dataclasses import replace

from regen.store import Entry, IdNames


class Owners:
    """`map(entry)`: the entry with this client's uid/gid (and only the attributes it may set)."""

    def __init__(self, names: IdNames, *, privileged: bool) -> None:
        self.names = names
        self.privileged = privileged
        self._unknown: set[tuple[str, str]] = set()
        self.warnings: list[str] = []
        if not privileged:
            self.warnings.append("regend does not run as root: owners, groups and attributes outside user.* "
                                 "are not kept")

    @classmethod
    def of_root(cls, root: str) -> Owners:
        """The client root's own databases; none (numbers kept) when it has no etc/passwd yet (an install)."""
        return cls(IdNames.of_tree(root, host_fallback=False), privileged=os.geteuid() == 0)

    def map(self, e: Entry) -> Entry:
        if e.uid is None:
            return e
        if not self.privileged:
            return replace(e, uid=None, gid=None, xattrs=tuple(x for x in e.xattrs if x[0].startswith("user.")))
        uid = self._id(e.user, e.uid, self.names.uid_of, "user", e.path)
        gid = self._id(e.group, e.gid, self.names.gid_of, "group", e.path)  # type: ignore[arg-type]
        return e if (uid, gid) == (e.uid, e.gid) else replace(e, uid=uid, gid=gid)

    def _id(self, name: str | None, number: int, lookup: object, what: str, path: str) -> int:
        if name is None:
            return number
        found = lookup(name)  # type: ignore[operator]
        if found is not None:
            return int(found)
        known = self.names.users if what == "user" else self.names.groups
        if known and (what, name) not in self._unknown:  # (no database at all: an install, numbers are right)
            self._unknown.add((what, name))
            self.warnings.append(f"{what} {name!r} (of {path} and maybe others) is unknown on this client: "
                                 f"numeric id {number} kept")
        return number


__all__ = ["Owners"]
