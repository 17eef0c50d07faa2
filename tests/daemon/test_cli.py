"""The regend command line: exit statuses, one run at a time, the long-running daemon and SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable

from regen.daemon.errors import ConfigInvalid, RunLocked, UsageError
from regen.daemon.run.lock import RunLock
from regen.store import Store, object_id
from regen.store.layout import object_path
from tests.conftest import argv_of, run_cli

from ..servers import HttpServer, Target
from .conftest import NO_FINDINGS, Client, expected, publish

SPEC = {"etc/a": "a"}


def test_help_lists_commands_and_exit_statuses(client: Client) -> None:
    out = run_cli("regend", "--help")
    for word in ("run", "check", "status", "recover", "3 quarantined", "2 usage error"):
        assert word in out.stdout
    assert client.regend("run", "--bogus", exit_code=2).stderr.startswith("regend: error: No such option")
    assert (RunLocked.exit_code, ConfigInvalid.exit_code, UsageError.exit_code) == (1, 2, 2)


def test_one_run_at_a_time(client: Client, file_store: Store, signing_key) -> None:
    publish(file_store, signing_key, SPEC, number=1)
    client.state.mkdir()
    lock = RunLock(str(client.state))
    lock.acquire()
    try:
        out = client.regend("run", "--once", exit_code=1)
        assert out.stderr.strip() == (f"regend: error: another regend run (pid {os.getpid()}) is working on "
                                      f"{client.state} (another regend run is in progress; wait for it, or pass "
                                      f"--wait)")
        assert "is working on" in client.regend("check", exit_code=1).stderr
    finally:
        lock.release()
    client.regend("run", "--once", "--wait")
    assert client.tree() == expected(SPEC)


def test_long_running_daemon_runs_on_schedule_and_stops_on_sigterm(client: Client, file_store: Store,
                                                                   signing_key) -> None:
    publish(file_store, signing_key, SPEC, number=1)
    client.write_config(schedule={"interval": "1s", "jitter": 0, "verify_every": 0})
    hw = client.hardware(NO_FINDINGS)
    env = {**os.environ, "REGEN_TEST_HARDWARE": str(hw)}
    proc = subprocess.Popen([*argv_of("regend"), "run", "--config", str(client.config_path)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(list((client.state / "reports").glob("*.json"))
                                                  if (client.state / "reports").exists() else []) < 2:
            time.sleep(0.1)
        assert client.tree() == expected(SPEC)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert out.startswith("updated: channel stable generation 1") and "\nok: channel stable" in out


def test_status_json(client: Client, file_store: Store, signing_key) -> None:
    publish(file_store, signing_key, SPEC, number=1)
    before = json.loads(client.regend("status", "--json").stdout)
    assert before["installed"] is None and before["last_run"] is None
    client.regend("run", "--once")
    after = json.loads(client.regend("status", "--json").stdout)
    assert after["installed"] == 1 and after["last_run"]["outcome"] == "updated"
    assert after["outbox"] == 0 and after["quarantine"]["items"] == 0 and after["indexed_paths"] == 2


def test_sigterm_during_a_boot_run_leaves_a_state_the_next_run_converges_from(
        make_client: Callable[..., Client], http_server: HttpServer, http_target: Target, signing_key) -> None:
    """SIGTERM while the install fetches: exit 143, no temporary file left, the next run converges.
    The web server holds the request for one object until the signal is sent, so the run is always
    mid-install when it comes (that request arriving is the readiness marker)."""
    spec = {f"d{i // 10}/f{i}": f"content {i}" for i in range(40)}
    publish(Store.init(http_target.write_url), signing_key, spec, number=1)
    client = make_client(http_target.url)
    held = http_server.hold(f"/{http_target.prefix}/{object_path(object_id(spec['d2/f25'].encode()))}")
    env = {**os.environ, "REGEN_TEST_HARDWARE": str(client.hardware(NO_FINDINGS))}
    proc = subprocess.Popen([*argv_of("regend"), "run", "--once", "--config", str(client.config_path)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        held.wait_arrived()
        proc.send_signal(signal.SIGTERM)
        held.released.set()
        out, err = proc.communicate(timeout=60)
    finally:
        held.released.set()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 143, (out, err)
    assert "regend: warning: stopped by SIGTERM" in err
    assert not [p for p in client.root.rglob(".regen-tmp-*")]
    client.regend("run", "--once")
    assert client.tree() == expected(spec)
