"""Drift detection: walk root, compare each path's stat with its index row, hash only suspects.

`classify(facts, known)` gives the one stat verdict (verdict.stat_verdict, which the no-change
fast path asks too) as UNKNOWN / UNCHANGED / CHANGED with the reason, logged to
`regen.daemon.tree.scan`; `scan()` is the I/O around it (hashing.py reads the suspects). The
racy-timestamp rule (as git's): a row is trusted only when the file's mtime is at least
RACY_WINDOW_NS older than the moment the row was confirmed; otherwise a write in the same clock
tick as the last hash could hide behind an identical stat, so the file is hashed again.
"""

from __future__ import annotations

import itertools
import logging
import os
import stat as st
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from regen.daemon.errors import Interrupted, signal_name
from regen.daemon.tree.hashing import BIG_FILE, VERIFY_SLICE, Hasher, Prehashed
from regen.daemon.tree.index import IndexRow, path_key
from regen.daemon.tree.plan import Observed, is_temp_name
from regen.daemon.tree.verdict import stat_verdict
from regen.store import (
    RACY_WINDOW_NS,
    decode_xattrs,
    encode_xattrs,
    kind_of,
    merge_join,
    node_kind,
    read_xattrs,
    walk,
)

log = logging.getLogger("regen.daemon.tree.scan")

# 2 s: FAT's timestamp granularity, and far above the coarse kernel clock (one jiffy, <= 10 ms)
# that stamps mtimes on ext4/xfs/btrfs.
UNKNOWN, UNCHANGED, CHANGED = "unknown", "unchanged", "changed"


@dataclass(frozen=True, slots=True)
class StatFacts:
    kind: str
    mode: int
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    uid: int = 0
    gid: int = 0
    rdev: int | None = None

    @classmethod
    def from_stat(cls, s: os.stat_result) -> StatFacts:
        kind: str = kind_of(s.st_mode)
        rdev = None
        if kind == "special":
            kind = node_kind(s.st_mode) or kind
            rdev = s.st_rdev if kind in ("chardev", "blockdev") else None
        return cls(kind, st.S_IMODE(s.st_mode), s.st_size if kind == "file" else 0, s.st_mtime_ns, s.st_ctime_ns,
                   s.st_ino, s.st_uid, s.st_gid, rdev)


@dataclass(frozen=True, slots=True)
class Verdict:
    state: str          # unknown | unchanged | changed
    reason: str = ""


def classify(facts: StatFacts, known: IndexRow | None) -> Verdict:
    """Can the index row be trusted for this path without reading it? (pure; the one stat
    verdict, verdict.stat_verdict, which the no-change fast path asks too)"""
    if known is None:
        return Verdict(UNKNOWN, "new")
    why = stat_verdict(facts.kind, facts.mode, facts.size, facts.mtime_ns, facts.ctime_ns, facts.inode, known)
    return Verdict(CHANGED, why) if why else Verdict(UNCHANGED)


@dataclass(slots=True)
class Drift:
    """Paths that differ from the index (the last known state), by kind of change."""

    deleted: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)   # content, or kind (file -> symlink, dir -> file)
    meta: list[str] = field(default_factory=list)       # mode, symlink target
    owner: list[str] = field(default_factory=list)      # owner or group
    xattr: list[str] = field(default_factory=list)      # extended attributes: capabilities, ACLs, labels
    link: list[str] = field(default_factory=list)       # a hard link broken (or made)
    time: list[str] = field(default_factory=list)       # mtime (of a directory: with its entries unchanged)

    def _lists(self) -> tuple[tuple[str, list[str]], ...]:
        return (("deleted", self.deleted), ("created", self.created), ("modified", self.modified),
                ("meta", self.meta), ("owner", self.owner), ("xattr", self.xattr), ("link", self.link),
                ("time", self.time))

    def total(self) -> int:
        """Paths that drifted (a path drifting in several categories counts once)."""
        return len(set(self.paths()))

    def paths(self) -> Iterator[str]:
        for _, v in self._lists():
            yield from v

    def as_report(self, limit: int = 20) -> dict[str, Any]:
        """Counts and first paths per category; the metadata categories (owner, xattr, link,
        time) only when something drifted there."""
        return {k: {"count": len(v), "paths": v[:limit]} for k, v in self._lists()
                if v or k in ("deleted", "created", "modified", "meta")}

    def settle_dir_times(self, temps: Iterable[str] = ()) -> None:
        """A directory whose entries were created, removed or replaced has a new mtime because of
        them: that is their drift (listed), not a `time` drift of its own (a repair sets it back
        either way); so are regend's own leftover `temps`. Called once the whole tree is scanned
        (a directory comes before its entries)."""
        if not self.time:
            return
        moved = {p.rpartition("/")[0] for p in itertools.chain(self.created, self.deleted, self.modified, self.link,
                                                                temps)}
        self.time = [p for p in self.time if p not in moved]


@dataclass(slots=True)
class ScanResult:
    observed: list[Observed]
    drift: Drift
    rows: list[IndexRow]          # fresh rows for paths that were hashed and still match (or new facts)
    gone: list[str] = field(default_factory=list)   # every indexed path no longer on disk
    hashed: int = 0
    bytes_hashed: int = 0
    errors: list[str] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)
    leaders: dict[str, int] = field(default_factory=dict)   # first members of hard-link groups -> inode


def _merge(disk: Iterator[tuple[str, os.stat_result]], known: Iterator[IndexRow]
           ) -> Iterator[tuple[str, os.stat_result | None, IndexRow | None]]:
    """(path, its stat on disk or None, its index row or None), in tree order (regen.store.merge_join)."""
    for d, k in merge_join(disk, known, _disk_key, _row_key):
        if d is not None:
            yield d[0], d[1], k
        else:
            assert k is not None
            yield k.path, None, k


def _disk_key(d: tuple[str, os.stat_result]) -> bytes:
    return path_key(d[0])


def _row_key(k: IndexRow) -> bytes:
    return path_key(k.path)


def scan(root: str, known: Iterable[IndexRow], *, prune: Callable[[str], bool], verify: bool = False,
         now_ns: Callable[[], int] = time.time_ns, stop: threading.Event | None = None,
         dir_time: Callable[[str], bool] = lambda path: False) -> ScanResult:
    """Compare the tree under `root` with the index rows (tree order); hash only what may have changed.

    `prune(path)` True skips a path and all below it (preserve globs, state_dir), on disk and
    in the index alike. `verify` hashes every file and reads every symlink regardless of stat.
    `dir_time(path)` True: the directory's mtime is the target's, so a change of it is drift
    (`time`); False: the machine's (plan.machine_dir), its rows follow the disk.
    """
    result = ScanResult([], Drift(), [])
    try:
        _scan(root, known, prune, verify, now_ns, stop, dir_time, result)
    finally:
        result.drift.settle_dir_times(o.path for o in result.observed if o.temp)
    return result


def _scan(root: str, known: Iterable[IndexRow], prune: Callable[[str], bool], verify: bool,
          now_ns: Callable[[], int], stop: threading.Event | None, dir_time: Callable[[str], bool],
          result: ScanResult) -> None:
    hasher: Hasher | Prehashed = Hasher()

    def onerror(rel: str, exc: OSError) -> None:
        result.errors.append(f"cannot read {rel or '.'}: {exc.strerror or exc}")

    disk = walk(root, prune=prune, onerror=onerror)
    rows = (r for r in known if not prune(r.path))
    merged: Iterator[tuple[str, os.stat_result | None, IndexRow | None]] = _merge(disk, rows)
    if not verify:
        _scan_part(root, merged, hasher, verify, now_ns, stop, dir_time, result)
        return
    # every file is read: take the tree in slices (memory stays bounded by a slice, not the tree)
    # and hash each slice's files in parallel before looking at them in order
    while part := list(itertools.islice(merged, VERIFY_SLICE)):
        hasher = Prehashed(root, [p for p, s, _ in part if s is not None and st.S_ISREG(s.st_mode)
                                   and s.st_size >= BIG_FILE and not is_temp_name(p)], stop)
        try:
            _scan_part(root, part, hasher, verify, now_ns, stop, dir_time, result)
        finally:
            hasher.close()


def _scan_part(root: str, merged: Iterable[tuple[str, os.stat_result | None, IndexRow | None]],
               hasher: Hasher | Prehashed, verify: bool, now_ns: Callable[[], int], stop: threading.Event | None,
               dir_time: Callable[[str], bool], result: ScanResult) -> None:
    """Each path's verdict and, for the suspects, what it is now; drift by category."""
    for path, s, row in merged:
        if stop is not None and stop.is_set():
            raise Interrupted(f"stopped by {signal_name(stop)} during the scan")  # a partial scan is never planned on
        if s is None:
            assert row is not None
            result.gone.append(path)
            if row.managed:
                result.drift.deleted.append(path)
            continue
        try:
            _one(root, path, s, row, verify, hasher, now_ns, dir_time, result)
        except OSError as exc:
            if isinstance(exc, FileNotFoundError) and row is not None:
                result.gone.append(path)  # vanished while we looked
                if row.managed:
                    result.drift.deleted.append(path)
            elif not isinstance(exc, FileNotFoundError):
                result.errors.append(f"cannot read {path}: {exc.strerror or exc}")


def _one(root: str, path: str, s: os.stat_result, row: IndexRow | None, verify: bool, hasher: Hasher | Prehashed,
         now_ns: Callable[[], int], dir_time: Callable[[str], bool], result: ScanResult) -> None:
    facts = StatFacts.from_stat(s)
    if is_temp_name(path) and facts.kind == "file":
        result.observed.append(Observed(path, "file", facts.mode, facts.size, temp=True))
        return
    verdict = classify(facts, row)
    if verdict.reason:
        result.reasons[verdict.reason] = result.reasons.get(verdict.reason, 0) + 1
        log.debug("%s: %s (%s)", path, verdict.state, verdict.reason)
    full = os.path.join(root, path)
    xxh: str | None = None
    target: str | None = None
    trusted = verdict.state == UNCHANGED and not verify
    if facts.kind == "file":
        if trusted:
            assert row is not None
            xxh = row.xxh
        else:
            xxh, fs = hasher.file(full, path) if isinstance(hasher, Prehashed) else hasher.file(full)
            facts = StatFacts.from_stat(fs)
            result.hashed += 1
            result.bytes_hashed += facts.size
    elif facts.kind == "symlink":
        target = row.target if trusted and row is not None else os.readlink(full)
    # extended attributes move ctime: read only for suspects (and rows that never had them read)
    xattrs = row.xattrs if trusted and row is not None and row.uid is not None else _xattrs_text(full)
    same = row is not None and _same(facts, xxh, target, row)
    in_store = same and row is not None and row.managed and (facts.kind != "file" or row.oid is not None)
    link_ok = _link_ok(path, facts, row, result.leaders)
    timed = facts.kind != "dir" or dir_time(path)  # (a directory's mtime: only where it is the target's)
    result.observed.append(Observed(path, facts.kind, facts.mode, facts.size, xxh, target, in_store,
                                    False, facts.uid, facts.gid, facts.mtime_ns, decode_xattrs(xattrs),
                                    facts.inode, facts.rdev))
    if row is None:
        result.drift.created.append(path)
    elif row.managed:
        _drift(path, facts, xxh, target, xattrs, row, link_ok, timed, result.drift)
    stale = row is not None and (facts.mtime_ns, facts.ctime_ns, facts.inode) != (row.mtime_ns, row.ctime_ns,
                                                                                 row.inode)
    meta_same = row is not None and (row.uid is None or ((facts.uid, facts.gid) == (row.uid, row.gid)
                                                         and xattrs == row.xattrs and link_ok))
    if ((not trusted or stale) and row is not None and _same(facts, xxh, target, row) and facts.mode == row.mode
            and meta_same and (row.uid is None or not timed or facts.mtime_ns == row.mtime_ns)):
        # confirmed unchanged: refresh the facts so the next run trusts the stat again
        known = row.uid is not None  # owners and attributes recorded only where the row had them
        result.rows.append(IndexRow(path, facts.kind, facts.mode, facts.size, facts.mtime_ns, facts.ctime_ns,
                                    facts.inode, xxh, row.oid, target, row.managed, now_ns(),
                                    facts.uid if known else None, facts.gid if known else None,
                                    xattrs if known else None, row.link, facts.rdev))


def _xattrs_text(full: str) -> str | None:
    try:
        found = read_xattrs(full)
    except OSError:
        return None
    return encode_xattrs(found) if found else None


def _link_ok(path: str, facts: StatFacts, row: IndexRow | None, leaders: dict[str, int]) -> bool:
    """A managed hard-link member still shares its group's first member's inode (first members are
    met first: tree order)."""
    if row is None or row.link is None or facts.kind != "file":
        return True
    if row.link == path:
        leaders[path] = facts.inode
        return True
    return leaders.get(row.link) == facts.inode


def _drift(path: str, facts: StatFacts, xxh: str | None, target: str | None, xattrs: str | None, row: IndexRow,
           link_ok: bool, timed: bool, drift: Drift) -> None:
    """Which categories a managed path drifted in from its row (the state regend last left it in)."""
    if row.kind != facts.kind or (facts.kind == "file" and (xxh != row.xxh or facts.size != row.size)) or (
            row.rdev is not None and facts.rdev != row.rdev):
        drift.modified.append(path)
        return
    if (facts.kind != "symlink" and facts.mode != row.mode) or (facts.kind == "symlink" and target != row.target):
        drift.meta.append(path)
    if row.uid is None:
        return
    if (facts.uid, facts.gid) != (row.uid, row.gid):
        drift.owner.append(path)
    if xattrs != row.xattrs:
        drift.xattr.append(path)
    if not link_ok:
        drift.link.append(path)
    if timed and facts.mtime_ns != row.mtime_ns:
        drift.time.append(path)


def _same(facts: StatFacts, xxh: str | None, target: str | None, row: IndexRow) -> bool:
    if facts.kind != row.kind:
        return False
    if facts.kind == "file":
        return xxh == row.xxh and facts.size == row.size
    if facts.kind == "symlink":
        return target == row.target
    if row.rdev is not None:
        return facts.rdev == row.rdev
    return True


def confirm_racy(root: str, known: Callable[[str], IndexRow | None], paths: list[str]) -> list[IndexRow] | None:
    """Read the files the no-change fast path found inside the racy-timestamp window and compare
    each with its row, as the full scan would: all equal -> their rows, refreshed (checked now);
    any surprise -> None (the full scan decides)."""
    hasher = Hasher()
    fresh: list[IndexRow] = []
    for path in paths:
        row = known(path)
        if row is None or row.kind not in ("file", "symlink"):
            return None
        full = os.path.join(root, path)
        try:
            if row.kind == "file":
                xxh, s = hasher.file(full)
                same = xxh == row.xxh
            else:
                s = os.lstat(full)
                same = os.readlink(full) == row.target
        except OSError:
            return None
        f = StatFacts.from_stat(s)
        if (not same or f.kind != row.kind or f.size != row.size or f.mode != row.mode
                or f.mtime_ns != row.mtime_ns or f.ctime_ns != row.ctime_ns or f.inode != row.inode):
            return None
        fresh.append(replace(row, checked_ns=time.time_ns()))
    return fresh


def row_for(path: str, s: os.stat_result, *, xxh: str | None = None, oid: str | None = None,
            target: str | None = None, managed: bool = True, checked_ns: int | None = None,
            xattrs: str | None = None, link: str | None = None, meta: bool = False) -> IndexRow:
    """An index row from an lstat taken after regend wrote (or confirmed) the path. `meta`: the
    path's entry is format 2, so owner, mtime and the extended attributes read back from it
    (encode_xattrs; None: none) are watched too; else they are not recorded (format 1 leaves them
    to the machine)."""
    f = StatFacts.from_stat(s)
    return IndexRow(path, f.kind, f.mode, f.size, f.mtime_ns, f.ctime_ns, f.inode, xxh, oid, target, managed,
                    time.time_ns() if checked_ns is None else checked_ns, f.uid if meta else None,
                    f.gid if meta else None, xattrs if meta else None, link, f.rdev)


__all__ = ["CHANGED", "RACY_WINDOW_NS", "UNCHANGED", "UNKNOWN", "Drift", "ScanResult", "StatFacts",
           "Verdict", "classify", "confirm_racy", "row_for", "scan"]
