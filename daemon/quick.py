"""The no-change fast path: prove by stat alone that the tree is exactly what the index says.

Most runs and checks find nothing to do. `unchanged()` walks root once in a tight loop and
compares each path's lstat with its index row (the same rules as scan.classify: kind, mode,
size, mtime, ctime, inode, and the racy-timestamp window); the first surprise -- a new,
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
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# the same rules as scan.py (kept here, not imported, so this path imports nothing heavy)
RACY_WINDOW_NS = 2_000_000_000
TEMP_PREFIX = ".regen-tmp-"
_S_IFMT = 0o170000
_S_IFDIR, _S_IFREG, _S_IFLNK = 0o040000, 0o100000, 0o120000
_TYPE = {"file": _S_IFREG, "dir": _S_IFDIR, "symlink": _S_IFLNK}
# row tuple fields (Index.row_map): kind, mode, size, mtime_ns, ctime_ns, inode, managed, checked_ns


@dataclass(frozen=True, slots=True)
class Unchanged:
    paths: int                 # paths seen (what a full scan reports as observed)
    unmanaged: list[str]       # unmanaged rows (kept paths), tree order
    unmanaged_kinds: list[str]


def clean_key(target: dict[str, Any], policy: dict[str, Any], root: str, state_dir: str) -> str:
    return json.dumps({"target": target, "policy": policy, "root": root, "state_dir": state_dir}, sort_keys=True)


def unchanged(root: str, rows: dict[str, tuple[Any, ...]], prune: Callable[[str], bool] | None, *,
              strict_dirs: bool, racy: list[str] | None = None) -> Unchanged | None:
    """Every path under root has its index row and matches it by stat (no hashing needed); else None.

    `rows` maps path -> row tuple in tree order (Index.row_map) and is consumed. `prune` as in
    scan (None: nothing pruned). `strict_dirs` also requires a directory's mtime/ctime/inode to
    match (a run refreshes such rows; a read-only check only needs the mode). `racy`: when given,
    a file or symlink matching its row in every stat field but inside the racy-timestamp window
    (typically one regend itself just wrote) is appended to it instead of answering None; the
    caller must then hash (read) each one and compare it with its row (as the full scan would).
    """
    unmanaged = [p for p, r in rows.items() if not r[6] and not (prune is not None and prune(p))]
    kinds = [rows[p][0] for p in unmanaged]
    pending = [(root, "")]
    pop = rows.pop
    seen = 0
    while pending:
        full, base = pending.pop()
        try:
            it = os.scandir(full)
        except OSError:
            return None
        with it:
            for entry in it:
                name = entry.name
                rel = base + name
                if prune is not None and prune(rel):
                    continue
                try:
                    s = entry.stat(follow_symlinks=False)
                except OSError:
                    return None
                row = pop(rel, None)
                if row is None:
                    return None
                seen += 1
                mode = s.st_mode
                fmt = mode & _S_IFMT
                kind = row[0]
                expected = _TYPE.get(kind)
                if expected is None:  # special: any non file/dir/symlink type
                    if fmt in (_S_IFREG, _S_IFDIR, _S_IFLNK):
                        return None
                elif fmt != expected:
                    return None
                if mode & 0o7777 != row[1] or row[3] is None:
                    return None
                if fmt == _S_IFDIR:
                    if strict_dirs and (s.st_mtime_ns != row[3] or s.st_ctime_ns != row[4] or s.st_ino != row[5]):
                        return None
                    pending.append((entry.path, rel + "/"))
                    continue
                if name.startswith(TEMP_PREFIX):
                    return None
                m = s.st_mtime_ns
                if (m != row[3] or s.st_ctime_ns != row[4] or s.st_ino != row[5]
                        or (fmt == _S_IFREG and s.st_size != row[2])):
                    return None
                if m >= row[7] - RACY_WINDOW_NS:
                    if racy is None or fmt not in (_S_IFREG, _S_IFLNK):
                        return None
                    racy.append(rel)
    for path in rows:  # indexed but not seen: only pruned paths may be
        if prune is None or not prune(path):
            return None
    return Unchanged(seen, unmanaged, kinds)


def no_drift() -> dict[str, Any]:
    """Drift.as_report() of no drift."""
    return {k: {"count": 0, "paths": []} for k in ("deleted", "created", "modified", "meta")}


def keep_plan(found: Unchanged, junk: str) -> dict[str, Any] | None:
    """The repair plan of a clean, unchanged tree (stats and summary as Plan's), or None if the
    kept paths would not simply stay (junk = "quarantine" removes unmanaged files: full path)."""
    if junk != "keep" and any(k != "special" for k in found.unmanaged_kinds):
        return None
    names = ("quarantine", "delete", "mkdir", "create", "replace", "symlink", "chmod", "keep")
    stats: dict[str, Any] = {n: 0 for n in names}
    stats["keep"] = len(found.unmanaged)
    stats["bytes_to_write"] = 0
    stats["operations"] = 0
    summary = {n: {"count": 0, "paths": []} for n in names}
    summary["keep"] = {"count": len(found.unmanaged), "paths": found.unmanaged[:20]}
    return {**stats, "plan": summary}


__all__ = ["Unchanged", "clean_key", "keep_plan", "no_drift", "unchanged"]
