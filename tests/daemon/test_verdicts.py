"""One stat verdict: the no-change fast path (quick.unchanged, on raw index row tuples) trusts a
file exactly when the full scan's classify() does (issue 11: the rule existed three times and no
test said the copies agree). Both use the one racy-timestamp rule, regen.store.racy."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regen.daemon.tree.fastpath import unchanged
from regen.daemon.tree.index import IndexRow
from regen.daemon.tree.scan import UNCHANGED, StatFacts, classify
from regen.store import RACY_WINDOW_NS, racy

NS = 1_000_000_000


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """root/f: one real file, 5 bytes, its mtime well in the past."""
    d = tmp_path_factory.mktemp("verdicts")
    (d / "f").write_bytes(b"12345")
    os.utime(d / "f", ns=(1_000 * NS, 1_000 * NS))
    return d


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
    as_tuple = (row.kind, row.mode, row.size, row.mtime_ns, row.ctime_ns, row.inode, row.managed, row.checked_ns,
                row.uid)  # (the columns of Index.row_map)
    assert (unchanged(str(root), {"f": as_tuple}, None, strict_dirs=True) is not None) == trusted


@given(st.integers(0, 10**19), st.integers(0, 10**19))
def test_racy_is_inside_the_window(mtime_ns: int, hashed_ns: int) -> None:
    assert racy(mtime_ns, hashed_ns) == (hashed_ns - mtime_ns <= RACY_WINDOW_NS)
