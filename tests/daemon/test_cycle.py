"""The main cycle through real `regend` subprocesses on a file:// store: install, drift, repair, update."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from regen.store import Policy, Store, format_time, utcnow
from regen.store.errors import EXIT_MISCONFIGURED, EXIT_UNREACHABLE
from tests.conftest import Mode, Symlink

from .conftest import Client, expected, fingerprint, publish, snapshot

GEN1 = {
    "etc/hosts": "127.0.0.1 localhost\n",
    "etc/app.conf": "port = 8080\n",
    "etc/current": Symlink("app.conf"),
    "bin/run": Mode(b"#!/bin/sh\necho run\n", 0o755),
    "lib/data/a.bin": b"\x00" * 1000,
    "lib/data/b.bin": b"b" * 10,
    "var/empty": None,
}


def reports(store: Store, host: str) -> list[dict]:
    return [json.loads(store.backend.read(p)) for p in store.report_paths(host)]


def test_install_on_an_empty_root_then_nothing_to_do(client: Client, file_store: Store, signing_key) -> None:
    publish(file_store, signing_key, GEN1, number=1)
    out = client.regend("run", "--once")
    assert out.stdout.startswith("updated: channel stable generation 1")
    assert client.tree() == expected(GEN1)
    latest = file_store.read_latest_report("client-01")
    assert latest is not None and latest.outcome == "updated" and latest.generation_after == 1
    assert latest.generation_before is None and latest.exit_code == 0

    again = client.regend("run", "--once")
    assert again.stdout.startswith("ok: channel stable generation 1; drift 0; no changes")
    assert again.stderr == ""
    assert [r["outcome"] for r in reports(file_store, "client-01")] == ["updated", "ok"]


def test_every_kind_of_drift_is_found_reported_and_repaired(client: Client, file_store: Store,
                                                            signing_key) -> None:
    publish(file_store, signing_key, GEN1, number=1)
    client.regend("run", "--once")
    r = client.root
    (r / "etc/hosts").unlink()                                   # deleted
    (r / "etc/new-junk").write_text("not from the store")        # created
    (r / "etc/app.conf").write_text("port = 6666\n")             # modified content
    (r / "bin/run").chmod(0o777)                                 # meta: mode
    (r / "etc/current").unlink()
    (r / "etc/current").symlink_to("hosts")                      # meta: symlink target
    (r / "lib/data/b.bin").unlink()
    (r / "lib/data/b.bin").symlink_to("/etc/passwd")             # file -> symlink
    shutil.rmtree(r / "var/empty")
    (r / "var/empty").write_text("a file where a directory was")  # dir -> file

    out = client.regend("run", "--once", "--json")
    report = json.loads(out.stdout)
    assert report["outcome"] == "repaired" and report["exit_code"] == 0
    drift = {k: sorted(v["paths"]) for k, v in report["drift"].items()}
    assert drift == {
        "deleted": ["etc/hosts"],
        "created": ["etc/new-junk"],
        "modified": ["etc/app.conf", "lib/data/b.bin", "var/empty"],
        "meta": ["bin/run", "etc/current"],
    }
    assert client.tree() == expected(GEN1)
    # what the store does not hold was kept: the junk, the edited file, the planted symlinks, the file
    listing = json.loads(client.regend("recover", "--list", "--json").stdout)
    assert len(listing) == 1
    saved = {p["path"]: p for p in listing[0]["paths"]}
    assert set(saved) == {"etc/new-junk", "etc/app.conf", "lib/data/b.bin", "var/empty", "etc/current"}
    assert saved["lib/data/b.bin"]["target"] == "/etc/passwd"
    # a run after a repair finds nothing: the index matches the disk
    assert client.regend("run", "--once").stdout.startswith("ok:")


def test_symlink_replaced_by_file_and_file_by_directory(client: Client, file_store: Store, signing_key) -> None:
    publish(file_store, signing_key, GEN1, number=1)
    client.regend("run", "--once")
    r = client.root
    (r / "etc/current").unlink()
    (r / "etc/current").write_text("a file where a symlink was")
    (r / "etc/hosts").unlink()
    (r / "etc/hosts").mkdir()
    (r / "etc/hosts/inside").write_text("below a directory that must be a file")
    client.regend("run", "--once")
    assert client.tree() == expected(GEN1)
    items = json.loads(client.regend("recover", "--list", "--json").stdout)[0]["paths"]
    assert sorted(i["path"] for i in items) == ["etc/current", "etc/hosts/inside"]


def test_junk_keep_and_preserve(make_client, file_store: Store, signing_key) -> None:
    spec = {**GEN1, "home/user/.profile": "from the reference"}
    publish(file_store, signing_key, spec, number=1)
    c = make_client(file_store.url, preserve=["home"], junk="keep")
    (c.root / "home/user").mkdir(parents=True)
    (c.root / "home/user/notes.txt").write_text("mine")
    (c.root / "home/user/.profile").write_text("my own profile")
    c.regend("run", "--once")
    home = snapshot(c.root / "home")
    assert home == {"user": ("dir", 0o755), "user/notes.txt": ("file", 0o644, b"mine"),
                    "user/.profile": ("file", 0o644, b"my own profile")}
    (c.root / "etc/local.conf").write_text("kept junk")
    (c.root / "home/user/notes.txt").write_text("changed, never read")
    first = json.loads(c.regend("run", "--once", "--json").stdout)
    assert first["drift"]["created"]["paths"] == ["etc/local.conf"]
    assert (c.root / "etc/local.conf").read_text() == "kept junk"
    second = json.loads(c.regend("run", "--once", "--json").stdout)
    assert second["drift"]["created"]["count"] == 0  # kept junk is known now, not reported again
    assert json.loads(c.regend("recover", "--list", "--json").stdout) == []


def test_base_paths_come_from_the_store_and_trigger_a_full_verify(client: Client, file_store: Store,
                                                                   signing_key) -> None:
    publish(file_store, signing_key, GEN1, number=1, policy=Policy(base=("bin",)))
    client.regend("run", "--once")
    client.regend("run", "--once")  # (the install moved its objects into the tree; this run copies them back)
    cache = client.state / "objects"
    for p in cache.rglob("*"):  # every cached object is now garbage
        if p.is_file():
            p.write_bytes(b"corrupt cache entry")
    (client.root / "bin/run").write_text("trojan")
    (client.root / "etc/hosts").write_text("poisoned")
    out = client.regend("run", "--once", "--json")
    report = json.loads(out.stdout)
    assert client.tree() == expected(GEN1)
    assert report["steps"]["scan"]["verify"] is True
    assert any("drift under base paths (bin/run" in w for w in report["warnings"])
    repair = report["steps"]["repair"]
    assert repair["from_store"] == 2          # bin/run streamed from the store; etc/hosts re-fetched
    assert repair["cache_discarded"] == 1     # the corrupt etc/hosts entry was caught, never installed


def test_update_to_a_newer_generation(client: Client, file_store: Store, signing_key) -> None:
    publish(file_store, signing_key, GEN1, number=1)
    client.regend("run", "--once")
    gen2 = {k: v for k, v in GEN1.items() if k != "lib/data/a.bin"}
    gen2.update({"etc/app.conf": "port = 9090\n", "etc/motd": "welcome\n", "var/empty": "now a file"})
    publish(file_store, signing_key, gen2, number=2)
    out = json.loads(client.regend("run", "--once", "--json").stdout)
    assert out["outcome"] == "updated"
    assert (out["generation_before"], out["generation_after"]) == (1, 2)
    assert out["steps"]["update"]["generation_to"] == 2
    assert out["bytes_fetched"] == len("port = 9090\n") + len("welcome\n") + len("now a file")
    assert client.tree() == expected(gen2)
    assert json.loads(client.regend("recover", "--list", "--json").stdout) == []  # all was store content


def test_quarantine_recover_to_a_directory_and_in_place(client: Client, file_store: Store, signing_key,
                                                        tmp_path: Path) -> None:
    publish(file_store, signing_key, GEN1, number=1)
    client.regend("run", "--once")
    (client.root / "etc/app.conf").write_text("my precious edit\n")
    (client.root / "lib/data/mine.txt").write_text("mine\n")
    client.regend("run", "--once")
    run_id = json.loads(client.regend("recover", "--list", "--json").stdout)[0]["run_id"]
    listing = client.regend("recover", "--list", run_id).stdout
    assert "etc/app.conf" in listing and "lib/data/mine.txt" in listing

    out = tmp_path / "recovered"
    client.regend("recover", run_id, "--to", str(out))
    assert (out / "etc/app.conf").read_text() == "my precious edit\n"
    assert (out / "lib/data/mine.txt").read_text() == "mine\n"
    again = client.regend("recover", run_id, "--to", str(out), exit_code=2)
    assert again.stderr.startswith("regend: error:") and "already exists" in again.stderr

    res = client.regend("recover", run_id, "etc/app.conf", "--in-place")
    assert (client.root / "etc/app.conf").read_text() == "my precious edit\n"
    assert "next run repairs managed paths" in res.stderr
    both = client.regend("recover", run_id, "--in-place", "--to", str(tmp_path / "y"), exit_code=2)
    assert "choose where to recover to" in both.stderr
    client.regend("recover", run_id, exit_code=2)  # neither
    client.regend("recover", "no-such-run", "--to", str(tmp_path / "x"), exit_code=2)


def test_check_writes_nothing(client: Client, file_store: Store, signing_key) -> None:
    publish(file_store, signing_key, GEN1, number=1)
    client.regend("run", "--once")
    (client.root / "etc/app.conf").write_text("drifted\n")
    (client.root / "etc/junk").write_text("junk")
    os.unlink(client.root / "etc/hosts")
    publish(file_store, signing_key, {**GEN1, "etc/motd": "hi\n"}, number=2)
    before = fingerprint(client.root, client.state)
    text = client.regend("check").stdout
    data = json.loads(client.regend("check", "--json").stdout)
    client.regend("check", "--verify")
    client.regend("status")
    client.regend("recover", "--list")
    assert fingerprint(client.root, client.state) == before
    assert "update: pending from 1 to 2: 1 objects, 3 bytes to fetch" in text
    assert data["drift"]["deleted"]["paths"] == ["etc/hosts"]
    assert data["drift"]["created"]["paths"] == ["etc/junk"]
    assert data["drift"]["modified"]["paths"] == ["etc/app.conf"]
    assert data["update"]["objects_to_fetch"] == 1


def test_check_on_a_machine_never_installed_writes_nothing(client: Client, file_store: Store,
                                                           signing_key) -> None:
    publish(file_store, signing_key, GEN1, number=1)
    before = fingerprint(client.root, client.state)
    data = json.loads(client.regend("check", "--json").stdout)
    assert data["installed"] is None and data["update"]["to"] == 1
    assert fingerprint(client.root, client.state) == before
    assert not client.state.exists()


def test_planted_symlink_cannot_redirect_writes_outside_root(client: Client, file_store: Store, signing_key,
                                                             tmp_path: Path) -> None:
    gen1 = {"app/lib/one.so": "one", "app/bin": None}
    publish(file_store, signing_key, gen1, number=1)
    client.regend("run", "--once")
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.rmtree(client.root / "app/lib")
    (client.root / "app/lib").symlink_to(outside)
    gen2 = {**gen1, "app/lib/two.so": "two", "app/lib/sub/three.so": "three"}
    publish(file_store, signing_key, gen2, number=2)
    client.regend("run", "--once")
    assert list(outside.iterdir()) == []
    assert client.tree() == expected(gen2)
    saved = json.loads(client.regend("recover", "--list", "--json").stdout)[0]["paths"]
    assert [(i["path"], i["target"]) for i in saved] == [("app/lib", str(outside))]


def test_rollback_is_refused(client: Client, file_store: Store, signing_key) -> None:
    publish(file_store, signing_key, GEN1, number=1)
    gen2 = {**GEN1, "etc/motd": "two\n"}
    publish(file_store, signing_key, gen2, number=2)
    client.regend("run", "--once")
    file_store.set_ref("stable", file_store.read_generation("stable", 1))  # the ref moved backwards
    out = json.loads(client.regend("run", "--once", "--json").stdout)
    assert out["outcome"] == "failing" and out["exit_code"] == 0
    assert any("older than generation 2 already accepted" in e for e in out["errors"])
    assert client.tree() == expected(gen2)


def test_untrusted_tampered_and_expired_records_are_refused(client: Client, file_store: Store, signing_key,
                                                            other_key) -> None:
    publish(file_store, signing_key, GEN1, number=1)
    client.regend("run", "--once")
    publish(file_store, other_key, {**GEN1, "etc/evil": "x"}, number=2)
    out = json.loads(client.regend("run", "--once", "--json").stdout)
    assert out["errors"] == [f"update: refs/stable is signed by unknown key(s) {other_key.public.keyid} (add the "
                             f"signer's public key to the trusted keys if it is legitimate)"]
    assert out["steps"]["update"]["refused"] is True
    assert client.tree() == expected(GEN1)

    ref = Path(file_store.backend.root) / "refs/stable"
    good = file_store.read_generation("stable", 1)
    ref.write_bytes(good.replace(b'"message":"generation 1"', b'"message":"generation 1!"'))
    out = json.loads(client.regend("run", "--once", "--json").stdout)
    assert any("signature" in e for e in out["errors"]), out["errors"]

    publish(file_store, signing_key, {**GEN1, "etc/old": "x"}, number=3, expires="2001-01-01T00:00:00Z")
    out = json.loads(client.regend("run", "--once", "--json").stdout)
    assert any("expired" in e for e in out["errors"]), out["errors"]
    assert client.tree() == expected(GEN1) and out["exit_code"] == 0


def test_store_unreachable_repairs_from_cache_and_queues_the_report(client: Client, file_store: Store,
                                                                    signing_key) -> None:
    publish(file_store, signing_key, GEN1, number=1)
    client.regend("run", "--once")
    # the install moved its objects from the cache into the tree (each content written once);
    # the next run that finds the tree clean copies them back, so repairs work offline from then on
    assert not [p for p in (client.state / "objects").rglob("*") if p.is_file()]
    refill = json.loads(client.regend("run", "--once", "--json").stdout)["steps"]["refill"]
    assert refill == {"outcome": "done", "objects": 5}  # the five files of GEN1
    store_dir = Path(file_store.backend.root)
    store_dir.rename(store_dir.with_name("moved"))
    (client.root / "etc/app.conf").write_text("damaged\n")
    # no store at the URL any more: a misconfiguration (11), which still lets the machine start
    out = client.regend("run", "--once", exit_code=EXIT_MISCONFIGURED)
    assert "regend: warning: store misconfigured: no regen store at" in out.stderr
    assert "waits in the outbox" in out.stderr
    assert client.tree() == expected(GEN1)
    status = json.loads(client.regend("status", "--json").stdout)
    assert status["outbox"] == 1 and status["last_run"]["outcome"] == "repaired"
    assert status["last_run"]["store_state"] == "misconfigured"

    store_dir.with_name("moved").rename(store_dir)
    client.regend("run", "--once")
    assert [r["outcome"] for r in reports(file_store, "client-01")] == ["updated", "ok", "repaired", "ok"]
    assert json.loads(client.regend("status", "--json").stdout)["outbox"] == 0


def test_unreachable_server_url(client: Client, file_store: Store, signing_key) -> None:
    publish(file_store, signing_key, GEN1, number=1)
    client.regend("run", "--once")
    client.regend("run", "--once")  # (copies back into the cache the objects the install moved: refill.py)
    client.store_url = "http://127.0.0.1:9/store"
    client.write_config(storage_options={"timeout": 1})
    os.unlink(client.root / "etc/hosts")
    out = client.regend("run", "--once", exit_code=EXIT_UNREACHABLE)
    assert "ran from cache, could not confirm the newest generation (store unreachable: " in out.stderr
    assert client.tree() == expected(GEN1)


def test_nothing_installed_and_store_unreachable_fails(make_client, tmp_path: Path) -> None:
    c = make_client(f"file://{tmp_path / 'no-store'}")
    out = c.regend("run", "--once", exit_code=1)
    assert "install" in out.stdout and "error" in out.stdout
    assert snapshot(c.root) == {}


def test_expiry_in_the_future_is_accepted(client: Client, file_store: Store, signing_key) -> None:
    later = format_time(utcnow().replace(year=utcnow().year + 1))
    publish(file_store, signing_key, GEN1, number=1, expires=later)
    client.regend("run", "--once")
    assert client.tree() == expected(GEN1)


def test_run_right_after_an_update_checks_what_it_wrote(client: Client, file_store: Store,
                                                        signing_key) -> None:
    # the paths an apply just wrote are inside the racy-timestamp window: the next run reads
    # them again and finds no drift; a file changed behind regend's back, even with its size
    # and mtime put back, is found and repaired
    publish(file_store, signing_key, GEN1, number=1)
    client.regend("run", "--once")
    again = json.loads(client.regend("run", "--once", "--json").stdout)
    assert again["outcome"] == "ok"
    scan = again["steps"]["scan"]
    assert scan["drifted"] == 0 and scan["reasons"].get("racy", 0) > 0
    target = client.root / "etc/app.conf"
    before = os.lstat(target)
    target.write_text("port = 6666\n")  # same size
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    out = json.loads(client.regend("run", "--once", "--json").stdout)
    assert out["outcome"] == "repaired"
    assert "etc/app.conf" in out["drift"]["modified"]["paths"]
    assert client.tree() == expected(GEN1)
