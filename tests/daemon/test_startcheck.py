"""Start diagnosis: the pure decision, and the real commands and directories it is fed with."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import psutil
import pytest

from regen.daemon.gate.startcheck import (
    CheckResult,
    Decision,
    decide_start,
    free_bytes,
    run_checks,
    run_quarantine_hook,
    state_dir_writable,
)
from regen.store import HardwareFinding

OK = dict(state_dir_writable=True, free_bytes=10_000, needed_bytes=1_000, check_results=())
DEAD_DISK = HardwareFinding("disk:/dev/sdb", "fail", "SMART says disk /dev/sdb is failing", {"status": 8}, False)


def test_a_healthy_machine_starts() -> None:
    assert decide_start([], **OK) == Decision(True, ())


def test_warnings_and_failed_but_usable_parts_do_not_stop_the_start() -> None:
    findings = [HardwareFinding("memory", "warn", "memory shrank", {}, True),
                HardwareFinding("mount:/srv", "fail", "98% full", {}, True),
                HardwareFinding("net:eth1", "warn", "down", {}, False)]
    assert decide_start(findings, **OK).start


def test_a_failed_unusable_part_stops_the_start_and_is_named() -> None:
    d = decide_start([DEAD_DISK], **OK)
    assert not d.start and d.reasons == ("disk:/dev/sdb: SMART says disk /dev/sdb is failing",)


def test_a_read_only_state_dir_stops_the_start() -> None:
    d = decide_start([], **{**OK, "state_dir_writable": False, "state_dir": "/var/lib/regen"})
    assert not d.start and d.reasons == ("the state directory /var/lib/regen is not writable",)


def test_too_little_free_space_for_the_update_stops_the_start() -> None:
    d = decide_start([], **{**OK, "free_bytes": 999, "needed_bytes": 1000})
    assert not d.start and "999 bytes free, 1,000 needed" in d.reasons[0]
    assert decide_start([], **{**OK, "free_bytes": 1000, "needed_bytes": 1000}).start


def test_a_failing_start_check_stops_the_start_and_says_why() -> None:
    checks = (CheckResult("true", 0, ""), CheckResult("/usr/local/bin/app-selftest", 4, "booting\ndb unreachable\n"),
              CheckResult("sleep 100", -9, "", timed_out=True))
    d = decide_start([], **{**OK, "check_results": checks})
    assert not d.start and len(d.reasons) == 2
    assert "app-selftest" in d.reasons[0] and "status 4" in d.reasons[0] and "db unreachable" in d.reasons[0]
    assert "sleep 100" in d.reasons[1] and "did not finish in time" in d.reasons[1]


def test_every_cause_is_listed_at_once() -> None:
    d = decide_start([DEAD_DISK], state_dir_writable=True, free_bytes=0, needed_bytes=1,
                     check_results=[CheckResult("false", 1, "")])
    assert not d.start and len(d.reasons) == 3


def test_an_unwritable_state_dir_gets_no_false_free_space_reason() -> None:
    """Its free space cannot be measured for us: 'not enough free space: 0 bytes' would be false (issue 17)."""
    d = decide_start([], state_dir_writable=False, free_bytes=0, needed_bytes=1, check_results=[])
    assert not d.start and len(d.reasons) == 1 and "not writable" in d.reasons[0]
    assert not any("free space" in r for r in d.reasons)


def test_run_checks_with_real_commands(tmp_path: Path) -> None:
    script = tmp_path / "check.sh"
    script.write_text("#!/bin/sh\necho checking\necho 'disk quota exceeded' >&2\nexit 3\n")
    script.chmod(0o755)
    ok, failed, scripted = run_checks(["true", "false", f"{script} --quick"], timeout=10)
    assert ok.ok and ok.returncode == 0 and not ok.timed_out
    assert not failed.ok and failed.returncode == 1
    assert scripted.returncode == 3 and "checking" in scripted.output and "disk quota exceeded" in scripted.output
    assert scripted.command == f"{script} --quick"


def test_a_check_that_runs_too_long_is_killed_with_its_children() -> None:
    # the shell's child keeps sleeping; it must be killed too, and not keep us waiting
    nap = "61.0625"  # a duration no other process on the machine sleeps
    (result,) = run_checks([f"{sys.executable} -c \"import subprocess; print('started', flush=True); "
                            f"subprocess.run(['sleep', '{nap}'])\""], timeout=0.5)
    assert result.timed_out and not result.ok
    assert "started" in result.output
    assert not [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", nap]]


def test_commands_are_not_run_through_a_shell(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    (result,) = run_checks([f"echo hi; touch {marker}"], timeout=10)
    assert result.ok and not marker.exists()
    assert result.output.strip() == f"hi; touch {marker}"


@pytest.mark.parametrize(("command", "status"), [("/nonexistent/regen-check", 127), ("'unterminated", 126),
                                                 ("   ", 126)])
def test_a_command_that_cannot_run_is_a_failed_check(command: str, status: int) -> None:
    """The shell's statuses: 127 for a command that is not found, 126 for one that cannot run."""
    (result,) = run_checks([command], timeout=10)
    assert not result.ok and result.returncode == status and result.output


def test_the_quarantine_hook_runs_when_configured(tmp_path: Path) -> None:
    assert run_quarantine_hook(None, 10) is None and run_quarantine_hook("", 10) is None
    marker = tmp_path / "network-down"
    result = run_quarantine_hook(f"touch {marker}", 10)
    assert result is not None and result.ok and marker.exists()


def test_state_dir_writable(tmp_path: Path) -> None:
    assert state_dir_writable(tmp_path)
    assert os.listdir(tmp_path) == []  # the probe file is gone
    fresh = tmp_path / "var" / "lib" / "regen"
    assert state_dir_writable(fresh) and fresh.is_dir()  # created on first boot
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert not state_dir_writable(blocker)
    assert not state_dir_writable(blocker / "state")


def test_free_bytes(tmp_path: Path) -> None:
    free = free_bytes(tmp_path)
    assert 0 < free <= shutil.disk_usage(tmp_path).total
    assert free_bytes(tmp_path / "not" / "yet" / "created") > 0  # measured where it would be created
