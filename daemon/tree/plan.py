"""plan(target, observed, policy) -> Plan: what to change so the disk becomes the target (pure).

Both inputs are streams in tree order (a directory directly followed by everything below it),
merged in one pass: memory grows with the number of changes, not with the tree.

Rules (FORMAT.md §7 for the policy):
- a target entry matching a preserve glob is never written; a disk path matching one is
  never read, removed or overwritten;
- a path on disk that no target entry describes is removed if regend installed it (its
  content is a store object), else it is junk: quarantined and removed (`junk = "quarantine"`)
  or left in place (`"keep"`);
- a file, symlink or special file in the way of a directory is removed (quarantined when its
  content is not in the store); a directory in the way of a file or symlink is removed with
  everything below it (each file quarantined unless its content is in the store), whatever
  the junk mode;
- every file or symlink removed or overwritten whose content is not in the store is listed
  in `quarantine` (saved before it goes);
- files matching a base glob come from the store, never from the local cache (`from_store`);
- format-2 entries (FORMAT.md §4.7) also compare owner, group, extended attributes (ACLs and
  capabilities included) and mtime: a difference in any puts the entry in `chmod` (its whole
  metadata is applied again, in the kernel's order); a directory's mtime is set again when its
  content changes (`retime`), and compared except where its content belongs to the machine
  (under an exclude glob, or holding preserved paths). Hard-link members
  whose inode is not their group's first member's are linked again (`link`); their metadata
  is the first member's.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from regen.daemon.tree.index import path_key
from regen.store import NODE_KINDS, Entry, Policy, matches, merge_join

TEMP_PREFIX = ".regen-tmp-"


@dataclass(frozen=True, slots=True)
class Observed:
    """What is on disk at `path` now. Files carry their xxh3 (hashed, or trusted from the index)."""

    path: str
    kind: str                 # file | dir | symlink | special
    mode: int
    size: int = 0
    xxh: str | None = None
    target: str | None = None
    in_store: bool = False    # content is the store object regend installed there (or a dir it made)
    temp: bool = False        # a regend temporary file left by an interrupted run
    uid: int | None = None    # None: not known (metadata is then not compared)
    gid: int | None = None
    mtime: int | None = None
    xattrs: tuple[tuple[str, bytes], ...] = ()
    inode: int | None = None
    rdev: int | None = None

    def same_as(self, e: Entry) -> bool:
        """Kind and content equal (mode not compared)."""
        if self.kind != e.kind:
            return False
        if e.kind == "file":
            return self.xxh == e.xxh and self.size == e.size
        if e.kind == "symlink":
            return self.target == e.target
        if e.rdev is not None and self.rdev is not None:
            return self.rdev == os.makedev(*e.rdev)
        return True

    def drift_from(self, e: Entry, dir_time: bool = False) -> list[str]:
        """The metadata categories in which this path differs from `e` (same kind and content):
        mode, owner, xattr, time (pure; a field the entry or the disk does not know is not compared;
        a directory's mtime only with `dir_time`)."""
        out = []
        if e.kind != "symlink" and self.mode != e.mode:
            out.append("mode")
        if e.has_meta and self.uid is None:  # the index never recorded it (a format-1 install): apply all
            return [*out, "unknown"]
        if e.uid is not None and self.uid is not None and (self.uid, self.gid) != (e.uid, e.gid):
            out.append("owner")
        if e.has_meta and self.uid is not None and self.xattrs != e.xattrs:
            out.append("xattr")
        if e.mtime is not None and self.mtime is not None and (dir_time or e.kind != "dir") and self.mtime != e.mtime:
            out.append("time")
        return out


def is_temp_name(path: str) -> bool:
    return path.rpartition("/")[2].startswith(TEMP_PREFIX)


@dataclass(frozen=True, slots=True)
class Plan:
    """Changes in the order apply performs them: quarantine, delete, mkdir, files/symlinks, chmod."""

    quarantine: tuple[Observed, ...] = ()     # saved first: removed or overwritten, content not in the store
    delete: tuple[Observed, ...] = ()         # removed, deepest first
    mkdir: tuple[Entry, ...] = ()             # tree order
    create: tuple[Entry, ...] = ()            # files where nothing is (after the deletes)
    replace: tuple[Entry, ...] = ()           # files renamed over an existing file, symlink or special file
    symlink: tuple[Entry, ...] = ()           # symlinks created or renamed over what is there
    chmod: tuple[Entry, ...] = ()             # metadata only: mode, and for format 2 owner, xattrs, mtime
    keep: tuple[Observed, ...] = ()           # unmanaged paths left in place (junk = "keep")
    adopt: tuple[Entry, ...] = ()             # already right on disk, but not yet known as installed
    occupied: frozenset[str] = field(default_factory=frozenset)  # writes renamed over something seen on disk
    from_store: frozenset[str] = field(default_factory=frozenset)  # base paths: content from the store only
    link: tuple[Entry, ...] = ()              # hard-link members (re)linked to their group's first member
    retime: tuple[Entry, ...] = ()            # directories whose content changes: their mtime is set again

    @property
    def empty(self) -> bool:
        return not (self.quarantine or self.delete or self.mkdir or self.create or self.replace or self.symlink
                    or self.chmod or self.link)

    def writes(self) -> tuple[Entry, ...]:
        return self.create + self.replace

    def stats(self) -> dict[str, int]:
        return {
            "quarantine": len(self.quarantine), "delete": len(self.delete), "mkdir": len(self.mkdir),
            "create": len(self.create), "replace": len(self.replace), "symlink": len(self.symlink),
            "chmod": len(self.chmod), "keep": len(self.keep), "link": len(self.link),
            "bytes_to_write": sum(e.size for e in self.writes()),
            "operations": self.operations(),
        }

    def operations(self) -> int:
        return (len(self.quarantine) + len(self.delete) + len(self.mkdir) + len(self.create) + len(self.replace)
                + len(self.symlink) + len(self.chmod) + len(self.link))

    def summary(self, limit: int = 20) -> dict[str, Any]:
        """JSON for the journal and reports: counts and the first paths of each list."""
        out: dict[str, Any] = {}
        for name in ("quarantine", "delete", "mkdir", "create", "replace", "symlink", "chmod", "keep", "link"):
            items = getattr(self, name)
            out[name] = {"count": len(items), "paths": [i.path for i in items[:limit]]}
        return out


class _Builder:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.quarantine: list[Observed] = []
        self.delete: list[Observed] = []
        self.mkdir: list[Entry] = []
        self.create: list[Entry] = []
        self.replace: list[Entry] = []
        self.symlink: list[Entry] = []
        self.chmod: list[Entry] = []
        self.keep: list[Observed] = []
        self.adopt: list[Entry] = []
        self.from_store: set[str] = set()
        self.occupied: set[str] = set()
        self.doomed: list[str] = []    # disk directories being removed whole: everything below goes
        self.kept: set[str] = set()    # directories that must stay because something below is kept
        self.link: list[Entry] = []
        self.inodes: dict[str, int | None] = {}   # first member of a hard-link group -> its inode (None: rewritten)
        self.chain: dict[str, Entry] = {}          # target directories on the current path (for retime)
        self.retime: dict[str, Entry] = {}

    def changed(self, path: str) -> None:
        """Something in `path`'s directory is created, removed or renamed: its mtime moves."""
        parent = self.chain.get(path.rpartition("/")[0])
        if parent is not None and parent.mtime is not None:
            self.retime[parent.path] = parent

    def enter(self, e: Entry) -> None:
        if e.kind == "dir":
            self.chain[e.path] = e

    def remove(self, o: Observed) -> None:
        if o.kind in ("file", "symlink") and not o.in_store and not o.temp:
            self.quarantine.append(o)
        self.delete.append(o)
        self.changed(o.path)

    def unmanaged(self, o: Observed) -> None:
        """A disk path no target entry describes (and no directory being removed holds)."""
        if o.kind == "dir" and self.policy.preserve and may_hold(o.path, self.policy.preserve):
            # preserved paths are never scanned: a directory that may hold some stays (home for "home/**")
            self.hold(o.path)
        if o.temp or o.in_store or (self.policy.junk == "quarantine" and o.kind != "special"):
            self.remove(o)
            return
        # kept: junk = "keep", or a socket/FIFO/device (never removed unless it is in the way)
        self.keep.append(o)
        self.hold(o.path.rpartition("/")[0])

    def hold(self, path: str) -> None:
        """Directory `path` and its ancestors must stay: something below them is kept."""
        while path and path not in self.kept:
            self.kept.add(path)
            path = path.rpartition("/")[0]

    def under_doomed(self, path: str) -> bool:
        while self.doomed and not path.startswith(self.doomed[-1] + "/"):
            self.doomed.pop()
        return bool(self.doomed)

    def doom(self, o: Observed) -> None:
        """Remove directory `o` and everything below it (which follows it in tree order)."""
        self.under_doomed(o.path)
        self.doomed.append(o.path)
        self.delete.append(o)

    def write(self, e: Entry, o: Observed | None) -> None:
        if o is not None and o.kind != "dir" and e.kind != "dir":
            self.occupied.add(e.path)
        self.changed(e.path)
        if e.kind == "dir":
            self.mkdir.append(e)
            return
        if e.link is not None:
            if e.link != e.path:
                self.link.append(e)
                return
            self.inodes[e.path] = None  # a first member written anew: every member is linked again
        if e.kind == "symlink" or e.kind in NODE_KINDS:
            self.symlink.append(e)
            return
        (self.create if o is None or o.kind == "dir" else self.replace).append(e)
        if self.policy.base and matches(e.path, self.policy.base):
            self.from_store.add(e.path)

    def both(self, e: Entry, o: Observed) -> None:
        if o.temp:  # (a target path can never be a temp name, but never trust one as content)
            self.remove(o)
            self.write(e, None)
            return
        if e.kind == "dir":
            if o.kind == "dir":
                if not o.in_store:
                    self.adopt.append(e)
                if o.drift_from(e, dir_time=not machine_dir(e.path, self.policy)):
                    self.chmod.append(e)
            else:
                self.remove(o)
                self.mkdir.append(e)
            return
        if o.kind == "dir":  # a directory in the way of a file or symlink: it goes with all below
            self.doom(o)
            self.write(e, o)
            return
        if e.link is not None and e.link != e.path:  # a hard-link member: right when it is the first's inode
            first = self.inodes.get(e.link)
            if o.same_as(e) and first is not None and o.inode == first:
                if not o.in_store:
                    self.adopt.append(e)
                return
            if o.kind in ("file", "symlink") and not o.in_store:
                self.quarantine.append(o)
            self.write(e, o)
            return
        if o.same_as(e):
            if not o.in_store:
                self.adopt.append(e)
            if e.link == e.path:
                self.inodes[e.path] = o.inode
            if o.drift_from(e):
                self.chmod.append(e)
            return
        if o.kind in ("file", "symlink") and not o.in_store:
            self.quarantine.append(o)  # overwritten by the rename; saved first
        self.write(e, o)

    def build(self) -> Plan:
        deletes = [o for o in reversed(self.delete) if not (o.kind == "dir" and o.path in self.kept)]
        # a directory that must stay for what it holds is kept too (and known as unmanaged from now on)
        self.keep.extend(o for o in self.delete if o.kind == "dir" and o.path in self.kept)
        return Plan(tuple(self.quarantine), tuple(deletes), tuple(self.mkdir), tuple(self.create),
                    tuple(self.replace), tuple(self.symlink), tuple(self.chmod), tuple(self.keep),
                    tuple(self.adopt), frozenset(self.occupied), frozenset(self.from_store), tuple(self.link),
                    tuple(self.retime.values()))


def machine_dir(path: str, policy: Policy) -> bool:
    """A directory whose content (so whose mtime) belongs to the machine: under an exclude glob,
    or one that may hold preserved paths. Other directories get the target's mtime back, and a
    change of their mtime is drift (scan: `time`)."""
    p = policy
    return bool((p.exclude and matches(path, p.exclude)) or (p.preserve and may_hold(path, p.preserve)))


def may_hold(path: str, globs: Iterable[str]) -> bool:
    """True if one of `globs` could match a path below directory `path` (or `path` itself)."""
    parts = path.split("/")
    for glob in globs:
        gparts = glob.split("/")
        for i, part in enumerate(parts):
            if i >= len(gparts) or "**" in gparts[i]:
                return True
            if not fnmatchcase(part, gparts[i]):
                break
        else:
            return True
    return False


def _entry_key(e: Entry) -> bytes:
    return path_key(e.path)


def _observed_key(o: Observed) -> bytes:
    return path_key(o.path)


def plan(target: Iterable[Entry], observed: Iterable[Observed], policy: Policy,
         owners: Callable[[Entry], Entry] | None = None) -> Plan:
    """Merge the target tree and the disk (both in tree order: regen.store.merge_join) into the
    changes that make them equal. `owners` maps a format-2 entry's owner to this client's ids
    (owners.Owners.map)."""
    b = _Builder(policy)
    if owners is not None:
        target = map(owners, target)
    preserve = policy.preserve
    for e, ob in merge_join(target, observed, _entry_key, _observed_key):
        if e is None:  # on disk only
            assert ob is not None
            if not (preserve and matches(ob.path, preserve)):
                if b.under_doomed(ob.path):
                    if ob.kind == "dir":
                        b.doom(ob)
                    else:
                        b.remove(ob)
                else:
                    b.unmanaged(ob)
            continue
        b.enter(e)
        if not (preserve and matches(e.path, preserve)):
            if ob is None:
                b.write(e, None)
            else:
                b.both(e, ob)
    return b.build()


__all__ = ["TEMP_PREFIX", "Observed", "Plan", "is_temp_name", "machine_dir", "plan"]
