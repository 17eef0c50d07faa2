"""The whole cycle on every real backend: what an administrator and a client machine rely on.

regen init, keygen, snapshot --publish (the installed `regen`, storage options as -o); a client
installs itself with `regend run --once` (the installed `regend`, regend.toml with
[storage_options]); it is damaged and repairs itself, unmanaged files kept in quarantine and
users' files untouched; a new generation is published and the client updates; its reports
reach the store and `regen status` shows the host. On http:// the client reads a plain web
server serving the folder the administrator writes to; that store is read-only to clients, so
their reports wait in the outbox (contrib/backends/http-nginx.md) and `regen status` does not
show the host.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from tests.conftest import Mode, make_tree
from tests.servers import Target

from .conftest import REFERENCE_1, Site, tree_state

USER_FILES = {"home/alice/notes.txt": "alice's notes\n", "home/alice/.profile": Mode(b"umask 022\n", 0o600)}
STRAY = b"left behind by someone\n"


def _damage(root: Path) -> None:
    """A deleted file, a modified one, a modified base file, a chmod, a retargeted symlink, junk."""
    (root / "etc/app/app.conf").unlink()
    (root / "usr/share/doc/README").write_text("read me, edited on the client\n")
    with open(root / "usr/bin/app", "a") as fp:
        fp.write("echo hacked\n")
    (root / "usr/share/app/data.bin").chmod(0o777)
    (root / "usr/bin/data-link").unlink()
    os.symlink("/etc/passwd", root / "usr/bin/data-link")
    (root / "usr/share/app/stray.tmp").write_bytes(STRAY)
    shutil.rmtree(root / "var/lib/app")


def _generation_2(ref: Path) -> None:
    """Changed, added and removed files, a new mode and a new symlink target."""
    (ref / "etc/app/app.conf").write_text("listen = 9090\n")
    (ref / "usr/bin/app").write_bytes(b"#!/bin/sh\necho 'app v2'\n")
    (ref / "usr/share/doc/README").unlink()
    (ref / "usr/share/app/private.key").chmod(0o640)
    (ref / "usr/bin/data-link").unlink()
    os.symlink("../share/app/new.txt", ref / "usr/bin/data-link")
    make_tree(ref, {"usr/share/app/new.txt": "new in generation 2\n", "opt/tool/run": Mode(b"#!/bin/sh\n", 0o700)})


def test_cycle(backend_site: Site, tmp_path: Path) -> None:
    s = backend_site
    reports_reach_store = not s.target.read_only

    # the administrator: a store, a key, generation 1 published
    s.create()
    make_tree(s.ref, REFERENCE_1)
    snap = s.snapshot("first release")
    assert snap["number"] == 1 and snap["published"], snap

    # a client installs itself from an empty root; users' files are there already
    s.install_client(USER_FILES)
    home_before = _home(s.root)
    report, res = s.run_once()
    assert report["outcome"] == "updated" and report["exit_code"] == 0, report
    assert report["generation_before"] is None and report["generation_after"] == 1
    s.assert_converged()
    assert _home(s.root) == home_before
    _check_report_delivery(s, res.stderr, reports_reach_store, runs=1)

    # damage, then a run repairs it: junk (and every overwritten local content) goes to quarantine
    _damage(s.root)
    report, res = s.run_once()
    assert report["outcome"] == "repaired" and report["exit_code"] == 0, report
    drift = {kind: set(d["paths"]) for kind, d in report["drift"].items()}
    assert drift["deleted"] == {"etc/app/app.conf", "var/lib/app"}, report["drift"]
    assert drift["created"] == {"usr/share/app/stray.tmp"}, report["drift"]
    assert {"usr/share/doc/README", "usr/bin/app"} <= drift["modified"], report["drift"]
    assert "usr/share/app/data.bin" in drift["meta"], report["drift"]
    assert drift["modified"] | drift["meta"] == {"usr/share/doc/README", "usr/bin/app", "usr/share/app/data.bin",
                                                 "usr/bin/data-link"}, report["drift"]  # (a retarget: meta)
    s.assert_converged()
    assert _home(s.root) == home_before
    assert not (s.root / "usr/share/app/stray.tmp").exists()
    runs = json.loads(s.regend("recover", "--list", "--json").stdout)
    assert len(runs) == 1, runs
    quarantined = {p["path"] for p in runs[0]["paths"]}
    assert {"usr/share/app/stray.tmp", "usr/share/doc/README", "usr/bin/app"} <= quarantined, quarantined
    s.regend("recover", runs[0]["run_id"], "usr/share/app/stray.tmp", "--to", str(tmp_path / "recovered"))
    assert [p.read_bytes() for p in (tmp_path / "recovered").rglob("stray.tmp")] == [STRAY]
    _check_report_delivery(s, res.stderr, reports_reach_store, runs=2)

    # nothing to do: a run changes nothing
    report, _ = s.run_once()
    assert report["outcome"] == "ok" and report["generation_after"] == 1, report
    assert report["bytes_fetched"] == 0 and not report["actions"].get("written"), report

    # generation 2: the client updates to it
    _generation_2(s.ref)
    snap = s.snapshot("listen on 9090, app v2")
    assert snap["number"] == 2 and snap["published"], snap
    report, res = s.run_once()
    assert report["outcome"] == "updated" and report["exit_code"] == 0, report
    assert report["generation_before"] == 1 and report["generation_after"] == 2
    s.assert_converged()
    assert _home(s.root) == home_before
    assert s.status()["installed"] == 2
    _check_report_delivery(s, res.stderr, reports_reach_store, runs=4)

    # the fleet as the administrator sees it
    fleet = s.fleet()
    hosts = {h["host"]: h for h in fleet["hosts"]}
    if reports_reach_store:
        assert set(hosts) == {s.host}, fleet
        assert hosts[s.host]["generation"] == 2 and hosts[s.host]["state"] == "updated", hosts[s.host]
    else:
        assert hosts == {}, fleet


def _home(root: Path) -> dict[str, object]:
    return tree_state(root / "home")


def _check_report_delivery(s: Site, stderr: str, reaches_store: bool, runs: int) -> None:
    """Reports go to the store; on a read-only store they wait in the outbox (none lost)."""
    status = s.status()
    if reaches_store:
        assert status["outbox"] == 0, status
        assert "outbox" not in stderr, stderr
    else:
        assert status["outbox"] == runs, status
        assert "the report waits in the outbox" in stderr and "read-only" in stderr, stderr



def test_http_clients_report_through_a_writable_report_store(http_target: Target, tmp_path: Path) -> None:
    """A client of a read-only http store sends its reports to `[reports] store` (here the store's
    own folder, as a writable share would be) and so appears in `regen status`; nothing waits."""
    s = Site(http_target, tmp_path, "host-http-reports")
    s.create()
    make_tree(s.ref, REFERENCE_1)
    s.snapshot("first release")
    s.install_client(USER_FILES, report_store=http_target.write_url)
    report, res = s.run_once()
    assert report["outcome"] == "updated", report
    s.assert_converged()
    assert s.status()["outbox"] == 0 and "outbox" not in res.stderr, res.stderr
    hosts = {h["host"]: h for h in s.fleet()["hosts"]}
    assert hosts[s.host]["generation"] == 1 and hosts[s.host]["state"] == "updated", hosts
