"""The system log: regend's SQLite index in state_dir (I/O; this module alone reads and writes it).

Its tables and the migrations that make them are schema.py's, applied at open (ORDER BY key
of `entries` is tree order: a walk merge-joins against it without sorting or loading the table).

WAL mode, synchronous=FULL (the journal must be on disk before the tree changes), explicit
transactions (`atomic()`), one long-lived connection closed explicitly. A file SQLite
cannot read is set aside (renamed, kept) by `open_index` and rebuilt by a full verify.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, overload

from regen.daemon.errors import IndexCorrupt
from regen.daemon.tree.schema import is_current, migrations
from regen.daemon.tree.verdict import ContentRow, StatRow
from regen.store import sort_key

if TYPE_CHECKING:
    from sqlite_utils import Database

INDEX_NAME = "index.db"
_FS_ENCODING, _FS_ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()  # os.fsencode's


def path_key(path: str) -> bytes:
    """Tree-order key of a path: regen.store.sort_key, the one key (its bytes, surrogate-escaped
    names too, with '/' as 0x00)."""
    return sort_key(path)


def key_path(key: bytes) -> str:
    return bytes(key).replace(b"\x00", b"/").decode(_FS_ENCODING, _FS_ERRORS)


@dataclass(frozen=True, slots=True)
class IndexRow:
    path: str
    kind: str                   # file | dir | symlink | special
    mode: int
    size: int = 0
    mtime_ns: int | None = None  # None: never stat'ed (seeded from a manifest): always re-checked
    ctime_ns: int | None = None
    inode: int | None = None
    xxh: str | None = None
    oid: str | None = None      # the store object this content is (None: unknown, e.g. kept junk)
    target: str | None = None
    managed: bool = True
    checked_ns: int = 0
    uid: int | None = None      # None: not known (a row from before format 2, or seeded from a manifest)
    gid: int | None = None
    xattrs: str | None = None   # encode_xattrs() of the attributes on disk; None: none
    link: str | None = None     # the hard-link group's first member (the target's), for managed files
    rdev: int | None = None     # st_rdev of a device node

    def as_tuple(self) -> tuple[Any, ...]:
        return (path_key(self.path), self.kind, self.mode, self.size, self.mtime_ns, self.ctime_ns, self.inode,
                self.xxh, self.oid, self.target, int(self.managed), self.checked_ns, self.uid, self.gid, self.xattrs,
                self.link, self.rdev)


_COLS = ("key, kind, mode, size, mtime_ns, ctime_ns, inode, xxh, oid, target, managed, checked_ns, uid, gid, xattrs, "
         "link, rdev")


def _row(t: tuple[Any, ...]) -> IndexRow:
    return IndexRow(key_path(t[0]), t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9], bool(t[10]), t[11],
                    t[12], t[13], t[14], t[15], t[16])


# (path, kind, mode, size, xxh, target, in_store, uid, gid, mtime_ns, xattrs, inode, rdev): Observed's fields
Facts = tuple[Any, ...]
_FACTS = ("key, kind, mode, size, xxh, target, managed AND (kind != 'file' OR oid IS NOT NULL), uid, gid, mtime_ns, "
          "xattrs, inode, rdev")


@dataclass(frozen=True, slots=True)
class Journal:
    run_id: str
    started: str
    target: dict[str, Any]
    plan: dict[str, Any]
    ops_done: int
    status: str


class Index:
    """The system log. Construct with `open_index` (file) or `Index.memory()` (tests, dry runs)."""

    def __init__(self, db: Database, path: str | None, readonly: bool = False) -> None:
        self.db = db
        self.path = path
        self.readonly = readonly

    @classmethod
    def memory(cls) -> Index:
        from sqlite_utils import Database

        db = Database(memory=True)
        migrations().apply(db)
        return cls(db, None)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """One transaction: every scan batch and apply step commits as a whole or not at all."""
        try:
            with self.db.atomic():
                yield
        except sqlite3.DatabaseError as exc:
            raise _corrupt(self.path, exc) from exc

    def _q(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return list(self.db.execute(sql, list(params)).fetchall())
        except sqlite3.DatabaseError as exc:
            raise _corrupt(self.path, exc) from exc

    def _x(self, sql: str, params: Iterable[Any] = ()) -> None:
        self._writing()
        try:
            self.db.execute(sql, list(params))
        except sqlite3.DatabaseError as exc:
            raise _corrupt(self.path, exc) from exc

    def _writing(self) -> None:
        """Every write belongs to an explicit transaction (a stray implicit one would be lost at close)."""
        if not self.db.conn.in_transaction:
            raise RuntimeError("index writes must happen inside Index.atomic()")

    # -- entries ------------------------------------------------------------------------------
    def rows(self) -> Iterator[IndexRow]:
        """Every row in tree order, streamed."""
        try:
            cur = self.db.execute(f"SELECT {_COLS} FROM entries ORDER BY key")
            for t in cur:
                yield _row(t)
        except sqlite3.DatabaseError as exc:
            raise _corrupt(self.path, exc) from exc

    @overload
    def row_map(self, content: Literal[False] = False) -> dict[str, StatRow]: ...
    @overload
    def row_map(self, content: Literal[True]) -> dict[str, ContentRow]: ...

    def row_map(self, content: bool = False) -> dict[str, StatRow] | dict[str, ContentRow]:
        """Every row as path -> StatRow (ContentRow with `content`), in tree order, from one query
        (the no-change fast path: no IndexRow objects)."""
        extra, row = (", xxh, target", ContentRow) if content else ("", StatRow)
        make: Callable[..., Any] = tuple.__new__  # the row from the selected columns as they are (its fields)
        try:
            cur = self.db.conn.execute("SELECT key, kind, mode, size, mtime_ns, ctime_ns, inode, managed, checked_ns, "
                                       f"uid{extra} FROM entries ORDER BY key")
            return {t[0].decode(_FS_ENCODING, _FS_ERRORS).replace("\0", "/"): make(row, t[1:]) for t in cur}
        except sqlite3.DatabaseError as exc:
            raise _corrupt(self.path, exc) from exc

    def unmanaged(self) -> list[tuple[str, str]]:
        """(path, kind) of every unmanaged row (kept paths), in tree order."""
        try:
            cur = self.db.conn.execute("SELECT key, kind FROM entries WHERE NOT managed ORDER BY key")
            return [(key_path(t[0]), t[1]) for t in cur]
        except sqlite3.DatabaseError as exc:
            raise _corrupt(self.path, exc) from exc

    def observed_facts(self) -> Iterator[Facts]:
        """Every row as (path, kind, mode, size, xxh, target, in_store, uid, gid, mtime_ns, xattrs,
        inode, rdev) in tree order, from one query without per-row objects (an update plans
        against the disk as the index knows it; in_store: managed, and a file's content is a
        store object)."""
        try:
            cur = self.db.conn.execute(f"SELECT {_FACTS} FROM entries ORDER BY key")
            for t in cur:
                yield (key_path(t[0]), t[1], t[2], t[3], t[4], t[5], bool(t[6]), *t[7:])
        except sqlite3.DatabaseError as exc:
            raise _corrupt(self.path, exc) from exc

    def observed_facts_at(self, paths: Iterable[str] | None) -> list[Facts]:
        """observed_facts() of the rows at `paths` (those indexed), or of every unmanaged row (None)."""
        sql = f"SELECT {_FACTS} FROM entries WHERE "
        try:
            if paths is None:
                rows = self.db.conn.execute(sql + "NOT managed").fetchall()
            else:
                rows = []
                for p in paths:
                    rows.extend(self.db.conn.execute(sql + "key = ?", [path_key(p)]).fetchall())
            return [(key_path(t[0]), t[1], t[2], t[3], t[4], t[5], bool(t[6]), *t[7:]) for t in rows]
        except sqlite3.DatabaseError as exc:
            raise _corrupt(self.path, exc) from exc

    def get(self, path: str) -> IndexRow | None:
        found = self._q(f"SELECT {_COLS} FROM entries WHERE key = ?", [path_key(path)])
        return _row(found[0]) if found else None

    def count(self) -> int:
        return int(self._q("SELECT count(*) FROM entries")[0][0])

    def put_rows(self, rows: Iterable[IndexRow]) -> None:
        self._writing()
        try:
            self.db.conn.executemany(f"INSERT OR REPLACE INTO entries ({_COLS}) VALUES "
                                     "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                                     (r.as_tuple() for r in rows))
        except sqlite3.DatabaseError as exc:
            raise _corrupt(self.path, exc) from exc

    def delete_paths(self, paths: Iterable[str]) -> None:
        self._writing()
        try:
            self.db.conn.executemany("DELETE FROM entries WHERE key = ?", ((path_key(p),) for p in paths))
        except sqlite3.DatabaseError as exc:
            raise _corrupt(self.path, exc) from exc

    def clear_entries(self) -> None:
        self._x("DELETE FROM entries")

    # -- state --------------------------------------------------------------------------------
    def state(self, name: str, default: Any = None) -> Any:
        found = self._q("SELECT value FROM state WHERE name = ?", [name])
        return json.loads(found[0][0]) if found else default

    def set_state(self, name: str, value: Any) -> None:
        if value is None:
            self._x("DELETE FROM state WHERE name = ?", [name])
        else:
            self._x("INSERT OR REPLACE INTO state (name, value) VALUES (?, ?)", [name, json.dumps(value)])

    def highest(self, scope: str, name: str) -> int | None:
        found = self._q("SELECT number FROM highest WHERE scope = ? AND name = ?", [scope, name])
        return int(found[0][0]) if found else None

    def raise_highest(self, scope: str, name: str, number: int) -> None:
        """Record an accepted number; never lowers (rollback protection survives everything)."""
        self._x("INSERT INTO highest (scope, name, number) VALUES (?, ?, ?) ON CONFLICT (scope, name) "
                "DO UPDATE SET number = max(number, excluded.number)", [scope, name, number])

    def reset_highest(self, scope: str, name: str, number: int) -> None:
        """Set an accepted number even below the old one: only for a verified new numbering epoch."""
        self._x("INSERT OR REPLACE INTO highest (scope, name, number) VALUES (?, ?, ?)", [scope, name, number])

    def all_highest(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for scope, name, number in self._q("SELECT scope, name, number FROM highest"):
            out.setdefault(scope, {})[name] = int(number)
        return out

    # -- journal ------------------------------------------------------------------------------
    def begin_journal(self, run_id: str, started: str, target: dict[str, Any], plan: dict[str, Any]) -> None:
        self._x("INSERT OR REPLACE INTO journal (run_id, started, target, plan, ops_done, status) "
                "VALUES (?, ?, ?, ?, 0, 'applying')", [run_id, started, json.dumps(target), json.dumps(plan)])

    def journal_progress(self, run_id: str, ops_done: int) -> None:
        self._x("UPDATE journal SET ops_done = ? WHERE run_id = ?", [ops_done, run_id])

    def finish_journal(self, run_id: str) -> None:
        """Done: keep only the latest finished entry (history lives in the reports)."""
        self._x("DELETE FROM journal WHERE run_id != ? AND status = 'done'", [run_id])
        self._x("UPDATE journal SET status = 'done' WHERE run_id = ?", [run_id])

    def pending_journal(self) -> Journal | None:
        found = self._q("SELECT run_id, started, target, plan, ops_done, status FROM journal "
                        "WHERE status != 'done' ORDER BY started DESC, run_id DESC LIMIT 1")
        if not found:
            return None
        r = found[0]
        return Journal(r[0], r[1], json.loads(r[2]), json.loads(r[3]), int(r[4]), r[5])

    def close_pending(self) -> None:
        self._x("UPDATE journal SET status = 'done' WHERE status != 'done'")

    # -- outbox -------------------------------------------------------------------------------
    def queue_report(self, run_id: str, created: str, data: bytes, keep: int = 100) -> None:
        self._x("INSERT INTO outbox (run_id, created, report) VALUES (?, ?, ?)", [run_id, created, data])
        # a host offline for months must not grow the log without bound: keep the newest
        self._x("DELETE FROM outbox WHERE id NOT IN (SELECT id FROM outbox ORDER BY id DESC LIMIT ?)", [keep])

    def outbox(self) -> list[tuple[int, str, bytes]]:
        return [(int(i), r, bytes(d)) for i, r, d in self._q("SELECT id, run_id, report FROM outbox ORDER BY id")]

    def outbox_size(self) -> int:
        return int(self._q("SELECT count(*) FROM outbox")[0][0])

    def drop_outbox(self, ident: int) -> None:
        self._x("DELETE FROM outbox WHERE id = ?", [ident])

    # -- failures -----------------------------------------------------------------------------
    def failure(self, step: str) -> tuple[str, int, str] | None:
        found = self._q("SELECT signature, count, message FROM failures WHERE step = ?", [step])
        return (found[0][0], int(found[0][1]), found[0][2]) if found else None

    def record_failure(self, step: str, signature: str, message: str) -> int:
        """Count consecutive failures of `step` with the same signature; return the new count."""
        prev = self.failure(step)
        count = prev[1] + 1 if prev and prev[0] == signature else 1
        self._x("INSERT OR REPLACE INTO failures (step, signature, count, message) VALUES (?, ?, ?, ?)",
                [step, signature, count, message])
        return count

    def clear_failure(self, step: str) -> None:
        self._x("DELETE FROM failures WHERE step = ?", [step])

    def failures(self) -> dict[str, tuple[str, int, str]]:
        return {s: (sig, int(c), m) for s, sig, c, m in self._q("SELECT step, signature, count, message FROM failures")}

    # -- hardware -----------------------------------------------------------------------------
    def inventory(self) -> dict[str, Any] | None:
        found = self._q("SELECT inventory FROM hardware WHERE id = 1")
        return json.loads(found[0][0]) if found else None

    def set_inventory(self, inventory: dict[str, Any], recorded: str) -> None:
        self._x("INSERT OR REPLACE INTO hardware (id, inventory, recorded) VALUES (1, ?, ?)",
                [json.dumps(inventory, sort_keys=True, default=str), recorded])


def _corrupt(path: str | None, exc: BaseException) -> IndexCorrupt:
    return IndexCorrupt(f"the system log {path or '(memory)'} is damaged: {exc}", path=path)


def open_index(state_dir: str) -> tuple[Index, str | None]:
    """Open (creating) state_dir/index.db; a damaged file is renamed aside and a fresh one made.

    Returns the index and the name the damaged file was set aside as (None if it was fine);
    the caller then rebuilds the rows with a full verify.
    """
    path = os.path.join(state_dir, INDEX_NAME)
    try:
        return _open_rw(path), None
    except sqlite3.OperationalError as exc:  # a full disk, I/O, a lock: not damage; never set aside (issue 13)
        raise IndexCorrupt(f"the system log {path} cannot be opened: {exc}", path=path,
                           hint="free space in state_dir (regend recover --list shows what quarantine holds); "
                                "nothing was set aside") from None
    except (sqlite3.DatabaseError, IndexCorrupt):
        aside = f"{path}.damaged-{time.strftime('%Y%m%dT%H%M%S')}"
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.replace(path + suffix, aside + suffix)
        return _open_rw(path), aside


def _open_rw(path: str) -> Index:
    from sqlite_utils import Database

    conn = sqlite3.connect(path, timeout=30)
    try:
        db = Database(conn)
        db.execute("PRAGMA synchronous=FULL")
        db.enable_wal()
        migrations().apply(db)
        ok = db.execute("PRAGMA quick_check").fetchone()
        if not ok or ok[0] != "ok":
            raise IndexCorrupt(f"the system log {path} failed its integrity check: {ok}", path=path)
    except BaseException:
        conn.close()
        raise
    return Index(db, path)


def open_index_readonly(state_dir: str) -> Index | None:
    """For dry runs: read the index without creating or changing any file; None if absent/damaged.

    Without a -wal file (a cleanly closed index) the database is opened `immutable`, which
    takes no locks and creates no -shm/-wal files; with one (a run in progress or killed), it
    is opened read-only and SQLite reads the log too.
    """
    path = os.path.join(state_dir, INDEX_NAME)
    if not os.path.exists(path):
        return None
    mode = "ro" if os.path.exists(path + "-wal") else "ro&immutable=1"
    try:
        conn = sqlite3.connect(f"file:{_uri_path(path)}?mode={mode}", uri=True)
    except sqlite3.DatabaseError:
        return None
    try:
        db = _ReadOnlyDb(conn)
        if not is_current(conn):
            conn.close()
            return None
        db.execute("SELECT count(*) FROM entries").fetchone()
    except sqlite3.DatabaseError:  # (no migrations table at all: an index never set up)
        conn.close()
        return None
    return Index(db, path, readonly=True)  # type: ignore[arg-type]


class _ReadOnlyDb:
    """The little of sqlite_utils.Database a read-only Index uses (dry runs skip importing it)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, list(params))

    def close(self) -> None:
        self.conn.close()


def _uri_path(path: str) -> str:
    from urllib.parse import quote

    return quote(os.path.abspath(path))


__all__ = ["INDEX_NAME", "Index", "IndexRow", "Journal", "key_path", "open_index", "open_index_readonly", "path_key"]
