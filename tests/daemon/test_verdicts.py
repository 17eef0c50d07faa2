"""One stat verdict: the no-change fast path (fastpath.unchanged, on Index.row_map's StatRow)
trusts a path exactly when the full scan's classify() does (issue 11: the rule existed three
times and no test said the copies agree). Both ask verdict.stat_verdict, which follows the one
stat rule (regen.store.stat_change) and the one racy-timestamp rule (regen.store.racy) that the
snapshot's stat cache follows too."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regen.daemon.tree.fastpath import unchanged
from regen.daemon.tree.index import IndexRow
from regen.daemon.tree.scan import UNCHANGED, StatFacts, classify
from regen.daemon.tree.verdict import StatRow
from regen.store import RACY_WINDOW_NS, racy

NS = 1_000_000_000
KINDS = ("file", "dir", "symlink")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """root/f: one real file, 5 bytes, its mtime well in the past; root/<kind>/x: one path of each
    kind alone in its directory (file/x, dir/x, symlink/x -> "f")."""
    d = tmp_path_factory.mktemp("verdicts")
    (d / "f").write_bytes(b"12345")
    os.utime(d / "f", ns=(1_000 * NS, 1_000 * NS))
    for kind in KINDS:
        (d / kind).mkdir()
    (d / "file" / "x").write_bytes(b"12345")
    (d / "dir" / "x").mkdir()
    (d / "symlink" / "x").symlink_to("f")
    for kind in KINDS:
        os.utime(d / kind / "x", ns=(1_000 * NS, 1_000 * NS), follow_symlinks=False)
    return d


def stat_row(row: IndexRow) -> StatRow:
    """The row as Index.row_map gives it."""
    return StatRow(row.kind, row.mode, row.size, row.mtime_ns, row.ctime_ns, row.inode, int(row.managed),
                   row.checked_ns, row.uid)


@given(size=st.sampled_from([0, 1]), mtime=st.sampled_from([0, 1]), ctime=st.sampled_from([0, -1]),
       inode=st.sampled_from([0, 1]), mode=st.sampled_from([0, 0o100]),
       checked=st.integers(-3 * RACY_WINDOW_NS, 3 * RACY_WINDOW_NS), uid_known=st.booleans())
def test_the_fast_path_trusts_a_file_exactly_when_classify_does(root: Path, size: int, mtime: int, ctime: int,
                                                                inode: int, mode: int, checked: int,
                                                                uid_known: bool) -> None:
    s = os.lstat(root / "f")
    row = IndexRow("f", "file", (s.st_mode & 0o7777) ^ mode, s.st_size + size, s.st_mtime_ns + mtime,
                   s.st_ctime_ns + ctime, s.st_ino + inode, "0" * 32, "0" * 64, None, True,
                   s.st_mtime_ns + checked, s.st_uid if uid_known else None)
    trusted = classify(StatFacts.from_stat(s), row).state == UNCHANGED
    assert (unchanged(str(root), {"f": stat_row(row)}, None, strict_dirs=True) is not None) == trusted


@given(disk=st.sampled_from(KINDS), kind=st.sampled_from((*KINDS, "fifo", "special")),
       size=st.sampled_from([0, 1]), mtime=st.sampled_from([0, 1, None]), ctime=st.sampled_from([0, -1]),
       inode=st.sampled_from([0, 1]), mode=st.sampled_from([0, 0o100]),
       checked=st.integers(-3 * RACY_WINDOW_NS, 3 * RACY_WINDOW_NS), uid_known=st.booleans())
def test_the_fast_path_and_classify_agree_on_any_row_and_stat(root: Path, disk: str, kind: str, size: int,
                                                              mtime: int | None, ctime: int, inode: int, mode: int,
                                                              checked: int, uid_known: bool) -> None:
    """Any index row against any lstat (a file, a directory or a symlink on disk): a check's fast
    path (strict_dirs off) trusts the path exactly when classify() does, and a file or symlink it
    sets aside as racy is exactly one classify() calls racy; a run's (strict_dirs on) trusts no
    path classify() would not."""
    where = root / disk
    s = os.lstat(where / "x")
    facts = StatFacts.from_stat(s)
    row = IndexRow("x", kind, facts.mode ^ mode, facts.size + size,
                   None if mtime is None else s.st_mtime_ns + mtime, s.st_ctime_ns + ctime, s.st_ino + inode,
                   None, None, None, True, s.st_mtime_ns + checked, s.st_uid if uid_known else None)
    verdict = classify(facts, row)
    trusted = verdict.state == UNCHANGED
    assert (unchanged(str(where), {"x": stat_row(row)}, None, strict_dirs=False) is not None) == trusted
    set_aside: list[str] = []
    found = unchanged(str(where), {"x": stat_row(row)}, None, strict_dirs=False, racy=set_aside)
    assert (found is not None) == (trusted or (verdict.reason == "racy" and disk in ("file", "symlink")))
    assert (set_aside == ["x"]) == (verdict.reason == "racy" and found is not None)
    if unchanged(str(where), {"x": stat_row(row)}, None, strict_dirs=True) is not None:
        assert trusted


@given(st.integers(0, 10**19), st.integers(0, 10**19))
def test_racy_is_inside_the_window(mtime_ns: int, hashed_ns: int) -> None:
    assert racy(mtime_ns, hashed_ns) == (hashed_ns - mtime_ns <= RACY_WINDOW_NS)
