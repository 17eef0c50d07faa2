"""Procedures through real `regend` runs: what fires, in which order, how often, and what a failure does.

The reference tree holds an app (app/bin/app), its config (app/etc/app.conf) and a "service"
(app/bin/service): a script that appends one line per call to a log outside the root, naming
the action, the phase, the stage, the app version it sees and the changed paths it was given.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from regen.store import EXIT_FAILED, EXIT_QUARANTINED, Policy, Procedure, Store
from tests.conftest import Mode, run_cli

from .conftest import Client, publish

SERVICE = """#!/bin/sh
paths=$(tr '\\n' ',' < "$REGEN_CHANGED_PATHS_FILE")
version=$(cat "$REGEN_ROOT/app/bin/app" 2>/dev/null || echo none)
echo "$1 $REGEN_PHASE $REGEN_STAGE gen=$REGEN_GENERATION app=$version paths=$paths" >> {log}
"""


def tree(log: Path, *, app: str = "v1", conf: str = "port = 1\n") -> dict[str, Any]:
    return {"app/bin/app": Mode(app.encode(), 0o755), "app/etc/app.conf": conf,
            "app/bin/service": Mode(SERVICE.format(log=log).encode(), 0o755), "app/share/readme": "hello\n"}


def policy(root: Path, *extra: Procedure) -> Policy:
    svc = str(root / "app/bin/service")
    return Policy(procedures=(
        Procedure("stop app", ("app/bin/app",), (svc, "stop"), on=("update",), stage="before"),
        Procedure("start app", ("app/bin/app",), (svc, "start"), stage="after"),
        Procedure("reload app", ("app/etc/**",), (svc, "reload")),
        *extra,
    ))


def lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def installed(client: Client, store: Store, key: Any, log: Path, **extra: Any) -> Policy:
    pol = policy(client.root, *extra.pop("procs", ()))
    publish(store, key, tree(log, **extra), number=1, policy=pol)
    client.regend("run", "--once")
    return pol


def procedures_step(store: Store, host: str = "client-01") -> dict[str, Any]:
    report = store.read_latest_report(host)
    assert report is not None
    return dict(report.steps.get("procedures") or {})


def test_install_fires_start_and_reload_after_the_tree_is_complete(client: Client, file_store: Store,
                                                                   signing_key, tmp_path: Path) -> None:
    log = tmp_path / "service.log"
    installed(client, file_store, signing_key, log)
    assert lines(log) == ["start install after gen=1 app=v1 paths=app/bin/app,",
                          "reload install after gen=1 app=v1 paths=app/etc/app.conf,"]
    ran = procedures_step(file_store)["ran"]
    assert [(r["name"], r["exit_status"], r["ok"]) for r in ran] == [("start app", 0, True), ("reload app", 0, True)]
    assert ran[1]["paths"] == ["app/etc/app.conf"] and ran[1]["seconds"] >= 0


def test_config_change_fires_exactly_the_matching_procedure_once(client: Client, file_store: Store, signing_key,
                                                                 tmp_path: Path) -> None:
    log = tmp_path / "service.log"
    pol = installed(client, file_store, signing_key, log)
    log.unlink()
    publish(file_store, signing_key, tree(log, conf="port = 2\n"), number=2, policy=pol)
    out = client.regend("run", "--once")
    assert out.stdout.startswith("updated:")
    assert lines(log) == ["reload update after gen=2 app=v1 paths=app/etc/app.conf,"]


def test_binary_change_stops_before_and_starts_after(client: Client, file_store: Store, signing_key,
                                                     tmp_path: Path) -> None:
    log = tmp_path / "service.log"
    pol = installed(client, file_store, signing_key, log)
    log.unlink()
    publish(file_store, signing_key, tree(log, app="v2"), number=2, policy=pol)
    client.regend("run", "--once")
    # stop saw the old binary still in place, start the new one
    assert lines(log) == ["stop update before gen=2 app=v1 paths=app/bin/app,",
                          "start update after gen=2 app=v2 paths=app/bin/app,"]


def test_repair_of_drifted_config_fires_it_and_no_change_fires_nothing(client: Client, file_store: Store,
                                                                       signing_key, tmp_path: Path) -> None:
    log = tmp_path / "service.log"
    installed(client, file_store, signing_key, log)
    log.unlink()
    client.regend("run", "--once")
    assert lines(log) == [] and procedures_step(file_store) == {}
    (client.root / "app/etc/app.conf").write_text("port = 6666\n")
    out = client.regend("run", "--once")
    assert out.stdout.startswith("repaired:")
    assert lines(log) == ["reload repair after gen=1 app=v1 paths=app/etc/app.conf,"]
    # a mode change is a change too
    log.unlink()
    (client.root / "app/etc/app.conf").chmod(0o600)
    client.regend("run", "--once")
    assert lines(log) == ["reload repair after gen=1 app=v1 paths=app/etc/app.conf,"]


@pytest.mark.slow  # (waits 3 s for the killed group's child)
def test_timeout_kills_the_procedure_and_report_lets_the_run_go_on(client: Client, file_store: Store,
                                                                  signing_key, tmp_path: Path) -> None:
    log = tmp_path / "service.log"
    marker = tmp_path / "child-survived"
    slow = Procedure("slow", ("app/share/**",), ("/bin/sh", "-c", f"(sleep 3; touch {marker}) & echo going; sleep 30"),
                     timeout=0.5)
    installed(client, file_store, signing_key, log, procs=[slow])
    ran = {r["name"]: r for r in procedures_step(file_store)["ran"]}
    assert ran["slow"]["timed_out"] and not ran["slow"]["ok"] and ran["slow"]["output_tail"] == "going\n"
    assert ran["slow"]["seconds"] < 3
    report = file_store.read_latest_report("client-01")
    assert report is not None and report.exit_code == 0 and report.outcome == "updated"
    assert any("procedure 'slow' did not finish" in w for w in report.warnings)
    # the whole process group was killed: the background child never got to its touch
    import time
    time.sleep(3.2)
    assert not marker.exists()
    # report: done, even though it failed; the next run does not retry it
    client.regend("run", "--once")
    assert procedures_step(file_store) == {}


def failing(mode: str) -> Procedure:
    return Procedure(f"check {mode}", ("app/share/**",), ("/bin/sh", "-c", "echo broken >&2; exit 7"), failure=mode)


@pytest.mark.slow  # (three runs and two regen status)
def test_fail_run_exits_1_and_the_next_run_retries(client: Client, file_store: Store, signing_key,
                                                   tmp_path: Path) -> None:
    log = tmp_path / "service.log"
    pol = policy(client.root, failing("fail-run"))
    publish(file_store, signing_key, tree(log), number=1, policy=pol)
    out = client.regend("run", "--once", exit_code=EXIT_FAILED)
    assert "procedure 'check fail-run' exited with status 7: broken" in out.stdout + out.stderr
    ran = {r["name"]: r for r in procedures_step(file_store)["ran"]}
    assert ran["check fail-run"]["exit_status"] == 7 and ran["check fail-run"]["output_tail"] == "broken\n"
    assert ran["reload app"]["ok"]  # the others still ran
    again = client.regend("run", "--once", exit_code=EXIT_FAILED)  # still pending: tried again, fails again
    assert "check fail-run" in again.stdout + again.stderr
    assert [r["name"] for r in procedures_step(file_store)["ran"]] == ["check fail-run"]
    # the administrator sees it as an action
    status = run_cli("regen", "status", "--store", file_store.url, "--json", exit_code=None)
    (failed,) = json.loads(status.stdout)["actions"]["failed_procedures"]
    assert failed == {"host": "client-01", "name": "check fail-run", "failure": "fail-run", "exit_status": 7,
                      "timed_out": False, "last_line": "broken"}
    text = run_cli("regen", "status", "--store", file_store.url, exit_code=None).stdout
    assert "failed procedure  client-01: 'check fail-run' (exit status 7, on failure fail-run): broken" in text


def test_quarantine_failure_exits_3_like_a_refused_start(client: Client, file_store: Store, signing_key,
                                                         tmp_path: Path) -> None:
    log = tmp_path / "service.log"
    pol = policy(client.root, failing("quarantine"))
    publish(file_store, signing_key, tree(log), number=1, policy=pol)
    out = client.regend("run", "--once", exit_code=EXIT_QUARANTINED)
    assert "start refused: procedure 'check quarantine' exited with status 7" in out.stdout + out.stderr
    report = file_store.read_latest_report("client-01")
    assert report is not None and report.outcome == "quarantined" and report.exit_code == EXIT_QUARANTINED
    client.regend("run", "--once", exit_code=EXIT_QUARANTINED)  # until it succeeds, the machine stays down


def test_failing_before_procedure_with_fail_run_leaves_the_tree_untouched(client: Client, file_store: Store,
                                                                         signing_key, tmp_path: Path) -> None:
    log = tmp_path / "service.log"
    gate = tmp_path / "gate-open"
    guard = Procedure("guard", ("app/bin/app",), ("/bin/sh", "-c", f"test -e {gate}"), on=("update",),
                      stage="before", failure="fail-run")
    pol = installed(client, file_store, signing_key, log, procs=[guard])
    publish(file_store, signing_key, tree(log, app="v2"), number=2, policy=pol)
    client.regend("run", "--once", exit_code=EXIT_FAILED)
    assert (client.root / "app/bin/app").read_bytes() == b"v1"
    gate.touch()
    client.regend("run", "--once")
    assert (client.root / "app/bin/app").read_bytes() == b"v2"


@pytest.mark.slow  # (several killed runs)
def test_killed_between_apply_and_procedure_the_next_run_runs_it(client: Client, file_store: Store,
                                                                 signing_key, tmp_path: Path) -> None:
    log = tmp_path / "service.log"
    pol = installed(client, file_store, signing_key, log)
    log.unlink()
    publish(file_store, signing_key, tree(log, conf="port = 2\n"), number=2, policy=pol)
    # the update writes one file: killed at each of its operations in turn (a killed run is resumed
    # by the next), until the kill lands right after the rename, before the procedure ran
    for n in range(1, 10):
        killed = client.regend("run", "--once", exit_code=None, env={"REGEN_TEST_KILL_AFTER": str(n)})
        assert killed.returncode == -signal.SIGKILL, killed
        if (client.root / "app/etc/app.conf").read_text() == "port = 2\n":
            break
    assert (client.root / "app/etc/app.conf").read_text() == "port = 2\n"
    assert lines(log) == []
    db = sqlite3.connect(client.state / "index.db")
    try:
        (pending,) = db.execute("select value from state where name = 'procedures'").fetchone()
    finally:
        db.close()
    assert [f["name"] for f in json.loads(pending)["fired"]] == ["reload app"]
    out = client.regend("run", "--once")
    assert "procedures fired by an interrupted run are run by this one: 'reload app'" in out.stderr + out.stdout
    assert lines(log) == ["reload update after gen=2 app=v1 paths=app/etc/app.conf,"]
    log.unlink()
    client.regend("run", "--once")  # at least once, not forever
    assert lines(log) == []


def test_changed_and_changed_back_within_one_run_still_fires(client: Client, file_store: Store, signing_key,
                                                             tmp_path: Path) -> None:
    """The repair puts the drifted config back to generation 1, the update then moves it to
    generation 2's: both applies fire "reload app", which runs once, after the last."""
    log = tmp_path / "service.log"
    pol = installed(client, file_store, signing_key, log)
    log.unlink()
    (client.root / "app/etc/app.conf").write_text("port = 2\n")  # drift that happens to be generation 2's
    publish(file_store, signing_key, tree(log, conf="port = 3\n"), number=2, policy=pol)
    client.regend("run", "--once")
    assert (client.root / "app/etc/app.conf").read_text() == "port = 3\n"
    assert lines(log) == ["reload update after gen=2 app=v1 paths=app/etc/app.conf,"]
    ran = procedures_step(file_store)["ran"]
    assert [(r["name"], r["phase"], r["count"]) for r in ran] == [("reload app", "update", 2)]


def test_environment_is_minimal_and_names_the_run(client: Client, file_store: Store, signing_key,
                                                  tmp_path: Path) -> None:
    dump = tmp_path / "env.txt"
    env = Procedure("env", ("app/share/**",), ("/bin/sh", "-c", f"env | sort > {dump}; cat"))
    installed(client, file_store, signing_key, tmp_path / "service.log", procs=[env])
    seen = dict(line.split("=", 1) for line in dump.read_text().splitlines() if "=" in line)
    assert seen["REGEN_GENERATION"] == "1" and seen["REGEN_PHASE"] == "install" and seen["REGEN_STAGE"] == "after"
    assert seen["REGEN_CHANNEL"] == "stable" and seen["REGEN_PROCEDURE"] == "env"
    assert seen["REGEN_ROOT"] == str(client.root) and seen["REGEN_RUN_ID"]
    assert Path(seen["REGEN_CHANGED_PATHS_FILE"]).is_relative_to(client.state)
    assert not {k for k in seen if k.startswith(("REGEN_TEST", "HOME", "PYTEST", "XDG"))}
    # standard input is the same list
    ran = {r["name"]: r for r in procedures_step(file_store)["ran"]}
    assert ran["env"]["output_tail"] == "app/share/readme\n"
    assert not os.listdir(client.state / "procedures")  # the lists go once everything ran


BUSYBOX = Path("/bin/busybox")


def test_chroot_runs_the_command_inside_the_managed_root(client: Client, file_store: Store, signing_key,
                                                         tmp_path: Path) -> None:
    """A minimal root: a static busybox is all it needs. The command sees the managed root as
    "/" (its own files, not the host's), and reads the changed paths on its standard input."""
    assert BUSYBOX.is_file(), "busybox-static is needed (contrib/test.sh installs it)"
    spec = {"bin/busybox": Mode(BUSYBOX.read_bytes(), 0o755), "etc/app.conf": "port = 1\n", "etc/marker": "inside\n"}
    probe = Procedure("look around", ("etc/**",), ("/bin/busybox", "sh", "-c",
                      'echo "root=$REGEN_ROOT"; /bin/busybox ls /; /bin/busybox cat /etc/marker; /bin/busybox cat'),
                      chroot=True)
    publish(file_store, signing_key, spec, number=1, policy=Policy(procedures=(probe,)))
    client.regend("run", "--once")
    (ran,) = procedures_step(file_store)["ran"]
    assert ran["ok"], ran
    assert ran["output_tail"] == "root=/\nbin\netc\ninside\netc/app.conf\netc/marker\n"


def test_chroot_command_missing_in_the_root_is_a_failure_not_a_crash(client: Client, file_store: Store,
                                                                     signing_key) -> None:
    probe = Procedure("ldconfig", ("etc/**",), ("/sbin/ldconfig",), chroot=True)
    publish(file_store, signing_key, {"etc/app.conf": "x\n"}, number=1, policy=Policy(procedures=(probe,)))
    client.regend("run", "--once")  # (report: the run goes on)
    (ran,) = procedures_step(file_store)["ran"]
    assert ran["exit_status"] == 127 and "command not found" in ran["output_tail"]


def test_check_lists_what_would_run_and_why(client: Client, file_store: Store, signing_key, tmp_path: Path) -> None:
    log = tmp_path / "service.log"
    pol = installed(client, file_store, signing_key, log)
    log.unlink()
    quiet = json.loads(client.regend("check", "--json").stdout)
    assert quiet["procedures"] == []
    (client.root / "app/etc/app.conf").write_text("port = 6666\n")
    publish(file_store, signing_key, tree(log, app="v2", conf="port = 1\n"), number=2, policy=pol)
    data = json.loads(client.regend("check", "--json").stdout)
    assert [(f["name"], f["stage"], f["phase"], f["paths"]) for f in data["procedures"]] == [
        ("stop app", "before", "update", ["app/bin/app"]),
        ("start app", "after", "update", ["app/bin/app"]),
        ("reload app", "after", "repair", ["app/etc/app.conf"]),
    ]
    text = client.regend("check").stdout
    assert "procedure 'reload app' would run (after the repair): app/etc/app.conf" in text
    assert "procedure 'stop app' would run (before the update): app/bin/app" in text
    assert lines(log) == []  # a check runs nothing
