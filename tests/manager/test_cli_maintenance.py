"""`regen init`, `keygen`, `gc`, `fsck`, `unlock`."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from regen.manager.errors import DamageFound, StoreNotEmpty
from regen.store import Store, StoreLock, layout, load_public_key, load_secret_key
from regen.store.errors import InvalidInput, KeyInvalid, StoreExists

from ..conftest import make_tree
from .conftest import one_error_line


def test_init_creates_an_empty_store_and_refuses_to_reinit(cli, tmp_path: Path) -> None:
    url = f"file://{tmp_path}/store"
    res = cli("init", url, "--compression", "none", "--json").json()
    assert res["url"] == url and res["compression"] == "none"
    assert Store.open(url).store_id == res["store_id"]
    err = cli("init", url, exit_code=StoreExists.exit_code)
    assert "already exists" in one_error_line(err.stderr)
    (tmp_path / "busy" / "data").mkdir(parents=True)
    err = cli("init", f"file://{tmp_path}/busy", exit_code=StoreNotEmpty.exit_code)
    assert "is not empty (it holds data)" in one_error_line(err.stderr)
    err = cli("init", f"file://{tmp_path}/z", "--compression", "lz4", exit_code=InvalidInput.exit_code)
    assert "unknown compression 'lz4'" in one_error_line(err.stderr)


def test_keygen_writes_a_private_key_and_its_public_half(cli, tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "admin.key"
    res = cli("keygen", path, "--json").json()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_secret_key(path).public == load_public_key(f"{path}.pub")
    assert res["keyid"] == load_public_key(f"{path}.pub").keyid
    err = cli("keygen", path, exit_code=KeyInvalid.exit_code)
    assert "already exists" in one_error_line(err.stderr)


def test_gc_keeps_recent_generations_and_deletes_old_unreferenced_objects(cli, admin: Store, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "ref", {"f": b"0"})
    for i in range(1, 5):
        (src / "f").write_bytes(f"content {i}".encode())
        cli("snapshot", src, "-c", "stable", "-m", str(i), "--publish")
    orphan = admin.put(b"uploaded by a snapshot that died")
    dry = cli("gc", "--keep", "2", "--grace", "1h", "--dry-run", "--json").json()
    assert dry["dry_run"] and dry["generations_dropped"] == [{"channel": "stable", "number": 1},
                                                            {"channel": "stable", "number": 2}]
    assert dry["stats"]["young_unreferenced_kept"] >= 1  # everything is young: nothing old enough to delete
    assert admin.generation_numbers("stable") == [1, 2, 3, 4]

    objects = Path(tmp_path / "store" / "objects")
    for p in objects.rglob("*"):
        if p.is_file():
            os.utime(p, (1, 1))  # everything is old now
    res = cli("gc", "--keep", "2", "--grace", "1h", "--json").json()
    assert res["stats"]["generations_to_delete"] == 2 and res["stats"]["objects_to_delete"] >= 3
    assert admin.generation_numbers("stable") == [3, 4] and not admin.has(orphan)
    assert "deleted 0 objects" in cli("gc", "--keep", "2").stdout
    cli("fsck")  # what is left is complete


def test_fsck_finds_damage_and_exits_1(cli, admin: Store, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "ref", {"a": b"precious", "b": b"other"})
    cli("snapshot", src, "-c", "stable", "-m", "1", "--publish")
    assert "no damage found" in cli("fsck").stdout
    entries = admin.read_manifest(admin.peek_generation(admin.read_ref("stable") or b"").manifest)
    oid = next(e.oid for e in entries if e.path == "a")
    assert oid is not None
    path = tmp_path / "store" / layout.object_path(oid)
    path.write_bytes(b"r" + b"tampered")
    res = cli("fsck", "--json", exit_code=DamageFound.exit_code)
    assert "the store is damaged: 1 problem(s) found" in one_error_line(res.stderr)
    data = res.json()
    assert data["damaged"] and [(f["kind"], f["subject"]) for f in data["findings"]] == [("corrupt", oid)]
    cli("fsck", "--repair", exit_code=DamageFound.exit_code)
    assert (tmp_path / "store" / "corrupt" / oid).exists() and not admin.has(oid)
    res = cli("fsck", exit_code=DamageFound.exit_code)  # now missing, until a snapshot uploads it again
    assert "missing" in res.stdout
    res = cli("snapshot", src, "-c", "stable", "-m", "2", "--publish", "--json").json()
    assert res["uploaded"]["objects"] == 1 and admin.has(oid)  # the set-aside object is uploaded again
    cli("fsck")
    (tmp_path / "store" / layout.object_path(oid)).unlink()  # lost some other way: not under corrupt/
    (tmp_path / "store" / "corrupt" / oid).unlink()
    assert cli("snapshot", src, "-c", "stable", "-m", "3", "--json").json()["uploaded"]["objects"] == 0
    cli("fsck", exit_code=DamageFound.exit_code)
    assert cli("snapshot", src, "-c", "stable", "-m", "4", "--full", "--json").json()["uploaded"]["objects"] == 1
    cli("fsck")


def test_unlock_removes_a_stale_writer_lock(cli, admin: Store, tmp_path: Path) -> None:
    lock = StoreLock(admin, "a regen that died")
    lock.acquire()
    res = cli("unlock")
    assert "removed the lock of a regen that died" in res.stdout
    assert cli("unlock", "--json").json() == {"removed": None}
    src = make_tree(tmp_path / "ref", {"a": b"a"})
    cli("snapshot", src, "-c", "stable", "-m", "after unlock")
