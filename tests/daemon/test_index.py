"""The system log: schema by migrations, WAL, read-only opening, damage set aside and rebuilt."""

from __future__ import annotations

import json
import os
from pathlib import Path

from regen.daemon.tree.index import INDEX_NAME, Index, IndexRow, open_index, open_index_readonly, path_key
from regen.store import Store

from .conftest import Client, expected, publish

SPEC = {"a/b": "b", "a/c": "c", "d": "d"}


def test_rows_come_back_in_tree_order() -> None:
    with Index.memory() as idx:
        paths = ["etc-x", "etc/hosts", "etc", "a b", "é", "etc/l"]
        with idx.atomic():
            idx.put_rows(IndexRow(p, "file", 0o644, 1, 1, 1, 1, "0" * 32, "0" * 64) for p in paths)
        assert [r.path for r in idx.rows()] == sorted(paths, key=path_key)
        assert [r.path for r in idx.rows()][:4] == ["a b", "etc", "etc/hosts", "etc/l"]


def test_highest_never_goes_down_and_outbox_is_bounded() -> None:
    with Index.memory() as idx, idx.atomic():
        idx.raise_highest("channel", "stable", 5)
        idx.raise_highest("channel", "stable", 3)
        assert idx.highest("channel", "stable") == 5
        for i in range(5):
            idx.queue_report(f"r{i}", "t", b"{}", keep=3)
        assert [r for _, r, _ in idx.outbox()] == ["r2", "r3", "r4"]
        assert idx.record_failure("update", "sig", "m") == 1
        assert idx.record_failure("update", "sig", "m") == 2
        assert idx.record_failure("update", "other", "m") == 1


def test_writes_outside_a_transaction_are_refused() -> None:
    import pytest

    with Index.memory() as idx:
        with pytest.raises(RuntimeError, match="inside Index.atomic"):
            idx.set_state("x", 1)


def test_file_index_is_wal_and_reopens(tmp_path: Path) -> None:
    idx, aside = open_index(str(tmp_path))
    assert aside is None
    assert idx.db.journal_mode == "wal"
    with idx.atomic():
        idx.set_state("installed", {"number": 3})
    idx.close()
    ro = open_index_readonly(str(tmp_path))
    assert ro is not None and ro.state("installed") == {"number": 3}
    ro.close()
    assert sorted(os.listdir(tmp_path)) == [INDEX_NAME]  # a clean close leaves no -wal/-shm files


def test_garbage_and_truncated_index_are_set_aside(tmp_path: Path) -> None:
    db = tmp_path / INDEX_NAME
    db.write_bytes(b"this is not a database" * 100)
    idx, aside = open_index(str(tmp_path))
    assert aside is not None and Path(aside).read_bytes().startswith(b"this is not")
    with idx.atomic():
        idx.put_rows(IndexRow(f"f{i}", "file", 0o644, 1, 1, 1, 1, "0" * 32, "0" * 64) for i in range(3000))
    idx.close()
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2])
    idx, aside = open_index(str(tmp_path))
    assert aside is not None and idx.count() == 0
    idx.close()


def test_damaged_index_is_rebuilt_by_a_full_verify(client: Client, file_store: Store, signing_key) -> None:
    publish(file_store, signing_key, SPEC, number=1)
    publish(file_store, signing_key, {**SPEC, "e": "e"}, number=2)
    client.regend("run", "--once")
    (client.state / INDEX_NAME).write_bytes(b"\0garbage" * 64)
    (client.root / "a/b").write_text("damaged")
    out = client.regend("run", "--once", "--json")
    report = json.loads(out.stdout)
    assert any("set aside" in w for w in report["warnings"])
    assert report["steps"]["scan"]["verify"] is True
    assert report["drift"]["modified"]["paths"] == ["a/b"]   # drift still known: rows came from the manifest
    assert client.tree() == expected({**SPEC, "e": "e"})
    assert [n for n in os.listdir(client.state) if n.startswith(INDEX_NAME + ".damaged-")]
    # rollback protection survived the loss of the index (state.json mirror)
    file_store.set_ref("stable", file_store.read_generation("stable", 1))
    out = json.loads(client.regend("run", "--once", "--json").stdout)
    assert any("older than generation 2" in e for e in out["errors"])


def test_index_matches_the_disk_after_a_run(client: Client, file_store: Store, signing_key) -> None:
    publish(file_store, signing_key, SPEC, number=1)
    client.regend("run", "--once")
    (client.root / "a/c").write_text("changed")
    (client.root / "junk").write_text("x")
    client.regend("run", "--once")
    idx = open_index_readonly(str(client.state))
    assert idx is not None
    try:
        rows = {r.path: r for r in idx.rows()}
    finally:
        idx.close()
    assert set(rows) == {"a", "a/b", "a/c", "d"}
    for path, row in rows.items():
        st = os.lstat(client.root / path)
        assert (row.mode, row.inode, row.mtime_ns, row.ctime_ns) == (st.st_mode & 0o7777, st.st_ino,
                                                                     st.st_mtime_ns, st.st_ctime_ns), path
        if row.kind == "file":
            assert row.size == st.st_size
