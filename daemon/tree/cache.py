"""The local object cache in state_dir: the objects of the installed generation (local I/O).

Objects are stored decoded (the file's content itself) at objects/<2 hex>/<62 hex>. They are
verified when fetched (Store.fetch_many streams through a verifying writer and renames only a
good copy into place) and again whenever one is installed: apply hashes the bytes it writes,
and a mismatch deletes the entry (`discard`) so it is fetched again. Repairs therefore work
offline, and a corrupt cache entry can never reach a managed path.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from regen.store import EMPTY_ID, is_object_id

CACHE_DIR = "objects"


class ObjectCache:
    def __init__(self, state_dir: str) -> None:
        self.dir = os.path.join(state_dir, CACHE_DIR)

    def path(self, oid: str) -> str:
        return os.path.join(self.dir, oid[:2], oid[2:])

    def has(self, oid: str) -> bool:
        return oid == EMPTY_ID or os.path.isfile(self.path(oid))

    def dest(self, oid: str) -> str:
        """Where a fetch writes `oid` (its fan-out directory created): for Store.fetch_many."""
        p = self.path(oid)
        os.makedirs(os.path.dirname(p), mode=0o700, exist_ok=True)
        return p

    def missing(self, oids: Iterable[str]) -> list[str]:
        """The ids of `oids` not in the cache: one listing per fan-out directory concerned
        instead of a stat per object (an update checks every object of the generation)."""
        wanted = {o for o in oids if o != EMPTY_ID}
        if len(wanted) <= 64:
            return sorted(o for o in wanted if not self.has(o))
        fans: dict[str, set[str]] = {}
        for o in wanted:
            fans.setdefault(o[:2], set()).add(o[2:])
        out: list[str] = []
        for fan, rests in fans.items():
            present: set[str] = set()
            try:
                with os.scandir(os.path.join(self.dir, fan)) as it:
                    present = {e.name for e in it if e.name in rests and e.is_file()}
            except (FileNotFoundError, NotADirectoryError):
                pass
            out.extend(fan + r for r in rests - present)
        out.sort()
        return out

    def discard(self, oid: str) -> None:
        try:
            os.unlink(self.path(oid))
        except FileNotFoundError:
            pass

    def oids(self) -> list[str]:
        out: list[str] = []
        if not os.path.isdir(self.dir):
            return out
        for fan in sorted(os.listdir(self.dir)):
            sub = os.path.join(self.dir, fan)
            if len(fan) != 2 or not os.path.isdir(sub):
                continue
            for rest in os.listdir(sub):
                if is_object_id(fan + rest):
                    out.append(fan + rest)
        return out

    def prune(self, keep: set[str]) -> tuple[int, int]:
        """Delete objects not in `keep` (after an update) and stray temp files; (count, bytes) freed."""
        count = size = 0
        if not os.path.isdir(self.dir):
            return 0, 0
        for fan in os.listdir(self.dir):
            sub = os.path.join(self.dir, fan)
            if not os.path.isdir(sub):
                continue
            for rest in os.listdir(sub):
                if fan + rest in keep:
                    continue
                p = os.path.join(sub, rest)
                try:
                    size += os.lstat(p).st_size
                    os.unlink(p)
                    count += 1
                except FileNotFoundError:
                    pass
        return count, size

    def total_bytes(self) -> int:
        total = 0
        for oid in self.oids():
            try:
                total += os.lstat(self.path(oid)).st_size
            except FileNotFoundError:
                pass
        return total


__all__ = ["CACHE_DIR", "ObjectCache"]
