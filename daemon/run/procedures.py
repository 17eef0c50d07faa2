"""Running the procedures a run fired, and handing unfinished ones to the next run (I/O).

Why a journal of its own: a procedure is fired by the changes of an apply, but a run killed
after the apply (or during it) plans nothing the next time -- the tree is already right -- so
the changes that fired it are gone. The run's `Firing` (firing.py) is therefore written to the
index in the same transaction that opens the apply's journal, and cleared only when every
fired procedure has run: after a kill -9 the next run runs what was left (at least once).

Only signed procedures run: the definitions come from the targets this run applies or
resumes (accepted generations: signature, store, channel, rollback checked); the index keeps
names, never commands.

A procedure runs with a minimal environment (PATH, LANG and the REGEN_* variables below),
its standard input and REGEN_CHANGED_PATHS_FILE holding the changed paths that fired it, one
per line (a backslash and a newline in a name written as ``\\\\`` and ``\\n``).
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from regen.daemon.gate.startcheck import run_argv
from regen.daemon.run.firing import Fired, Firing, changed_paths, fire
from regen.store import EXIT_FAILED, EXIT_QUARANTINED

if TYPE_CHECKING:
    from regen.daemon.config import DaemonConfig
    from regen.daemon.run.outcome import Steps
    from regen.daemon.run.reporting import RunLog
    from regen.daemon.run.target import Target
    from regen.daemon.tree.index import Index
    from regen.daemon.tree.plan import Plan
    from regen.store import Procedure

__all__ = ["STATE", "ProcedureResult", "Procedures"]

STATE = "procedures"        # index state: the Firing of a run whose procedures are not all done
PATHS_DIR = "procedures"    # state_dir/procedures/<key>.paths: each fired procedure's changed paths
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True, slots=True)
class ProcedureResult:
    """How one procedure ended: exit status (negative: killed by that signal), time, output tail."""

    name: str
    stage: str
    phase: str
    failure: str
    exit_status: int
    timed_out: bool
    seconds: float
    output: str
    paths: tuple[str, ...]
    count: int

    @property
    def ok(self) -> bool:
        return self.exit_status == 0 and not self.timed_out

    def describe(self) -> str:
        if self.timed_out:
            why = f"did not finish within its timeout ({self.seconds:g} s) and was killed"
        elif self.exit_status < 0:
            why = f"was killed by signal {-self.exit_status}"
        else:
            why = f"exited with status {self.exit_status}"
        last = self.output.strip().splitlines()[-1:] if self.output.strip() else []
        return f"procedure {self.name!r} {why}" + (f": {last[0][:200]}" if last else "")

    def as_report(self) -> dict[str, Any]:
        return {"name": self.name, "stage": self.stage, "phase": self.phase, "failure": self.failure,
                "exit_status": self.exit_status, "timed_out": self.timed_out, "ok": self.ok,
                "seconds": round(self.seconds, 3), "output_tail": self.output, "paths": list(self.paths),
                "count": self.count}


class Procedures:
    """The procedures of one run: fired by each apply (`fired_by`), "before" ones run ahead of
    that apply (`run_before`), everything left at the end of the run (`finish`)."""

    def __init__(self, cfg: DaemonConfig, index: Index, log: RunLog, steps: Steps) -> None:
        self.cfg = cfg
        self.index = index
        self.log = log
        self.steps = steps
        self.firing = Firing.from_dict(index.state(STATE))
        self.known: dict[str, tuple[Procedure, Target]] = {}
        self.order: list[str] = []
        self.attempted: set[str] = set()
        self.results: list[ProcedureResult] = []
        self.listed: dict[str, set[str]] = {}  # paths already in each procedure's file (this run)
        if self.firing.pending():
            names = ", ".join(repr(f.name) for f in self.firing.pending())
            log.warnings.append(f"procedures fired by an interrupted run are run by this one: {names}")

    def learn(self, target: Target) -> None:
        """`target`'s signed procedures are the ones this run may run (the newest target wins)."""
        for p in target.policy.procedures:
            self.known[p.name] = (p, target)
        if target.policy.procedures:
            self.order = [p.name for p in target.policy.procedures] + \
                [n for n in self.order if n not in {p.name for p in target.policy.procedures}]

    def fired_by(self, plan: Plan, target: Target, phase: str) -> bool:
        """Record what `plan`'s changes fire (the caller saves the record with its journal).
        True when something new fired."""
        self.learn(target)
        procs = target.policy.procedures
        if not procs:
            return False
        changed = changed_paths(plan)
        new = fire(procs, changed, phase)
        if not new:
            return False
        self._write_paths(new, changed, procs)
        self.firing = self.firing.add(new, self.order)
        return True

    def save(self) -> None:
        """The record in the index (the caller holds the transaction); dropped when nothing is left."""
        self.index.set_state(STATE, self.firing.as_dict() if self.firing.pending() else None)

    def run_before(self) -> bool:
        """Run the due "before" procedures. False when one failed with fail-run or quarantine:
        the apply must not go on (the next run tries again)."""
        return self._run(self.firing.pending("before"))

    def finish(self) -> None:
        """Run everything fired and not yet run ("before" ones first), then report."""
        self._run(self.firing.pending())
        if not self.firing.pending():
            self._clean_paths()
        if self.results:
            failed = [r for r in self.results if not r.ok]
            self.log.step("procedures", "failed" if failed else "ok", ran=[r.as_report() for r in self.results])

    # -- running -----------------------------------------------------------------------------
    def _run(self, due: tuple[Fired, ...]) -> bool:
        ok = True
        for f in due:
            if f.name in self.attempted:
                continue
            self.attempted.add(f.name)
            known = self.known.get(f.name)
            if known is None:  # fired by a generation whose successor no longer declares it
                self.log.warnings.append(f"procedure {f.name!r} was fired but the installed generation no longer "
                                         f"declares it; it is not run")
                self._done(f.name)
                continue
            proc, target = known
            result = self._execute(proc, target, f)
            self.results.append(result)
            if result.ok or proc.failure == "report":
                self._done(f.name)
            if not result.ok:
                ok = self._failed(proc, result) and ok
        return ok

    def _done(self, name: str) -> None:
        self.firing = self.firing.mark(name)
        with self.index.atomic():
            self.save()

    def _failed(self, proc: Procedure, result: ProcedureResult) -> bool:
        """Apply the procedure's failure mode; False when it stops the run's applies."""
        if proc.failure == "report":
            self.log.warnings.append(result.describe())
            return True
        if proc.failure == "quarantine":
            self.log.errors.append(f"start refused: {result.describe()}")
            self.steps.quarantined = True
            self.steps.exit_code = EXIT_QUARANTINED
        else:
            self.log.errors.append(f"procedures: {result.describe()}")
            if self.steps.exit_code != EXIT_QUARANTINED:
                self.steps.exit_code = EXIT_FAILED
        return False

    def _execute(self, proc: Procedure, target: Target, f: Fired) -> ProcedureResult:
        root = self.cfg.root
        paths_file = self._paths_file(proc.name)
        visible = paths_file
        if proc.chroot:
            rel = os.path.relpath(paths_file, root)
            visible = "/" + rel if not rel.startswith("..") else "/dev/stdin"
        env = {"PATH": BASE_PATH, "LANG": "C.UTF-8", "REGEN_PROCEDURE": proc.name, "REGEN_PHASE": f.phase,
               "REGEN_STAGE": proc.stage, "REGEN_CHANNEL": target.channel, "REGEN_GENERATION": str(target.number),
               "REGEN_ROOT": "/" if proc.chroot else root, "REGEN_RUN_ID": self.log.run_id,
               "REGEN_CHANGED_PATHS_FILE": visible}
        t0 = time.monotonic()
        with _stdin(paths_file) as stdin:
            res = run_argv(proc.run, proc.timeout, label=proc.name, env=env, stdin=stdin,
                           cwd=None if proc.chroot else root, chroot=root if proc.chroot else None)
        seconds = time.monotonic() - t0
        return ProcedureResult(proc.name, proc.stage, f.phase, proc.failure, res.returncode, res.timed_out,
                               seconds, res.output, f.paths, f.count)

    # -- the changed-paths files ---------------------------------------------------------------
    def _paths_file(self, name: str) -> str:
        key = hashlib.sha256(name.encode()).hexdigest()[:16]
        return os.path.join(self.cfg.state_dir, PATHS_DIR, f"{key}.paths")

    def _write_paths(self, new: tuple[Fired, ...], changed: list[str], procs: tuple[Procedure, ...]) -> None:
        """Append each newly fired procedure's matching paths to its file, durably, before the
        journal records the firing (a resumed run hands the same list to the command)."""
        from regen.store import matches

        os.makedirs(os.path.join(self.cfg.state_dir, PATHS_DIR), mode=0o700, exist_ok=True)
        by_name = {p.name: p for p in procs}
        for f in new:
            when = by_name[f.name].when
            listed = self.listed.get(f.name)
            if listed is None:  # (a resumed run: what the killed one listed already)
                listed = self.listed[f.name] = set(_read_lines(self._paths_file(f.name)))
            hits = [e for e in (_escape(p) for p in changed if matches(p, when)) if e not in listed]
            listed.update(hits)
            lines = "".join(e + "\n" for e in hits)
            fd = os.open(self._paths_file(f.name), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
            try:
                os.write(fd, lines.encode("utf-8", "surrogateescape"))
                os.fsync(fd)
            finally:
                os.close(fd)

    def _clean_paths(self) -> None:
        d = os.path.join(self.cfg.state_dir, PATHS_DIR)
        try:
            names = os.listdir(d)
        except FileNotFoundError:
            return
        for name in names:
            if name.endswith(".paths"):
                os.unlink(os.path.join(d, name))


def _read_lines(path: str) -> list[str]:
    try:
        with open(path, "rb") as fp:
            return fp.read().decode("utf-8", "surrogateescape").splitlines()
    except OSError:
        return []


def _escape(path: str) -> str:
    return path.replace("\\", "\\\\").replace("\n", "\\n")


def _stdin(path: str) -> BinaryIO:
    """The paths file opened for reading, or /dev/null when a crash lost it (never an error)."""
    try:
        return open(path, "rb")
    except OSError:
        return open(os.devnull, "rb")
