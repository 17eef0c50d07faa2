"""One path of a tree as a manifest describes it: the `Entry` value (pure).

A leaf module: the manifest's encoding (manifest.py) and its format-2 metadata rules
(manifest_meta.py) both work on entries without importing each other back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .objects import ObjectId

Kind = Literal["file", "dir", "symlink", "fifo", "chardev", "blockdev"]
Xattrs = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class Entry:
    """One path of a tree. Files carry content ids; symlinks their target (data, never followed)."""

    path: str
    kind: Kind
    mode: int
    size: int = 0
    oid: ObjectId | None = None
    xxh: str | None = None
    target: str | None = None
    # format 2 (None / empty in format 1: the client leaves owners, times and attributes alone)
    uid: int | None = None
    gid: int | None = None
    user: str | None = None        # the owner's name on the reference (clients map it back)
    group: str | None = None
    mtime: int | None = None       # ns since the epoch
    xattrs: Xattrs = ()            # (name, exact bytes), sorted by name; ACLs are system.posix_acl_*
    link: str | None = None        # hard-link group: the path of its first member (itself for that one)
    rdev: tuple[int, int] | None = None   # chardev / blockdev: (major, minor)
    sparse: bool = False           # the reference file has holes: clients write zero blocks as holes

    @property
    def has_meta(self) -> bool:
        return self.uid is not None

    def same_content(self, other: Entry) -> bool:
        """Kind, content and target equal (size and xxh3 too: for honest data they follow the id)."""
        return (self.kind == other.kind and self.oid == other.oid and self.target == other.target
                and self.size == other.size and self.xxh == other.xxh and self.rdev == other.rdev)

    def same_meta(self, other: Entry) -> bool:
        return (self.mode == other.mode and self.uid == other.uid and self.gid == other.gid
                and self.user == other.user and self.group == other.group and self.mtime == other.mtime
                and self.xattrs == other.xattrs and self.link == other.link and self.sparse == other.sparse)


__all__ = ["Entry", "Kind", "Xattrs"]
