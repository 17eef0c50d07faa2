"""The no-change fast paths: a tree's fingerprint (quick.py) and `regend check` after real runs.

A check must be as fast as a bare walk when nothing changed, and never fast and wrong: every
change a user or an attacker can make under root must be seen.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from regen.daemon.tree.fastpath import fingerprint
from regen.daemon.tree.index import open_index_readonly
from regen.store import Store

from .conftest import Client, expected, publish
from .test_cycle import GEN1

NAMES = st.sampled_from(["a", "b", "c", "d.txt", "é", "A"])
TREES = st.dictionaries(st.tuples(st.sampled_from(["", "x/", "x/y/", "z/"]), NAMES).map("".join),
                        st.binary(max_size=40), min_size=1, max_size=12)
CHANGES = ["rewrite", "chmod", "rename", "delete", "create", "mkdir", "symlink", "truncate", "hardlink"]


def _build(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if not p.is_dir():
            p.write_bytes(data)


def _change(root: Path, how: str, victim: str) -> None:
    p = root / victim
    if how == "rewrite":  # same bytes count, mtime put back: only ctime (and content) move
        before = os.lstat(p)
        p.write_bytes(bytes(b ^ 1 for b in p.read_bytes()))
        os.utime(p, ns=(before.st_atime_ns, before.st_mtime_ns))
    elif how == "chmod":
        os.chmod(p, os.lstat(p).st_mode & 0o7777 ^ 0o100)
    elif how == "rename":
        os.rename(p, p.with_name(p.name + ".moved"))
    elif how == "delete":
        p.unlink()
    elif how == "create":
        (p.parent / ".new").write_bytes(b"")
    elif how == "mkdir":
        (p.parent / "newdir").mkdir()
    elif how == "symlink":
        p.unlink()
        p.symlink_to("elsewhere")
    elif how == "truncate":
        os.truncate(p, 0 if p.stat().st_size else 1)
    else:
        os.link(p, p.parent / ".hardlink")  # the file's link count (and ctime) change


@settings(max_examples=150, deadline=None)
@given(files=TREES, how=st.sampled_from(CHANGES), pick=st.integers(min_value=0))
def test_any_change_under_root_changes_the_fingerprint_and_reading_does_not(files: dict[str, bytes], how: str,
                                                                           pick: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        root.mkdir()
        _build(root, files)
        first = fingerprint(str(root), None)
        assert first is not None
        for p in root.rglob("*"):  # reading everything (atime) is not a change
            if p.is_file():
                p.read_bytes()
        assert fingerprint(str(root), None) == first
        victims = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
        _change(root, how, victims[pick % len(victims)])
        after = fingerprint(str(root), None)
        assert after is not None and after.digest != first.digest


def test_pruned_paths_are_outside_the_fingerprint(tmp_path: Path) -> None:
    _build(tmp_path, {"keep/data": b"user", "app/bin": b"x"})
    prune = (lambda p: p == "keep")  # noqa: E731
    first = fingerprint(str(tmp_path), prune)
    (tmp_path / "keep/data").write_bytes(b"user edits")
    (tmp_path / "keep/more").write_bytes(b"")
    assert fingerprint(str(tmp_path), prune) == first
    assert first is not None and first.paths == 2  # app, app/bin


def _tree_record(c: Client) -> object:
    index = open_index_readonly(str(c.state))
    assert index is not None
    try:
        return index.state("tree")
    finally:
        index.close()


def _check(c: Client) -> dict:
    return json.loads(c.regend("check", "--json").stdout)


def test_check_recalls_the_verified_tree_and_still_sees_a_hidden_edit(client: Client, file_store: Store,
                                                                      signing_key) -> None:
    publish(file_store, signing_key, GEN1, number=1)
    client.regend("run", "--once")
    # a run that wrote the tree (or ran within 2 s of writes) cannot vouch for it by stat alone
    assert _tree_record(client) is None
    client.regend("run", "--once")
    assert _tree_record(client) is None
    time.sleep(2.1)
    client.regend("run", "--once")
    record = _tree_record(client)
    assert isinstance(record, dict) and record["paths"] == len(expected(GEN1))
    clean = _check(client)
    assert clean["drift"]["modified"]["count"] == 0 and clean["repair"]["operations"] == 0
    assert clean["scan"] == {"paths": record["paths"], "hashed": 0}

    target = client.root / "etc/app.conf"
    before = os.lstat(target)
    target.write_text("port = 6666\n")  # same size, mtime put back: only ctime tells
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    found = _check(client)
    assert found["drift"]["modified"]["paths"] == ["etc/app.conf"]
    assert found["repair"]["replace"] == 1
    assert _tree_record(client) == record  # a check writes nothing

    out = json.loads(client.regend("run", "--once", "--json").stdout)
    assert out["outcome"] == "repaired" and client.tree() == expected(GEN1)
    assert _tree_record(client) is None  # this run wrote: no record until a later run vouches again


def test_check_right_after_an_update_reads_what_the_update_wrote(client: Client, file_store: Store,
                                                                 signing_key) -> None:
    publish(file_store, signing_key, GEN1, number=1)
    client.regend("run", "--once")
    time.sleep(2.1)
    client.regend("run", "--once")
    gen2 = {**GEN1, "etc/app.conf": "port = 9090\n", "etc/new": "new\n"}
    publish(file_store, signing_key, gen2, number=2)
    client.regend("run", "--once")
    clean = _check(client)
    assert clean["drift"]["modified"]["count"] == 0 and clean["repair"]["operations"] == 0
    assert clean["update"] == {"available": 2, "pending": False}
    assert clean["scan"]["hashed"] >= 2  # the files the update just wrote were read, not trusted

    target = client.root / "etc/new"
    before = os.lstat(target)
    target.write_text("old\n")
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    found = _check(client)
    assert found["drift"]["modified"]["paths"] == ["etc/new"]


def test_check_verify_reads_every_file_and_reports_what_the_stat_cannot_see(client: Client, file_store: Store,
                                                                            signing_key) -> None:
    # bit rot keeps every stat field: simulated by changing what the index says the content is
    spec = {**GEN1, "lib/big.bin": bytes(range(256)) * 1200}  # 300 KiB: hashed by the worker threads
    publish(file_store, signing_key, spec, number=1)
    client.regend("run", "--once")
    clean = json.loads(client.regend("check", "--verify", "--json").stdout)
    files = sum(1 for v in expected(spec).values() if v[0] == "file")
    assert clean["scan"] == {"paths": len(expected(spec)), "hashed": files}
    assert clean["drift"]["modified"]["count"] == 0
    db = sqlite3.connect(client.state / "index.db")
    with db:
        for name in ("lib\0big.bin", "etc\0hosts"):
            db.execute("UPDATE entries SET xxh = ? WHERE key = ?", ["0" * 32, name.encode()])
    db.close()
    rot = json.loads(client.regend("check", "--verify", "--json").stdout)
    assert rot["drift"]["modified"]["paths"] == ["etc/hosts", "lib/big.bin"]
