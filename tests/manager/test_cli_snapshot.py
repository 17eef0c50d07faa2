"""`regen snapshot`: what a reference tree becomes in the store, and what a re-snapshot costs."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from regen.manager.errors import SourceInvalid
from regen.manager.snapshot import snapshot
from regen.store import Store, load_secret_key, object_id, trust_map, verify_generation
from regen.store.errors import LockHeld, PolicyInvalid

from ..conftest import Mode, Symlink, make_tree
from .conftest import one_error_line

UNUSUAL = {
    "etc/app.conf": b"listen = 8080\n",
    "etc/empty-dir": None,
    "usr/bin/tool": Mode(b"#!/bin/sh\necho hi\n", 0o755),
    "usr/bin/secret": Mode(b"s3cret", 0o600),
    "usr/bin/setgid-dir": None,
    "with space/file name.txt": b"spaces",
    "unicode/héllo-日本.txt": "unicode content ✓",
    "odd/new\nline": b"a newline in the name",
    "links/relative": Symlink("../etc/app.conf"),
    "links/absolute": Symlink("/etc/hostname"),
    "links/dangling": Symlink("does/not/exist"),
    "empty": b"",
}


def manifest_of(store: Store, channel: str = "stable", number: int | None = None) -> dict[str, object]:
    ref = store.read_ref(channel) if number is None else store.read_generation(channel, number)
    assert ref is not None
    gen = store.peek_generation(ref)
    return {e.path: e for e in store.read_manifest(gen.manifest)}


def test_tree_round_trips_through_the_manifest(cli, admin: Store, tmp_path: Path, aged) -> None:
    src = make_tree(tmp_path / "ref", UNUSUAL)
    os.chmod(src / "usr/bin/setgid-dir", 0o2750)
    aged(src)
    res = cli("snapshot", src, "--channel", "stable", "-m", "first", "--publish", "--json").json()
    assert res["number"] == 1 and res["published"] and res["parent"] is None

    entries = manifest_of(admin)
    expected_files = {p: v for p, v in UNUSUAL.items() if isinstance(v, (bytes, str, Mode))}
    for path, value in expected_files.items():
        content = value.content if isinstance(value, Mode) else value.encode() if isinstance(value, str) else value
        e = entries[path]
        assert e.kind == "file" and e.oid == object_id(content) and e.size == len(content)
        assert admin.get(e.oid) == content
        assert e.mode == stat.S_IMODE(os.lstat(src / path).st_mode)
    assert entries["usr/bin/tool"].mode == 0o755 and entries["usr/bin/secret"].mode == 0o600
    assert entries["usr/bin/setgid-dir"].kind == "dir" and entries["usr/bin/setgid-dir"].mode == 0o2750
    assert entries["etc/empty-dir"].kind == "dir"
    assert {p: e.target for p, e in entries.items() if e.kind == "symlink"} == {
        "links/relative": "../etc/app.conf", "links/absolute": "/etc/hostname", "links/dangling": "does/not/exist"}
    # every parent has its own entry, and nothing else is there
    assert set(entries) == set(UNUSUAL) | {"etc", "usr", "usr/bin", "with space", "unicode", "odd", "links"}
    assert res["stats"]["files"] == len(expected_files) and res["stats"]["symlinks"] == 3
    assert res["changes"]["added"] == len(entries)


def test_generation_is_signed_and_bound_to_store_and_channel(cli, admin: Store, tmp_path: Path, key_files) -> None:
    src = make_tree(tmp_path / "ref", {"a": b"1"})
    cli("snapshot", src, "-c", "stable", "-m", "signed", "--publish", "--expires", "30d")
    key = load_secret_key(key_files[0])
    ref = admin.read_ref("stable")
    assert ref is not None
    gen = verify_generation(ref, trust_map([key.public]), store_id=admin.store_id, channel="stable")
    assert gen.number == 1 and gen.message == "signed" and gen.expires is not None
    assert key.public.keyid in admin.public_keys()


def test_unchanged_resnapshot_reads_no_file_and_uploads_nothing(admin: Store, tmp_path: Path, key_files,
                                                                 aged) -> None:
    src = make_tree(tmp_path / "ref", {f"d{i % 4}/f{i}": f"content {i}".encode() for i in range(40)})
    aged(src)
    key = load_secret_key(key_files[0])
    cache = tmp_path / "cache"
    first = snapshot(admin, str(src), channel="stable", message="1", key=key, policy=None, publish=True,
                     cache_dir=cache)
    assert first.tree.files_hashed == 40 and first.tree.objects_uploaded == 40

    objects = set(admin.list_objects())
    before = admin.counters.as_dict()
    second = snapshot(admin, str(src), channel="stable", message="2", key=key, policy=None, publish=True,
                      cache_dir=cache)
    after = admin.counters.as_dict()
    assert second.tree.files_hashed == 0 and second.tree.files_reused == 40 and second.tree.bytes_hashed == 0
    assert second.tree.objects_uploaded == 0 and second.tree.bytes_uploaded == 0
    assert second.tree.changes == {"added": 0, "removed": 0, "modified": 0, "meta": 0}
    assert second.tree.manifest == first.tree.manifest and second.number == 2
    assert set(admin.list_objects()) == objects
    # lock, lease refreshed before the record and before the ref (issue 12), record, ref, key (exists)
    # -- and nothing per file: no object was stat'ed or written
    writes = after["writes"] - before["writes"]
    assert writes <= 6, after
    assert after["stats"] - before["stats"] <= 2, after


def test_changed_files_are_read_again(admin: Store, tmp_path: Path, key_files, aged) -> None:
    src = make_tree(tmp_path / "ref", {"same": b"same", "edited": b"old!", "chmod": b"c", "gone": b"x"})
    aged(src)
    key = load_secret_key(key_files[0])
    cache = tmp_path / "cache"
    snapshot(admin, str(src), channel="c", message="1", key=key, policy=None, publish=True, cache_dir=cache)
    (src / "edited").write_bytes(b"new!")  # same size, new content
    (src / "gone").unlink()
    os.chmod(src / "chmod", 0o600)
    for name in ("edited", "chmod"):  # outside the racy window: only the stat change makes them suspects
        st = os.lstat(src / name)
        os.utime(src / name, ns=(st.st_atime_ns, st.st_mtime_ns - 3600 * 10**9))
    res = snapshot(admin, str(src), channel="c", message="2", key=key, policy=None, publish=True, cache_dir=cache)
    assert res.tree.changes == {"added": 0, "removed": 1, "modified": 1, "meta": 1}
    assert res.tree.objects_uploaded == 1
    assert res.tree.files_hashed == 2 and res.tree.files_reused == 1  # edited + chmod (its ctime moved)


def test_racy_file_is_read_again_although_its_stat_is_unchanged(admin: Store, tmp_path: Path, key_files,
                                                                 aged) -> None:
    src = make_tree(tmp_path / "ref", {"old": b"old", "racy": b"racy"})
    aged(src)
    future = os.lstat(src / "racy").st_mtime_ns + 7200 * 10**9
    os.utime(src / "racy", ns=(future, future))  # mtime not safely older than any scan: always suspect
    key = load_secret_key(key_files[0])
    cache = tmp_path / "cache"
    snapshot(admin, str(src), channel="c", message="1", key=key, policy=None, publish=True, cache_dir=cache)
    res = snapshot(admin, str(src), channel="c", message="2", key=key, policy=None, publish=True, cache_dir=cache)
    assert res.tree.files_hashed == 1 and res.tree.files_reused == 1
    assert res.tree.changes["modified"] == 0


def test_sockets_are_skipped_with_a_warning_and_fifos_kept(cli, admin: Store, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "ref", {"keep": b"k"})
    os.mkfifo(src / "fifo")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(src / "sock"))
    try:
        res = cli("snapshot", src, "-c", "stable", "-m", "x", "--publish")
    finally:
        sock.close()
    assert "FIFO" not in res.stderr
    assert "regen: warning: skipped socket sock" in res.stderr
    assert set(manifest_of(admin)) == {"keep", "fifo"}


def test_name_that_is_not_utf8_is_refused_and_nothing_written(cli, admin: Store, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "ref", {"ok": b"ok"})
    fd = os.open(os.fsencode(src) + b"/bad\xffname", os.O_CREAT | os.O_WRONLY)
    os.close(fd)
    res = cli("snapshot", src, "-c", "stable", "-m", "x", exit_code=SourceInvalid.exit_code)
    line = one_error_line(res.stderr)
    assert "bad\\xffname" in line and "not valid UTF-8" in line
    assert admin.generation_numbers("stable") == []


def test_policy_is_signed_in_and_exclude_keeps_only_directories(cli, admin: Store, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "ref", {"etc/a": b"a", "var/log/big.log": b"log", "var/log/apt/term.log": b"l",
                                       "var/lib/x": b"x",
                                       "tmp/scratch.tmp": b"t", "home/alice/notes": b"n"})
    policy = tmp_path / "policy.toml"
    policy.write_text('preserve = ["home/**"]\nbase = ["etc/**"]\nexclude = ["var/log", "**/*.tmp"]\n'
                      'junk = "keep"\n')
    res = cli("snapshot", src, "-c", "stable", "-m", "p", "--policy", policy, "--publish", "--json").json()
    assert res["policy"] == {"preserve": ["home/**"], "base": ["etc/**"], "exclude": ["var/log", "**/*.tmp"],
                             "junk": "keep"}
    paths = set(manifest_of(admin))
    assert "var/log/big.log" not in paths and "var/log/apt/term.log" not in paths and "tmp/scratch.tmp" not in paths
    assert {"etc/a", "var/lib/x", "tmp", "home/alice/notes", "var/log", "var/log/apt"} <= paths
    # a later snapshot without --policy keeps the channel's policy (never silently drops `preserve`)
    res2 = cli("snapshot", src, "-c", "stable", "-m", "again", "--json").json()
    assert res2["policy"] == res["policy"] and res2["policy_from"] == "generation 1"


@pytest.mark.parametrize("text, needle", [
    ("preserve = [", "not valid TOML"),
    ("presrve = ['x']", "unknown key(s) presrve"),
    ("junk = 'delete'", "'junk' must be one of"),
    ("exclude = ['../etc']", "invalid glob"),
    ("[[procedure]]\nname = 'reload'\nwhen = ['etc']\nrun = ['nginx']", "procedure 'reload': key 'run': the command"),
    ("[[procedure]]\nname = 'reload'\nwhen = ['etc']\nrun = []", "procedure 'reload': key 'run' must be"),
    ("[[procedure]]\nname = 'r'\nwhen = ['etc']\nrun = ['/bin/true']\ntimeout = '5 min'",
     "procedure 'r': key 'timeout'"),
    ("[[procedure]]\nname = 'r'\nwhen = ['etc']\nrun = ['/bin/true']\nshell = true", "procedure 'r': unknown key 'shell'"),
])
def test_bad_policy_file_is_one_line_and_exit_2(cli, admin: Store, tmp_path: Path, text: str, needle: str) -> None:
    src = make_tree(tmp_path / "ref", {"a": b"a"})
    policy = tmp_path / "policy.toml"
    policy.write_text(text)
    res = cli("snapshot", src, "-c", "stable", "-m", "x", "--policy", policy, exit_code=PolicyInvalid.exit_code)
    assert needle in one_error_line(res.stderr)
    assert admin.generation_numbers("stable") == []


def test_without_publish_the_ref_does_not_move(cli, admin: Store, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "ref", {"a": b"a"})
    cli("snapshot", src, "-c", "stable", "-m", "1", "--publish")
    (src / "b").write_bytes(b"b")
    res = cli("snapshot", src, "-c", "stable", "-m", "2")
    assert "not published" in res.stdout and "regen publish 2 --channel stable" in res.stdout
    ref = admin.read_ref("stable")
    assert ref is not None and admin.peek_generation(ref).number == 1
    assert cli("snapshot", src, "-c", "stable", "-m", "3", "-q").stdout.strip() == "3"


def test_a_held_lock_stops_the_snapshot(cli, admin: Store, tmp_path: Path) -> None:
    from regen.store import StoreLock

    src = make_tree(tmp_path / "ref", {"a": b"a"})
    with StoreLock(admin, "another regen"):
        res = cli("snapshot", src, "-c", "stable", "-m", "x", exit_code=LockHeld.exit_code)
    line = one_error_line(res.stderr)
    assert "locked by another regen" in line and "regen unlock" in line
    cli("snapshot", src, "-c", "stable", "-m", "x")  # released: works again


def test_a_damaged_stat_cache_only_costs_a_full_read(admin: Store, tmp_path: Path, key_files, aged) -> None:
    src = make_tree(tmp_path / "ref", {"a": b"a", "b": b"b"})
    aged(src)
    key = load_secret_key(key_files[0])
    cache = tmp_path / "cache"
    snapshot(admin, str(src), channel="c", message="1", key=key, policy=None, publish=True, cache_dir=cache)
    for db in (cache / "snapshot").glob("*.sqlite"):
        db.write_bytes(b"this is not a database" * 100)
    res = snapshot(admin, str(src), channel="c", message="2", key=key, policy=None, publish=True, cache_dir=cache)
    assert res.tree.files_hashed == 2 and res.tree.changes["modified"] == 0


def test_file_changing_while_read_stops_the_snapshot(cli, admin: Store, tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    src = make_tree(tmp_path / "ref", {"a": b"a", "growing.log": b"x" * (4 << 20)})
    writer = subprocess.Popen([sys.executable, "-c",
                               "import sys\nf = open(sys.argv[1], 'ab', buffering=0)\nwhile True: f.write(b'y' * 64)",
                               str(src / "growing.log")])
    try:
        deadline = time.monotonic() + 10
        while os.path.getsize(src / "growing.log") == 4 << 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        res = cli("snapshot", src, "-c", "stable", "-m", "x", "--publish", exit_code=1)
    finally:
        writer.kill()
        writer.wait()
    line = one_error_line(res.stderr)
    assert "growing.log" in line and "changed while it was read" in line and "no generation was written" in line
    assert admin.generation_numbers("stable") == [] and admin.read_ref("stable") is None


def test_unreadable_file_stops_the_snapshot(tmp_path: Path, signing_key) -> None:
    """Run as an unprivileged user (root reads everything), via setpriv when the tests run as root."""
    import shutil
    import subprocess
    import sys
    import tempfile

    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot make a file unreadable")
    base = Path(tempfile.mkdtemp(prefix="regen-unreadable-"))
    try:
        os.chmod(base, 0o755)
        src = make_tree(base / "ref", {"ok": b"ok", "secret": Mode(b"hidden", 0o000)})
        store = Store.init(f"file://{base / 'store'}")
        key = base / "admin.key"
        key.write_text(signing_key.text())
        (base / "cache").mkdir()
        prefix: list[str] = []
        if os.geteuid() == 0:
            for p in (base / "store", base / "cache", key):
                subprocess.run(["chown", "-R", "65534:65534", str(p)], check=True)
            prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        env = {**os.environ, "HOME": str(base), "XDG_CACHE_HOME": str(base / "cache")}
        proc = subprocess.run([*prefix, str(Path(sys.executable).parent / "regen"), "snapshot", str(src),
                               "-c", "stable", "-m", "x", "--store", store.url, "--key", str(key)],
                              capture_output=True, text=True, env=env, timeout=60)
        assert proc.returncode == 1, proc.stderr
        line = one_error_line(proc.stderr)
        assert f"cannot read {src}/secret: Permission denied" in line
        assert store.generation_numbers("stable") == []
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_regens_own_store_and_cache_inside_the_tree_are_left_out(cli, tmp_path: Path, key_files,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_tree(tmp_path / "machine", {"etc/app.conf": b"x"})
    url = f"file://{root}/srv/regen"
    cli("init", url)
    monkeypatch.setenv("XDG_CACHE_HOME", str(root / "var/cache"))
    cli("snapshot", root, "-c", "stable", "-m", "root", "--publish", "--store", url, "--key", key_files[0])
    cli("snapshot", root, "-c", "stable", "-m", "again", "--publish", "--store", url, "--key", key_files[0])
    paths = set(manifest_of(Store.open(url)))
    assert paths == {"etc", "etc/app.conf", "srv", "var", "var/cache"}  # not srv/regen, not var/cache/regen


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a file system needs root")
def test_other_file_systems_below_src_are_kept_as_empty_mount_points(cli, admin: Store, tmp_path: Path) -> None:
    import subprocess

    src = make_tree(tmp_path / "ref", {"etc/a": b"a", "mnt/data/.keep": b""})
    os.unlink(src / "mnt/data/.keep")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0750", "regen-test", str(src / "mnt/data")],
                   check=True)
    try:
        (src / "mnt/data/on-another-fs").write_bytes(b"x")
        res = cli("snapshot", src, "-c", "stable", "-m", "x", "--publish")
        assert res.stderr.count("regen: warning:") == 1
        assert "skipped the content of mount point mnt/data (another file system" in res.stderr
        paths = manifest_of(admin)
        assert "mnt/data" in paths and "mnt/data/on-another-fs" not in paths
        assert paths["mnt/data"].mode == 0o750
        cli("snapshot", src, "-c", "stable", "-m", "y", "--publish", "--cross-file-systems")
        assert "mnt/data/on-another-fs" in manifest_of(admin)
    finally:
        subprocess.run(["umount", "-l", str(src / "mnt/data")], check=False)
