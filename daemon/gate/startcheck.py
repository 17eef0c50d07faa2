"""Start diagnosis: may this machine start its software at all? (pure decision + the I/O it needs)

`decide_start` is pure: it takes what was measured and says yes or no with every reason, so
the policy is tested with plain values. The helpers below measure those inputs; each one is
bounded in time, because a boot that hangs here is worse than a refused start.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from regen.daemon.gate.timebox import call_with_timeout

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from typing import IO

    from regen.store import HardwareFinding

__all__ = ["CheckResult", "Decision", "decide_start", "free_bytes", "run_argv", "run_checks", "run_quarantine_hook",
           "state_dir_writable"]

OUTPUT_TAIL = 2000  # characters of a command's output kept for the report
NOT_FOUND = 127     # the shell's conventions, so reports read the same as a shell's
NOT_RUNNABLE = 126


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One hook command's end: exit status (negative: killed by that signal), output tail, timeout."""

    command: str
    returncode: int
    output: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def describe(self) -> str:
        if self.timed_out:
            why = "did not finish in time and was killed"
        elif self.returncode < 0:
            why = f"was killed by signal {-self.returncode}"
        else:
            why = f"exited with status {self.returncode}"
        last = self.output.strip().splitlines()[-1:] if self.output.strip() else []
        return f"{self.command!r} {why}" + (f": {last[0][:200]}" if last else "")


@dataclass(frozen=True, slots=True)
class Decision:
    start: bool
    reasons: tuple[str, ...]


def decide_start(findings: Iterable[HardwareFinding], *, state_dir_writable: bool, free_bytes: int,
                 needed_bytes: int, check_results: Sequence[CheckResult], state_dir: str | None = None) -> Decision:
    """Start unless a part failed and is unusable, the state dir is read-only, space is short or a check failed.

    Warnings, and failures of parts still usable, do not stop the start: they go to the report.
    """
    reasons = [f"{f.component}: {f.message}" for f in findings if f.severity == "fail" and not f.usable]
    if not state_dir_writable:
        reasons.append(f"the state directory {state_dir} is not writable" if state_dir
                       else "the state directory is not writable")
    if state_dir_writable and free_bytes < needed_bytes:  # (unwritable: its free space says nothing)
        reasons.append(f"not enough free space for the update: {free_bytes:,} bytes free, {needed_bytes:,} needed")
    reasons += [f"start check {r.describe()}" for r in check_results if not r.ok]
    return Decision(not reasons, tuple(reasons))


def run_checks(commands: Sequence[str], timeout: float) -> tuple[CheckResult, ...]:
    """Run each command (split like a shell would, but without a shell), one after the other.

    Each gets `timeout` seconds; then its whole process group is killed, so a script's
    children die with it. Output goes to a temporary file, not a pipe: a grandchild that
    escapes the group and keeps the pipe open could otherwise block us forever.
    """
    return tuple(_run(command, timeout) for command in commands)


def run_quarantine_hook(command: str | None, timeout: float) -> CheckResult | None:
    """Run the configured quarantine command (e.g. take the network down); None when there is none."""
    if not command or not command.strip():
        return None
    return _run(command, timeout)


def _run(command: str, timeout: float) -> CheckResult:
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        return CheckResult(command, NOT_RUNNABLE, f"cannot parse the command: {exc}")
    if not argv:
        return CheckResult(command, NOT_RUNNABLE, "empty command")
    return run_argv(argv, timeout, label=command)


def run_argv(argv: Sequence[str], timeout: float, *, label: str | None = None, env: Mapping[str, str] | None = None,
             cwd: str | None = None, stdin: IO[bytes] | None = None, chroot: str | None = None) -> CheckResult:
    """Run one argument vector (no shell) in its own process group, bounded by `timeout`.

    `env` None inherits regend's environment; `stdin` None reads /dev/null; `chroot` makes that
    directory the child's root (and "/" its working directory) before the command is looked up.
    """
    command = label if label is not None else shlex.join(argv)
    preexec = None
    if chroot is not None:
        root = chroot

        def preexec() -> None:
            os.chroot(root)
            os.chdir("/")
    with tempfile.TemporaryFile() as out:
        try:
            proc = subprocess.Popen(list(argv), stdin=stdin if stdin is not None else subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True, env=env, cwd=cwd,
                                    preexec_fn=preexec)  # noqa: PLW1509 - chroot must happen in the child
        except FileNotFoundError as exc:
            return CheckResult(command, NOT_FOUND, f"command not found: {exc.filename or argv[0]}")
        except (OSError, subprocess.SubprocessError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            return CheckResult(command, NOT_RUNNABLE, f"cannot run {argv[0]}: {why}")
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc.pid)  # not yet reaped, so the group id is still ours
            proc.wait()
        out.seek(0, os.SEEK_END)
        out.seek(max(0, out.tell() - OUTPUT_TAIL * 4))
        text = out.read().decode("utf-8", "replace")[-OUTPUT_TAIL:]
    return CheckResult(command, proc.returncode, text, timed_out)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def state_dir_writable(path: str | os.PathLike[str], timeout: float = 10.0) -> bool:
    """Create (with parents), fsync and remove a probe file in `path`; False on any failure or hang."""
    target = Path(path)

    def probe() -> None:
        target.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = target / f".regen-write-test-{os.getpid()}-{secrets.token_hex(4)}"
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, b"regen")
            os.fsync(fd)
        finally:
            os.close(fd)
            name.unlink()
        dfd = os.open(target, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    outcome = call_with_timeout(probe, timeout)
    return not outcome.timed_out and outcome.error is None


def free_bytes(path: str | os.PathLike[str], timeout: float = 10.0) -> int:
    """Bytes an unprivileged writer may still use where `path` is (or would be created); 0 if unknown.

    0 on error or hang is the safe side: decide_start then refuses a start that needs space.
    """
    def measure() -> int:
        target = Path(os.path.abspath(path))
        while not target.exists() and target != target.parent:
            target = target.parent
        st = os.statvfs(target)
        return st.f_bavail * st.f_frsize

    outcome = call_with_timeout(measure, timeout)
    return int(outcome.value) if not outcome.timed_out and outcome.error is None else 0
