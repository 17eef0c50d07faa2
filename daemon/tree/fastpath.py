"""The no-change fast path: prove by stat alone that the tree is exactly what the index says.

Most runs and checks find nothing to do. `unchanged()` walks root once in a tight loop and
compares each path's lstat with its index row by the one stat verdict scan.classify asks too
(verdict.stat_verdict: kind, mode, size, mtime, ctime, inode, the racy-timestamp window); the
first surprise -- a new,
vanished, changed, racy, temporary or unreadable path -- answers None and the caller falls
back to the full scan, which hashes, reports and repairs. It never decides anything the full
scan would decide differently; it only skips work when there is provably none.

`clean_key()` fingerprints what a repair plan depends on besides the disk (the target's
manifests and policy merged with the client's, root, state_dir). The agent records it in the
index after an apply that left nothing unfinished: with the key unchanged and `unchanged()`
true, the repair plan is empty without reading the manifest.
"""

from __future__ import annotations

import json
import marshal
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import xxhash

from regen.daemon.tree.verdict import (
    KIND_OF_FMT,
    S_IFDIR,
    S_IFLNK,
    S_IFMT,
    S_IFREG,
    ContentRow,
    StatRow,
    stat_verdict,
)

# plan.TEMP_PREFIX (not imported: this path imports nothing heavy)
TEMP_PREFIX = ".regen-tmp-"
# a fingerprint's trace: per path (root first as "") rel, mode, size, mtime_ns, ctime_ns, inode
_TRACE_FIELDS = 6


@dataclass(frozen=True, slots=True)
class Unchanged:
    paths: int                 # paths seen (what a full scan reports as observed)
    unmanaged: list[str]       # unmanaged rows (kept paths), tree order
    unmanaged_kinds: list[str]


def clean_key(target: dict[str, Any], policy: dict[str, Any], root: str, state_dir: str) -> str:
    return json.dumps({"target": target, "policy": policy, "root": root, "state_dir": state_dir}, sort_keys=True)


def unchanged(root: str, rows: dict[str, StatRow], prune: Callable[[str], bool] | None, *,
              strict_dirs: bool, racy: list[str] | None = None, trace: list[Any] | None = None) -> Unchanged | None:
    """Every path under root has its index row and matches it by stat (no hashing needed); else None.

    `rows` maps path -> row in tree order (Index.row_map) and is consumed. `prune` as in
    scan (None: nothing pruned). `strict_dirs` also requires a directory's mtime/ctime/inode to
    match (a run refreshes such rows; a read-only check only needs the mode). `racy`: when given,
    a file or symlink matching its row in every stat field but inside the racy-timestamp window
    (typically one regend itself just wrote) is appended to it instead of answering None; the
    caller must then hash (read) each one and compare it with its row (as the full scan would).
    `trace`: when given, collects what `fingerprint()` digests (the walk is the same).
    """
    unmanaged, kinds = _kept(rows, prune)
    pop = rows.pop
    kind_of = KIND_OF_FMT
    seen = 0
    try:
        for rel, s in _walk(root, prune, trace):
            row = pop(rel, None)
            if row is None:
                return None
            seen += 1
            mode = s.st_mode
            fmt = mode & S_IFMT
            if TEMP_PREFIX in rel and fmt != S_IFDIR and rel.rpartition("/")[2].startswith(TEMP_PREFIX):
                return None
            why = stat_verdict(kind_of[fmt], mode & 0o7777, s.st_size if fmt == S_IFREG else 0,
                               s.st_mtime_ns, s.st_ctime_ns, s.st_ino, row, strict_dirs)
            if why:
                if why != "racy" or racy is None or fmt not in (S_IFREG, S_IFLNK):
                    return None
                racy.append(rel)
    except OSError:
        return None
    for path in rows:  # indexed but not seen: only pruned paths may be
        if prune is None or not prune(path):
            return None
    return Unchanged(seen, unmanaged, kinds)


def verified(root: str, rows: dict[str, ContentRow], prune: Callable[[str], bool] | None,
             small: Callable[[str], str | None], big: int,
             submit: Callable[[str], Any]) -> tuple[Unchanged, int] | None:
    """A full verify's fast path: every path under root has its row and the same content (files
    hashed, symlink targets read), kind and mode; else None (the full scan reports the drift).
    `rows` as Index.row_map(content=True), consumed. Stat times and inodes may differ (content
    is the truth here). Files under `big` bytes are hashed by `small` inline, larger ones handed
    to `submit` (a future whose result is the digest: worker threads hash them while the walk
    goes on); both answer the xxh3-128 or None if unreadable. Rows with format-2 metadata also
    need their ctime unchanged (a chown, setcap, setfacl or broken link moves it; the full scan
    then compares the metadata). Returns what `unchanged()` would and the number of files hashed."""
    unmanaged, kinds = _kept(rows, prune)
    pop = rows.pop
    seen = 0
    large: list[tuple[Any, str | None]] = []
    hashed = 0
    try:
        for rel, s in _walk(root, prune, None):
            row = pop(rel, None)
            if row is None:
                return None
            seen += 1
            mode = s.st_mode
            fmt = mode & S_IFMT
            if KIND_OF_FMT[fmt] != row.kind or mode & 0o7777 != row.mode:
                return None
            if fmt == S_IFREG:
                if s.st_size != row.size or rel.rpartition("/")[2].startswith(TEMP_PREFIX):
                    return None
                hashed += 1
                if s.st_size >= big:
                    large.append((submit(rel), row.xxh))
                elif small(rel) != row.xxh:
                    return None
            elif fmt == S_IFLNK and os.readlink(os.path.join(root, rel)) != row.target:
                return None
            if row.uid is not None and s.st_ctime_ns != row.ctime_ns:  # owner, attributes, links: the full scan looks
                return None
    except OSError:
        return None
    for path in rows:
        if prune is None or not prune(path):
            return None
    if any(future.result() != xxh for future, xxh in large):
        return None
    return Unchanged(seen, unmanaged, kinds), hashed


def _kept(rows: dict[str, StatRow] | dict[str, ContentRow],
          prune: Callable[[str], bool] | None) -> tuple[list[str], list[str]]:
    """The unmanaged rows (kept paths) not pruned, and their kinds, in tree order."""
    unmanaged = [p for p, r in rows.items() if not r.managed and not (prune is not None and prune(p))]
    return unmanaged, [rows[p].kind for p in unmanaged]


def _walk(root: str, prune: Callable[[str], bool] | None, trace: list[Any] | None) -> Iterator[tuple[str, Any]]:
    """(path, lstat) of everything under root but pruned paths, in one fixed order (a stack of
    directories, each in readdir order); `trace` (if given) gets the root's and every path's
    stat fields. Raises OSError."""
    if trace is not None:
        s = os.lstat(root)
        trace += ("", s.st_mode, s.st_size, s.st_mtime_ns, s.st_ctime_ns, s.st_ino)
    pending = [(root, "")]
    while pending:
        full, base = pending.pop()
        with os.scandir(full) as it:
            for entry in it:
                rel = base + entry.name
                if prune is not None and prune(rel):
                    continue
                s = entry.stat(follow_symlinks=False)
                if trace is not None:
                    trace += (rel, s.st_mode, s.st_size, s.st_mtime_ns, s.st_ctime_ns, s.st_ino)
                if s.st_mode & S_IFMT == S_IFDIR:
                    pending.append((entry.path, rel + "/"))
                yield rel, s


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """A digest of the stat of every path of a tree (names, kinds, modes, sizes, mtimes, ctimes,
    inodes; the root's too). Equal fingerprints: nothing was created, deleted, written, renamed or
    chmod-ed in between (a write always moves ctime, which no caller can set)."""

    digest: str
    paths: int             # paths walked, the root not counted (what a full scan observes)
    newest_ctime_ns: int   # the latest change anywhere in the tree, the root included


def fingerprint_of(trace: list[Any]) -> Fingerprint:
    return Fingerprint(xxhash.xxh3_128_hexdigest(marshal.dumps(trace, 2)),  # v2: no refs, stable bytes
                       len(trace) // _TRACE_FIELDS - 1, max(trace[4::_TRACE_FIELDS]))


def fingerprint(root: str, prune: Callable[[str], bool] | None) -> Fingerprint | None:
    """The tree's fingerprint (None: some path could not be read; the full path decides)."""
    trace: list[Any] = []
    try:
        for _ in _walk(root, prune, trace):
            pass
    except OSError:
        return None
    return fingerprint_of(trace)


def remembered(fp: Fingerprint, key: str, unmanaged: list[tuple[str, str]]) -> dict[str, Any]:
    """The index state ("tree") a run records when its fingerprint certifies a tree it verified:
    the clean key's id, the fingerprint, and the kept (unmanaged) paths a check reports."""
    return {"key": xxhash.xxh3_128_hexdigest(key.encode("utf-8", "surrogatepass")), "digest": fp.digest,
            "paths": fp.paths, "unmanaged": [list(u) for u in unmanaged]}


def recall(state: Any, key: str, root: str, prune: Callable[[str], bool] | None) -> Unchanged | None:
    """A check's fastest path: the tree still has the fingerprint a run recorded with this clean
    key (so it is exactly the tree that run verified) -> what `unchanged()` would answer, without
    loading a single index row. None: no record, another key, or the tree moved."""
    if not isinstance(state, dict) or state.get("key") != xxhash.xxh3_128_hexdigest(
            key.encode("utf-8", "surrogatepass")):
        return None
    fp = fingerprint(root, prune)
    if fp is None or fp.digest != state.get("digest") or fp.paths != state.get("paths"):
        return None
    kept = state.get("unmanaged") or []
    return Unchanged(fp.paths, [p for p, _ in kept], [k for _, k in kept])


def no_drift() -> dict[str, Any]:
    """Drift.as_report() of no drift."""
    return {k: {"count": 0, "paths": []} for k in ("deleted", "created", "modified", "meta")}


def keep_plan(found: Unchanged, junk: str) -> dict[str, Any] | None:
    """The repair plan of a clean, unchanged tree as a check reports a Plan (stats and summary),
    or None if the kept paths would not simply stay (junk = "quarantine" removes unmanaged files:
    full path)."""
    if junk != "keep" and any(k != "special" for k in found.unmanaged_kinds):
        return None
    from regen.daemon.tree.plan import Observed, Plan  # (only a check asks)

    plan = Plan(keep=tuple(Observed(p, k, 0) for p, k in zip(found.unmanaged, found.unmanaged_kinds, strict=True)))
    return {**plan.stats(), "plan": plan.summary()}


__all__ = ["Fingerprint", "Unchanged", "clean_key", "fingerprint", "fingerprint_of", "keep_plan", "no_drift",
           "recall", "remembered", "unchanged", "verified"]
