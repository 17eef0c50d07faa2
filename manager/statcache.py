"""The snapshot stat cache: what regen learned about each file of one source tree (SQLite I/O).

One database per (store id, absolute source path) under the cache dir, written with
sqlite-utils. A row holds a file's stat facts (size, mtime_ns, ctime_ns, inode, mode) and
its digests. The scan reads rows in tree order alongside the walk (a merge-join, so memory
does not grow with the tree), writes the rows of this scan into a `next` table, and `commit`
swaps it in: the cache always describes exactly one complete scan, and a crashed scan leaves
the previous one in place.

`scan_started_ns` is the wall clock at the start of that scan; a row is trusted only if its
mtime is safely older than it (see scan.reusable: git's racy-timestamp rule). The cache is a
hint for speed, never for trust: a damaged database is discarded and rebuilt.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlite_utils import Database

CACHE_FORMAT = 1
_PAGE = 4096
_FLUSH = 2048
_COLUMNS = ("key", "path", "size", "mtime_ns", "ctime_ns", "ino", "mode", "oid", "xxh")
_SCHEMA = {"key": bytes, "path": str, "size": int, "mtime_ns": int, "ctime_ns": int, "ino": int, "mode": int,
           "oid": str, "xxh": str}


@dataclass(frozen=True, slots=True)
class CachedFile:
    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    mode: int
    oid: str
    xxh: str

    @property
    def inode(self) -> int:  # (regen.store.KnownStat's name for it)
        return self.ino


def cache_path(cache_dir: Path, store_id: str, source: str) -> Path:
    digest = hashlib.sha256(os.fsencode(os.path.abspath(source))).hexdigest()[:20]
    return cache_dir / "snapshot" / f"{store_id[:32]}-{digest}.sqlite"


class StatCache:
    """Rows of the previous scan, read in ascending key order; rows of this scan, recorded."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.started_ns = time.time_ns()
        self.previous_started_ns = 0
        self._pending: list[tuple[object, ...]] = []

    @classmethod
    def open(cls, cache_dir: Path, store_id: str, source: str) -> StatCache:
        path = cache_path(cache_dir, store_id, source)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            return cls._open(path)
        except sqlite3.DatabaseError:
            # a damaged cache only costs a full re-read: start afresh
            for suffix in ("", "-journal", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
            return cls._open(path)

    @classmethod
    def _open(cls, path: Path) -> StatCache:
        db = Database(path)
        try:
            db.execute("PRAGMA synchronous=OFF")  # a lost cache is rebuilt; no need to pay for fsync
            version = None
            if db.table("meta").exists():
                row = db.execute("SELECT value FROM meta WHERE name='format'").fetchone()
                version = int(row[0]) if row else None
            if version != CACHE_FORMAT:
                for name in ("files", "next", "meta"):
                    db.table(name).drop(ignore=True)
                db.table("meta").create({"name": str, "value": int}, pk="name")
                db.table("meta").insert({"name": "format", "value": CACHE_FORMAT})
                db.conn.commit()
            db.table("files").create(_SCHEMA, pk="key", if_not_exists=True)
            db.table("next").drop(ignore=True)
            db.table("next").create(_SCHEMA, pk="key")
            cache = cls(db)
            row = db.execute("SELECT value FROM meta WHERE name='scan_started_ns'").fetchone()
            cache.previous_started_ns = int(row[0]) if row else 0
            return cache
        except BaseException:
            db.close()
            raise

    # -- the previous scan, in ascending key order -------------------------------------------
    def rows(self) -> Iterator[tuple[bytes, CachedFile]]:
        """The previous scan's rows as (key, row) in ascending key order (tree order: the scan
        merge-joins them with its walk), read a page at a time."""
        sql = "SELECT * FROM files ORDER BY key LIMIT ?"
        args: tuple[object, ...] = (_PAGE,)
        while True:
            rows = self.db.execute(sql, args).fetchall()
            for r in rows:
                yield bytes(r[0]), CachedFile(r[2], r[3], r[4], r[5], r[6], r[7], r[8])
            if len(rows) < _PAGE:
                return
            sql, args = "SELECT * FROM files WHERE key > ? ORDER BY key LIMIT ?", (bytes(rows[-1][0]), _PAGE)

    # -- this scan ------------------------------------------------------------------------------
    def record(self, key: bytes, path: str, st: os.stat_result, oid: str, xxh: str) -> None:
        self._pending.append((key, path, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_mode, oid, xxh))
        if len(self._pending) >= _FLUSH:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            # plain executemany: sqlite-utils' insert_all inspects every row, 5x slower here
            self.db.conn.executemany(f"INSERT INTO next VALUES ({','.join('?' * len(_COLUMNS))})", self._pending)
            self._pending.clear()

    def commit(self) -> None:
        """Make this scan the cache (atomically: the old rows stay if this fails)."""
        self._flush()
        conn = self.db.conn
        conn.commit()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("DROP TABLE files")
            conn.execute("ALTER TABLE next RENAME TO files")
            conn.execute("INSERT OR REPLACE INTO meta (name, value) VALUES ('scan_started_ns', ?)", (self.started_ns,))
            conn.commit()
        except BaseException:
            conn.rollback()
            raise

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> StatCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
