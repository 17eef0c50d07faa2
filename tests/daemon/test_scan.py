"""Change detection: a pure verdict on stat facts, and a scan that hashes only the suspects."""

from __future__ import annotations

import os
import time
from pathlib import Path

from regen.daemon.tree.index import IndexRow
from regen.daemon.tree.scan import RACY_WINDOW_NS, StatFacts, Verdict, classify, row_for, scan

OLD = 1_700_000_000 * 10**9


def facts(**over) -> StatFacts:
    base = dict(kind="file", mode=0o644, size=3, mtime_ns=OLD, ctime_ns=OLD, inode=7)
    base.update(over)
    return StatFacts(**base)


def row(**over) -> IndexRow:
    base = dict(path="p", kind="file", mode=0o644, size=3, mtime_ns=OLD, ctime_ns=OLD, inode=7, xxh="0" * 32,
                oid="0" * 64, checked_ns=OLD + 10 * RACY_WINDOW_NS)
    base.update(over)
    return IndexRow(**base)


def test_classify_says_why() -> None:
    assert classify(facts(), None) == Verdict("unknown", "new")
    assert classify(facts(), row()) == Verdict("unchanged")
    assert classify(facts(kind="symlink"), row()) == Verdict("changed", "kind")
    assert classify(facts(size=4), row()) == Verdict("changed", "size")
    assert classify(facts(mtime_ns=OLD + 1), row()) == Verdict("changed", "mtime")
    assert classify(facts(ctime_ns=OLD + 1), row()) == Verdict("changed", "ctime")
    assert classify(facts(inode=8), row()) == Verdict("changed", "inode")
    assert classify(facts(mode=0o600), row()) == Verdict("changed", "mode")
    assert classify(facts(), row(mtime_ns=None)) == Verdict("changed", "unverified")


def test_racy_timestamp_is_rehashed() -> None:
    # the row was confirmed less than RACY_WINDOW_NS after the file's mtime: a write in the same tick
    # could hide behind an identical stat
    assert classify(facts(), row(checked_ns=OLD + RACY_WINDOW_NS // 2)) == Verdict("changed", "racy")
    assert classify(facts(), row(checked_ns=OLD + RACY_WINDOW_NS + 1)) == Verdict("unchanged")


def test_directories_compare_mode_only() -> None:
    d = dict(kind="dir", size=0)
    assert classify(facts(**d, mtime_ns=OLD + 5), row(**d)) == Verdict("unchanged")
    assert classify(facts(**d, mode=0o700), row(**d)) == Verdict("changed", "mode")


def _rows(root: Path, checked_ns: int) -> list[IndexRow]:
    from regen.store import xxh

    out = []
    for rel in sorted(os.listdir(root)):
        p = root / rel
        out.append(row_for(rel, os.lstat(p), xxh=xxh(p.read_bytes()), oid="0" * 64, checked_ns=checked_ns))
    return out


def test_scan_hashes_only_suspects_and_verify_hashes_all(tmp_path: Path) -> None:
    for name in "abcd":
        (tmp_path / name).write_text(name * 10)
        os.utime(tmp_path / name, ns=(OLD, OLD))
    rows = _rows(tmp_path, time.time_ns())
    res = scan(str(tmp_path), rows, prune=lambda p: False)
    assert res.hashed == 0 and res.drift.total() == 0
    (tmp_path / "b").write_text("B" * 10)          # same size, new mtime
    (tmp_path / "e").write_text("new")
    (tmp_path / "d").unlink()
    res = scan(str(tmp_path), rows, prune=lambda p: False)
    assert res.hashed == 2 and res.reasons == {"mtime": 1, "new": 1}
    assert (res.drift.modified, res.drift.created, res.drift.deleted) == (["b"], ["e"], ["d"])
    assert scan(str(tmp_path), rows, prune=lambda p: False, verify=True).hashed == 4


def test_scan_prunes_and_never_follows_symlinks(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("s")
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(outside)
    (root / "keep").mkdir()
    (root / "keep/x").write_text("x")
    res = scan(str(root), [], prune=lambda p: p == "keep")
    assert [(o.path, o.kind, o.target) for o in res.observed] == [("link", "symlink", str(outside))]


def test_a_file_touched_but_unchanged_is_confirmed_not_drift(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("same")
    os.utime(tmp_path / "a", ns=(OLD, OLD))
    rows = _rows(tmp_path, time.time_ns())
    os.utime(tmp_path / "a")  # touch: new mtime, same content
    res = scan(str(tmp_path), rows, prune=lambda p: False)
    assert res.drift.total() == 0 and [r.path for r in res.rows] == ["a"]
    assert res.observed[0].in_store
