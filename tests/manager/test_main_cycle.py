"""The administrator's whole cycle through real subprocesses of the installed `regen`."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

from regen.store import HardwareFinding, Report, Store, format_time, utcnow

from ..conftest import Mode, Symlink, make_tree
from .conftest import age_tree


def test_init_to_status_on_a_file_store(run_regen, tmp_path: Path) -> None:
    url = f"file://{tmp_path}/store"
    key = tmp_path / "keys" / "admin.key"
    env = {"REGEN_STORE": url, "REGEN_KEY": str(key)}
    ref = make_tree(tmp_path / "ref", {
        "etc/app.conf": b"listen = 8080\n", "usr/bin/app": Mode(b"#!/bin/sh\necho v1\n", 0o755),
        "usr/bin/data-link": Symlink("../share/data"), "var/empty": None, "home/alice/notes": b"mine",
        "name with\nnewline": b"n",
    })
    age_tree(ref)
    policy = tmp_path / "policy.toml"
    policy.write_text('preserve = ["home/**"]\nbase = ["usr/bin/**"]\nexclude = ["home"]\n')

    run_regen("init", url)
    assert "key id" in run_regen("keygen", str(key)).stdout
    first = json.loads(run_regen("snapshot", str(ref), "--channel", "stable", "-m", "first", "--policy", str(policy),
                                 "--publish", "--json", env=env).stdout)
    assert first["number"] == 1 and first["files_hashed"] == 3 and first["uploaded"]["objects"] == 3

    again = json.loads(run_regen("snapshot", str(ref), "-c", "stable", "-m", "unchanged", "--publish", "--json",
                                 env=env).stdout)
    assert again["files_hashed"] == 0 and again["files_reused"] == 3 and again["uploaded"]["objects"] == 0
    assert again["policy_from"] == "generation 1"

    (ref / "etc/app.conf").write_bytes(b"listen = 9090\n")
    third = run_regen("snapshot", str(ref), "-c", "stable", "-m", "port 9090", "--publish", env=env).stdout
    assert "generation 3 of channel stable: published" in third and "1 modified" in third

    log = json.loads(run_regen("log", "--json", env=env).stdout)
    assert [g["number"] for g in log["channels"][0]["generations"]] == [1, 2, 3] and log["channels"][0]["ref"] == 3
    assert '"verified": true' in run_regen("show", "3", "--json", env=env).stdout
    assert "M etc/app.conf" in run_regen("diff", "2", "3", env=env).stdout

    rolled = run_regen("rollback", "--channel", "stable", env=env).stdout
    assert "generation 4" in rolled and "content of generation 2" in rolled
    assert "etc/app.conf" in run_regen("diff", "3", "4", env=env).stdout

    own = make_tree(tmp_path / "kiosk-01", {"etc/hostname": b"kiosk-01\n"})
    assert run_regen("host", "set", "kiosk-01", str(own), "--plaintext", "-q", env=env).stdout.strip() == "1"

    store = Store.open(url)
    t = format_time(utcnow())
    old = format_time(utcnow() - timedelta(days=3))
    store.put_report(Report("kiosk-01", "r1", t, t, "ok", 0, "stable", 4, 4))
    store.put_report(Report("kiosk-02", "r2", t, t, "quarantined", 3, "stable", 4, 4, findings=(
        HardwareFinding("memory", "fail", "memory shrank from 8 GB to 4 GB", {"before": 8, "now": 4}, usable=False),)))
    store.put_report(Report("kiosk-03", "r3", old, old, "ok", 0, "stable", 2, 2))
    status = run_regen("status", env=env).stdout
    assert "3 hosts" in status and "quarantined" in status and "stale" in status
    assert "replace hardware  kiosk-02: memory" in status and "stuck             kiosk-03" in status

    gc = run_regen("gc", "--keep", "2", "--dry-run", env=env).stdout
    assert "would delete" in gc and "2 generations" in gc
    assert "no damage found" in run_regen("fsck", env=env).stdout


def test_errors_through_the_installed_command(run_regen, tmp_path: Path) -> None:
    res = run_regen("log", "--store", f"file://{tmp_path}/nothing", exit_code=2)
    assert res.stderr.startswith("regen: error: no regen store at") and res.stderr.count("\n") == 1
    res = run_regen("snapshot", str(tmp_path), "-m", "x", exit_code=2)
    assert res.stderr.strip() == "regen: error: Missing option '--channel' / '-c'. (see 'regen snapshot --help')"
    res = run_regen(exit_code=2)
    assert "Usage: regen" in res.stdout + res.stderr
    assert run_regen("--help").stdout.count("Usage: regen") == 1
