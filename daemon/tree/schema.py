"""The system log's schema: its tables, and the migrations that made them, in order.

Tables (schema changes are Migrations("regen.daemon.tree.index") functions below, applied by index.py
at open; the set keeps the name it was first written with):
  entries   one row per path below root regend knows: kind, mode, size, mtime_ns, ctime_ns,
            inode, xxh3-128, object id, symlink target; `managed` 0 for unmanaged files kept
            (junk = "keep"); `checked_ns` when the row was last confirmed (racy-timestamp rule).
            Keyed by the path's bytes with '/' as 0x00, so ORDER BY key is tree order and a
            walk merge-joins against it without sorting or loading the table.
  state     small JSON values: store config cache (store id), installed generation, overlay.
  highest   the highest generation number ever accepted per channel / overlay per host.
  journal   the apply plan of a run, written before anything changes; `done` when finished.
  outbox    reports that could not be uploaded yet.
  failures  consecutive failures per step (loop detection across runs).
  hardware  the last hardware inventory (to notice shrunk memory, a vanished disk).

Each migration runs once per index file, in MIGRATIONS order: a new column or table is a new
function here, never an edit of one already shipped (index files in the field ran it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite3

    from sqlite_utils import Database
    from sqlite_utils.migrations import Migrations

MIGRATION_SET = "regen.daemon.tree.index"
MIGRATIONS = ("m001_initial", "m002_meta")   # in order; each a function below, registered by migrations()
_registered: list[Migrations] = []  # built once, on first use


def migrations() -> Migrations:
    """The schema migrations (sqlite-utils imported only when an index is opened for writing)."""
    if not _registered:
        from sqlite_utils.migrations import Migrations

        m = Migrations(MIGRATION_SET)
        for name in MIGRATIONS:
            m(name=name)(globals()[name])
        _registered.append(m)
    return _registered[0]


def m001_initial(db: Database) -> None:
    db.execute("""CREATE TABLE entries (
        key BLOB PRIMARY KEY, kind TEXT NOT NULL, mode INTEGER NOT NULL, size INTEGER NOT NULL DEFAULT 0,
        mtime_ns INTEGER, ctime_ns INTEGER, inode INTEGER, xxh TEXT, oid TEXT, target TEXT,
        managed INTEGER NOT NULL DEFAULT 1, checked_ns INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID""")
    db.execute("CREATE TABLE state (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("CREATE TABLE highest (scope TEXT NOT NULL, name TEXT NOT NULL, number INTEGER NOT NULL, "
               "PRIMARY KEY (scope, name))")
    db.execute("CREATE TABLE journal (run_id TEXT PRIMARY KEY, started TEXT NOT NULL, target TEXT NOT NULL, "
               "plan TEXT NOT NULL, ops_done INTEGER NOT NULL DEFAULT 0, status TEXT NOT NULL)")
    db.execute("CREATE TABLE outbox (id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, created TEXT NOT NULL, "
               "report BLOB NOT NULL)")
    db.execute("CREATE TABLE failures (step TEXT PRIMARY KEY, signature TEXT NOT NULL, count INTEGER NOT NULL, "
               "message TEXT NOT NULL)")
    db.execute("CREATE TABLE hardware (id INTEGER PRIMARY KEY CHECK (id = 1), inventory TEXT NOT NULL, "
               "recorded TEXT NOT NULL)")


def m002_meta(db: Database) -> None:
    """Format-2 metadata of what is on disk: owner ids, extended attributes (canonical JSON, NULL:
    none), the hard-link group a managed file belongs to, a device's number."""
    for col in ("uid INTEGER", "gid INTEGER", "xattrs TEXT", "link TEXT", "rdev INTEGER"):
        db.execute(f"ALTER TABLE entries ADD COLUMN {col}")


def is_current(conn: sqlite3.Connection) -> bool:
    """Whether an index file opened without sqlite-utils (a dry run's read-only open) has every
    migration applied; sqlite3.DatabaseError when it has no migrations table at all."""
    applied = [r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations WHERE migration_set = ? "
                                          "ORDER BY rowid", [MIGRATION_SET])]
    return all(m in applied for m in MIGRATIONS)


__all__ = ["MIGRATIONS", "MIGRATION_SET", "is_current", "m001_initial", "m002_meta", "migrations"]
