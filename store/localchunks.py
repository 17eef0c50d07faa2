"""The chunks of big files a client already holds on its own disk, which a rebuild reuses instead of
downloading them (packed stores, chunks.py).

Two sources: seeds -- the installed previous versions of big files being updated, cut into chunks
only when a rebuild first needs them -- and the chunk lists of content rebuilt earlier, kept under
the client's index cache and resolved to the local file that holds that content. Nothing here is
trusted: chunks.assemble verifies every chunk against its id when it reads it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable

from .chunks import chunks_of_file, encode_list, local_chunk_map
from .objects import ObjectId

ChunkMap = dict[ObjectId, tuple[str, int, int]]  # chunk id -> (local file, offset, length)
Resolver = Callable[[ObjectId], str | None]  # content id -> the local file holding it, or None


class LocalChunks:
    """One client's local chunk sources; thread-safe (a Store's fetches run in a pool)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seeds: list[str] = []  # local files not cut yet
        self._seeded: ChunkMap = {}  # ... and the chunks of those cut

    def seed(self, paths: Iterable[str]) -> None:
        """Local files whose chunks rebuilds may reuse; cut only if a chunk list is rebuilt."""
        with self._lock:
            self._seeds.extend(paths)

    def known(self, index_cache: str | None, resolve: Resolver | None) -> ChunkMap:
        """Every chunk this client holds: the seeds (cut once, by the first rebuild that needs them),
        then the kept chunk lists of content `resolve` still finds."""
        with self._lock:
            while self._seeds:
                for cid, where in chunks_of_file(self._seeds.pop()).items():
                    self._seeded.setdefault(cid, where)
            found = dict(self._seeded)
        if index_cache is None or resolve is None:
            return found
        found.update(local_chunk_map(os.path.join(index_cache, "chunklists"), resolve))
        return found

    @staticmethod
    def remember(index_cache: str | None, resolve: Resolver | None, oid: ObjectId,
                 parts: list[tuple[ObjectId, int]]) -> None:
        """Keep the chunk list of content just rebuilt, so the next version reuses its chunks (only
        for a client that keeps an index cache and can find its content again)."""
        if index_cache is None or resolve is None:
            return
        folder = os.path.join(index_cache, "chunklists")
        os.makedirs(folder, mode=0o700, exist_ok=True)
        with open(os.path.join(folder, oid), "wb") as fp:
            fp.write(encode_list(sum(n for _, n in parts), parts))


__all__ = ["ChunkMap", "LocalChunks", "Resolver"]
