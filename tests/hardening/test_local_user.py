"""Issue 13, from a local user on a client and from ordinary faults: no one gets root through
`regend recover`, the documented defaults never manage regend away, the quarantine has a budget
no user can game, a clock jump deletes nothing, and a world-writable trust anchor is refused.

A "user" is simulated as uid/gid 65534 (nobody) with os.chown; the tests run as root.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import subprocess
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from regen.daemon.config import load_config
from regen.store import SecretKey, Store

from ..conftest import Mode, run_cli
from .conftest import NO_FINDINGS, Client, Recorder, publish

ROOT = Path(__file__).resolve().parents[2]
USER = 65534
SPEC = {"app/bin/run": Mode(b"#!/bin/sh\necho run\n", 0o755), "etc/app.conf": b"conf\n", "drop": None}
SETUID = b"\x7fELF pretend this is a copy of /bin/sh"
FAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def recover_runs(c: Client) -> list[dict[str, Any]]:
    return json.loads(c.regend("recover", "--list", "--json").stdout)  # type: ignore[no-any-return]


def plant_setuid(c: Client) -> Path:
    """The attack: a user drops a setuid copy of a program into a managed directory they can write."""
    p = c.root / "drop" / "sh"
    p.write_bytes(SETUID)
    os.chown(p, USER, USER)
    p.chmod(0o4755)
    return p


def assert_no_root_setuid(p: Path) -> None:
    s = p.lstat()
    assert stat.S_ISREG(s.st_mode)
    assert not (s.st_uid == 0 and s.st_mode & (stat.S_ISUID | stat.S_ISGID)), (s.st_uid, oct(s.st_mode))


@pytest.fixture
def installed(file_store: Store, signing_key: SecretKey, make_client: Callable[..., Client]) -> Client:
    publish(file_store, signing_key, SPEC, number=1)
    c: Client = make_client(file_store.url)
    c.regend("run", "--once")
    return c


# -- 1. recover gives no one root ---------------------------------------------------------------------
def test_recover_in_place_restores_the_users_owner_not_root(installed: Client, record: Recorder) -> None:
    c = installed
    plant_setuid(c)
    c.regend("run", "--once")
    assert not (c.root / "drop" / "sh").exists()
    run_id = recover_runs(c)[-1]["run_id"]
    c.regend("recover", run_id, "drop/sh", "--in-place")
    p = c.root / "drop" / "sh"
    s = p.lstat()
    assert (s.st_uid, s.st_gid, stat.S_IMODE(s.st_mode)) == (USER, USER, 0o4755) and p.read_bytes() == SETUID
    assert_no_root_setuid(p)
    record.intact(1)


def test_recover_to_never_follows_a_planted_symlink(installed: Client, tmp_path: Path, record: Recorder) -> None:
    c = installed
    plant_setuid(c)
    c.regend("run", "--once")
    run_id = recover_runs(c)[-1]["run_id"]
    outside = tmp_path / "outside"  # where the user wants a root-owned setuid file to land
    outside.mkdir()
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "drop").symlink_to(outside)
    res = c.regend("recover", run_id, "--to", str(dest), exit_code=1)
    assert "drop" in res.stderr and "symlink" in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert list(outside.iterdir()) == []
    # DIR itself reached through a symlink, or owned by the user, or inside the managed tree: refused
    (tmp_path / "via").symlink_to(dest)
    res = c.regend("recover", run_id, "--to", str(tmp_path / "via" / "sub"), exit_code=1)
    assert list(outside.iterdir()) == []
    users = tmp_path / "users"
    users.mkdir()
    os.chown(users, USER, USER)
    res = c.regend("recover", run_id, "--to", str(users), exit_code=2)
    assert f"{users} is owned by uid {USER}" in res.stderr and list(users.iterdir()) == []
    res = c.regend("recover", run_id, "--to", str(c.root / "app"), exit_code=2)
    assert "inside the managed tree" in res.stderr
    # a clean destination: the user's file comes back as the user's, never as root's
    good = tmp_path / "good"
    c.regend("recover", run_id, "--to", str(good))
    p = good / "drop" / "sh"
    assert (p.lstat().st_uid, stat.S_IMODE(p.lstat().st_mode)) == (USER, 0o4755)
    assert_no_root_setuid(p)
    record.intact(1)


# -- 2. the documented defaults on a stand-in "/" ----------------------------------------------------
def test_documented_defaults_never_manage_regend_away(file_store: Store, signing_key: SecretKey, key_files,
                                                      tmp_path: Path, record: Recorder) -> None:
    """root = a stand-in "/" holding etc/regen/regend.toml, the trusted key, an sftp known_hosts and
    the state dir; the generation (default policy: junk is quarantined) knows none of them."""
    slash = tmp_path / "slash"
    publish(file_store, signing_key, {"etc/hostname": b"lab\n", "usr/bin/app": Mode(b"#!/bin/sh\n", 0o755)},
            number=1)
    conf = tomllib.loads((ROOT / "contrib" / "regend.toml").read_text())
    etc = slash / "etc" / "regen"
    etc.mkdir(parents=True)
    shutil.copy(key_files[1], etc / "admin.key.pub")
    (etc / "known_hosts").write_text("store.example ssh-ed25519 AAAA\n")
    (slash / "home" / "alice").mkdir(parents=True)
    (slash / "home" / "alice" / "notes").write_text("mine\n")
    conf.update(store=file_store.url, host="lab-01", root=str(slash), state_dir=str(slash / conf["state_dir"][1:]),
                trusted_keys=[str(slash / p[1:]) for p in conf["trusted_keys"]])
    conf["hooks"]["start_check"] = [f"/usr/bin/test -w {conf['state_dir']}"]
    (etc / "regend.toml").write_text(_toml(conf))
    hw = tmp_path / "hardware.json"
    hw.write_text(json.dumps(NO_FINDINGS))
    before = {p: p.read_bytes() for p in etc.iterdir()}
    for _ in range(2):  # the second boot must start as well (it exited 2 before: config gone)
        res = run_cli("regend", "run", "--once", "--config", str(etc / "regend.toml"),
                      env={"REGEN_TEST_HARDWARE": str(hw)})
        assert "quarantined" not in res.stdout or "quarantined 0" in res.stdout, res.stdout
    assert {p: p.read_bytes() for p in etc.iterdir()} == before
    assert (slash / "home" / "alice" / "notes").read_text() == "mine\n"
    assert (slash / "etc" / "hostname").read_bytes() == b"lab\n"
    # files named by storage options (sftp's key_filename, known_hosts: only an sftp store takes
    # them) are preserved the same way, nested tables included
    conf["storage_options"].update(known_hosts=str(etc / "known_hosts"), nested={"key_filename": [str(etc / "id")]})
    (etc / "regend.toml").write_text(_toml(conf))
    cfg = load_config(str(etc / "regend.toml"), {})
    assert {"etc/regen/known_hosts", "etc/regen/id", "etc/regen/regend.toml", "etc/regen/admin.key.pub",
            "var/lib/regen"} <= set(cfg.preserve)
    record.intact(len(before) + 1)


def _value(v: Any) -> str:
    if isinstance(v, dict):  # an inline table
        return "{ " + ", ".join(f"{k} = {_value(x)}" for k, x in v.items()) + " }"
    return json.dumps(v)


def _toml(data: dict[str, Any]) -> str:
    top = [f"{k} = {_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    tables = [f"[{k}]\n" + "\n".join(f"{kk} = {_value(vv)}" for kk, vv in v.items())
              for k, v in data.items() if isinstance(v, dict)]
    return "\n".join(top) + "\n\n" + "\n\n".join(tables) + "\n"


# -- 3. a quarantine budget no user can game ---------------------------------------------------------
@pytest.fixture
def tmpfs() -> Iterator[Callable[[Path, str], Path]]:
    mounted: list[Path] = []

    def mount(path: Path, size: str) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
                             capture_output=True, text=True)
        if res.returncode != 0:  # needs root: fail, never skip
            pytest.fail(f"cannot mount a tmpfs: {res.stderr.strip()}", pytrace=False)
        mounted.append(path)
        return path

    yield mount
    for p in reversed(mounted):
        subprocess.run(["umount", "-l", str(p)], check=False)


def sparse(path: Path, size: int = 20 << 30) -> Path:
    with open(path, "wb") as fp:
        fp.write(b"head")
        fp.truncate(size)
    os.chown(path, USER, USER)
    return path


def damaged_index(c: Client) -> list[Path]:
    return list(c.state.glob("index.db.damaged*"))


@pytest.mark.slow  # the scan hashes the 20 GB of the junk file (xxh3 over holes) on each run
def test_sparse_20g_file_with_state_dir_on_a_small_tmpfs(file_store: Store, signing_key: SecretKey,
                                                         make_client: Callable[..., Client], tmpfs,
                                                         record: Recorder) -> None:
    publish(file_store, signing_key, SPEC, number=1)
    c: Client = make_client(file_store.url, limits={"min_free_bytes": "8M"})
    tmpfs(c.state, "64m")
    c.regend("run", "--once")
    sparse(c.root / "drop" / "big")
    res = c.regend("run", "--once")
    kept = [p for p in (c.state / "quarantine").rglob("big")]
    assert len(kept) == 1 and kept[0].stat().st_size == 20 << 30, res.stdout
    assert kept[0].stat().st_blocks * 512 < 1 << 20  # the holes stayed holes
    # a dense file the tmpfs cannot hold: left in place and reported; the boot goes on
    dense = c.root / "drop" / "dense"
    dense.write_bytes(os.urandom(80 << 20))
    res = c.regend("run", "--once")
    assert dense.exists() and "left in place" in res.stderr, res.stderr
    assert damaged_index(c) == [] and len(recover_runs(c)) == 1
    c.regend("run", "--once")
    assert damaged_index(c) == [] and shutil.disk_usage(c.state).free > 8 << 20
    record.intact(1)


@pytest.mark.slow
def test_sparse_file_on_the_same_fs_evicts_no_earlier_run(installed: Client, record: Recorder) -> None:
    c = installed
    (c.root / "drop" / "first").write_bytes(b"the user's earlier file\n")
    c.regend("run", "--once")
    sparse(c.root / "drop" / "big")
    c.regend("run", "--once")
    runs = recover_runs(c)
    assert len(runs) == 2, runs  # the 20 GB "weight" (st_size) evicted the earlier run before
    first = [p for p in (c.state / "quarantine").rglob("first")]
    assert len(first) == 1 and first[0].read_bytes() == b"the user's earlier file\n"
    record.intact(1)


def test_a_run_past_its_budget_leaves_the_file_in_place(installed: Client, record: Recorder) -> None:
    c = installed
    c.write_config(quarantine={"max_run_bytes": "1M"})
    (c.root / "drop" / "small").write_bytes(b"s" * 1000)
    (c.root / "drop" / "large").write_bytes(os.urandom(2 << 20))
    res = c.regend("run", "--once")
    assert (c.root / "drop" / "large").exists() and not (c.root / "drop" / "small").exists()
    assert "left in place" in res.stderr and "budget" in res.stderr, res.stderr
    assert c.last_report()["actions"].get("left_in_place") == 1
    record.intact(1)


# -- 4. a clock 400 days ahead, then back ------------------------------------------------------------
@pytest.mark.slow  # five regend runs
def test_clock_400_days_ahead_then_back_deletes_no_quarantine_run(installed: Client, record: Recorder) -> None:
    """The clock is shifted by libfaketime around the regend process (the harness), never by a
    variable regend reads; the retention floor is off here so the clock rule alone is tested."""
    assert os.path.exists(FAKETIME), "libfaketime (Debian package faketime) is needed: contrib/test.sh installs it"
    c = installed
    c.write_config(quarantine={"keep_runs": 0})
    for name in ("one", "two"):
        (c.root / "drop" / name).write_text(name)
        c.regend("run", "--once")
    ahead = {"LD_PRELOAD": FAKETIME, "FAKETIME": "+400d", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    (c.root / "drop" / "three").write_text("three")
    res = c.regend("run", "--once", env=ahead)
    assert "clock may be wrong" in res.stderr, res.stderr
    assert len(recover_runs(c)) == 3
    (c.root / "drop" / "four").write_text("four")
    res = c.regend("run", "--once")  # back to the right time: the run "from the future" is kept too
    assert "clock may be wrong" in res.stderr, res.stderr
    assert len(recover_runs(c)) == 4
    # 400 days behind: behind the signed generation's creation time (reported), every run "from the future"
    behind = {**ahead, "FAKETIME": "-400d"}
    (c.root / "drop" / "five").write_text("five")
    res = c.regend("run", "--once", env=behind)
    assert "days behind the creation time of the channel's generation" in res.stderr, res.stderr
    assert len(recover_runs(c)) == 5
    record.intact(5)


# -- 7. trust anchors guarded ------------------------------------------------------------------------
@pytest.mark.parametrize("what", ["config-world-writable", "config-group-writable", "key-world-writable",
                                  "key-owned-by-user"])
def test_a_trust_anchor_anyone_could_change_is_refused(installed: Client, what: str) -> None:
    c = installed
    path = c.config if what.startswith("config") else c.pub_key
    if what.endswith("world-writable"):
        path.chmod(0o666)
    elif what.endswith("group-writable"):
        path.chmod(0o664)
    else:
        os.chown(path, USER, USER)
    before = c.tree()
    res = c.regend("run", "--once", exit_code=2)
    line = res.stderr.strip()
    assert "\n" not in line and str(path) in line and "refusing to trust it" in line, line
    assert ("chmod go-w" in line) if "writable" in what else ("chown root:root" in line)
    assert c.tree() == before


# -- a directory swapped for a symlink during a scan -------------------------------------------------
def test_a_directory_swapped_for_a_symlink_mid_walk_is_not_listed(tmp_path: Path) -> None:
    """The walk (regend's scan, regen's snapshot) has seen `app` as a directory; a user then swaps it
    for a symlink to a directory outside the tree before it is listed: its content is never listed."""
    from regen.store import walk

    root = tmp_path / "root"
    (root / "app").mkdir(parents=True)
    (root / "app" / "mine").write_text("x")
    outside = tmp_path / "etc"
    outside.mkdir()
    (outside / "shadow").write_text("secret")
    errors: list[tuple[str, OSError]] = []
    seen = []
    for rel, s in walk(str(root), onerror=lambda rel, exc: errors.append((rel, exc))):
        seen.append(rel)
        if rel == "app":
            (root / "app").rename(tmp_path / "moved")
            (root / "app").symlink_to(outside)
    assert seen == ["app"] and [r for r, _ in errors] == ["app"], (seen, errors)
    assert errors[0][1].errno in (errno.ENOTDIR, errno.ELOOP)
    # swapped for another real directory (a bind mount, a rename): refused too (device and inode differ)
    errors.clear()
    (root / "app").unlink()
    (root / "app").mkdir()
    seen = []
    for rel, _s in walk(str(root), onerror=lambda rel, exc: errors.append((rel, exc))):
        seen.append(rel)
        if rel == "app":
            (root / "app").rename(tmp_path / "moved-again")
            (outside).rename(root / "app")
    assert seen == ["app"] and "replaced during the walk" in str(errors[0][1]), (seen, errors)
