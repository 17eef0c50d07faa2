"""Filling the object cache again from the tree, after an install moved its objects there (I/O).

Why: an install moves each object it fetched from the cache into the tree instead of copying
it (tree/apply.py, `move`), so each content is written and synced once, as rsync does. The
cache -- what lets repairs work with the store unreachable -- is then filled again by the next
run that leaves the tree clean, before any update: each object it lacks is compressed into it
(one zstd frame, as a fetch writes it) from a managed file that still has the stat its index row
recorded, while the cache's budget has room ([cache] max_bytes; the rest is fetched from the
store when a repair needs it). The copies are not synced (the cache needs no durability: an
entry is verified whenever it is used, and a bad one is dropped and fetched again), and a run
killed meanwhile leaves the flag set: the next clean run goes on.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import TYPE_CHECKING

from regen.daemon.errors import UnsafePath
from regen.daemon.run.scope import policy_of
from regen.daemon.tree.fsops import SafeRoot
from regen.store import EMPTY_ID, matches

if TYPE_CHECKING:
    from regen.daemon.config import DaemonConfig
    from regen.daemon.run.target import Target
    from regen.daemon.tree.cache import ObjectCache
    from regen.daemon.tree.index import Index, IndexRow

__all__ = ["REFILL", "refill"]

REFILL = "refill"   # index state: an install moved objects out of the cache
_CHUNK = 1 << 20


def refill(cfg: DaemonConfig, index: Index, cache: ObjectCache, installed: Target,
           stop: threading.Event | None = None) -> int | None:
    """Copy into the cache the objects of `installed` it lacks, from the tree; the number copied,
    or None when no install left the cache to fill. Base and preserved paths are left out (the
    cache never holds them: base paths are repaired from the store)."""
    if not index.state(REFILL):
        return None
    policy = policy_of(cfg, installed)
    preserve, base = policy.preserve, policy.base
    rows: dict[str, IndexRow] = {}
    for row in index.rows():
        if (row.kind == "file" and row.managed and row.oid and row.oid != EMPTY_ID and row.oid not in rows
                and not (preserve and matches(row.path, preserve)) and not (base and matches(row.path, base))):
            rows[row.oid] = row
    copied = 0
    room = cache.room()
    with SafeRoot(cfg.root) as sroot:
        for oid in cache.missing(rows):
            if stop is not None and stop.is_set():
                return copied  # (the flag stays: the next clean run goes on)
            if room is not None and rows[oid].size > room:
                continue  # (a frame is at most about its content's size)
            n = _copy(sroot, rows[oid], cache.dest(oid), cache)
            if n is not None:
                copied += 1
                if room is not None:
                    room -= n
    with index.atomic():
        index.set_state(REFILL, None)
    return copied


def _copy(sroot: SafeRoot, row: IndexRow, dest: str, cache: ObjectCache) -> int | None:
    """Compress `row`'s file into `dest` if it still has the stat its row recorded; the bytes the
    frame takes, or None if not copied."""
    try:
        src = sroot.open_file(row.path)
    except (OSError, UnsafePath):
        return None
    tmp = f"{dest}.refill-{os.getpid()}"  # (not an object's name: prune removes it if left)
    try:
        s = os.fstat(src)
        if (s.st_size, s.st_mtime_ns, s.st_ino) != (row.size, row.mtime_ns, row.inode):
            return None  # changed since it was checked: not a copy of its object
        with open(tmp, "wb") as out:
            with cache.compressing(out) as sink:
                while chunk := os.read(src, _CHUNK):
                    sink.write(chunk)
            size = out.tell()
        os.replace(tmp, dest)
        return size
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return None
    finally:
        os.close(src)
