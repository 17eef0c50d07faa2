"""The repair step (and the install, its first run): scan root, plan against the target, apply (I/O).

Why a step of its own: it must work with the store unreachable (everything it reads is local:
the index, the verified manifest copies, the object cache), and its cost decides how long a
boot takes. So it first tries the no-change fast path (quick.unchanged: a stat walk against
the index, when the index is recorded clean for this target), and only then the full scan
(scan.scan: stat, and xxh3 for the suspects; every file with --verify or on an install).
Drift under base paths forces a full verify. The plan is applied through TreeWriter.

`scan_root`, `base_drift` and `repair_plan` are the step's scan and plan without the index
writes and the apply: `regend check` (dryrun.py) calls them too, so it shows what this step does.
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Any

from regen.daemon.errors import Interrupted, NoSpace, NotInstalled
from regen.daemon.run.scope import clean_key_of, dir_times, policy_of, pruner, state_rel
from regen.daemon.tree.owners import Owners
from regen.daemon.tree.plan import Plan, plan
from regen.daemon.tree.scan import ScanResult, scan
from regen.store import EXIT_FAILED, RegenError, matches

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from regen.daemon.config import DaemonConfig
    from regen.daemon.run.outcome import Steps
    from regen.daemon.run.reporting import RunLog
    from regen.daemon.run.target import Manifests, Target
    from regen.daemon.run.writer import TreeWriter
    from regen.daemon.tree.index import Index, IndexRow
    from regen.daemon.tree.plan import Observed
    from regen.store import Entry, Policy

__all__ = ["Repair", "base_drift", "repair_plan", "scan_root"]


def scan_root(cfg: DaemonConfig, policy: Policy, rows: Iterable[IndexRow], verify: bool,
              stop: threading.Event | None = None) -> ScanResult:
    """The repair's full scan of root against the index rows, in the run's scope (what it prunes,
    which directory mtimes are the target's)."""
    return scan(cfg.root, rows, prune=pruner(cfg, policy), verify=verify, stop=stop, dir_time=dir_times(policy))


def base_drift(result: ScanResult, policy: Policy) -> str | None:
    """Drift under the policy's base paths, which makes a repair (not an install) a full verify:
    the warning saying so; None: none."""
    base = [p for p in result.drift.paths() if policy.base and matches(p, policy.base)]
    return f"drift under base paths ({base[0]}, ...): full verify" if base else None


def repair_plan(cfg: DaemonConfig, manifests: Manifests, target: Target, policy: Policy,
                observed: Iterable[Observed], keep: set[str] | None = None) -> tuple[Plan, list[str]]:
    """The plan that makes the observed tree `target` (owners mapped through root's passwd and
    group), and the warnings of that mapping. `keep`: gets the target's file objects (what the
    cache keeps), noted in the same pass over the manifest."""
    owners = Owners.of_root(cfg.root)
    with manifests.entries(target) as entries:
        the_plan = plan(entries if keep is None else _noting(entries, keep), observed, policy, owners.map)
    return the_plan, owners.warnings


def _noting(entries: Iterator[Entry], keep: set[str]) -> Iterator[Entry]:
    for e in entries:
        if e.kind == "file" and e.oid:
            keep.add(e.oid)
        yield e


class Repair:
    """Converges root to a target. `verify`: hash every file (a --verify run, or a rebuilt index)."""

    def __init__(self, cfg: DaemonConfig, index: Index, log: RunLog, *, manifests: Manifests, writer: TreeWriter,
                 steps: Steps, stop: threading.Event, verify: bool) -> None:
        self.cfg = cfg
        self.index = index
        self.log = log
        self.manifests = manifests
        self.writer = writer
        self.steps = steps
        self.stop = stop
        self.verify = verify

    def run(self, target: Target, phase: str) -> None:
        """Scan, plan against `target`, apply. `phase` install/update makes `target` the installed one."""
        if not os.path.isdir(self.cfg.root):
            raise NotInstalled(f"root {self.cfg.root} does not exist or is not a directory",
                               hint="create it (an empty directory is installed into) or fix 'root' in the config")
        step = "install" if phase == "install" else "repair"
        if phase == "repair" and self.steps.skip_looping("repair"):
            return
        policy = policy_of(self.cfg, target)
        verify = self.verify or phase == "install"
        if phase == "repair" and not verify and self._unchanged(target, policy):
            return
        result = self._observe(policy, verify, phase)
        keep: set[str] = set()
        try:
            the_plan, warnings = repair_plan(self.cfg, self.manifests, target, policy, result.observed, keep)
            self.log.warnings.extend(warnings)
        except Interrupted:  # a signal: the run stops now (not a failed step)
            raise
        except RegenError as exc:
            self._failed(step, exc)
            return
        try:
            res = self.writer.apply(the_plan, target, phase, gone=result.gone, clean=not result.errors)
        except NoSpace as exc:
            self._failed(step, exc)
            return
        if res.errors:
            self.steps.apply_failed(step, res)
        else:
            self.steps.ok.add(step)
            self.steps.repaired = self.steps.repaired or (phase == "repair" and not the_plan.empty)
        self.log.step(step, "failed" if res.errors else ("done" if not the_plan.empty else "ok"),
                      **the_plan.stats(), **res.counts())
        if phase != "repair":
            self.writer.installed(target, keep)
            self.steps.updated = True

    def _failed(self, step: str, exc: RegenError) -> None:
        self.steps.fail(step, exc)
        self.steps.exit_code = EXIT_FAILED

    def _observe(self, policy: Policy, verify: bool, phase: str) -> ScanResult:
        """The full scan; drift under base paths makes it a full verify (outside an install)."""
        result = self._scan(policy, verify)
        if phase != "install":
            base = base_drift(result, policy)
            if base is not None and not verify:
                self.log.warnings.append(base)
                result = self._scan(policy, True)
            self.log.drift = result.drift.as_report()
        return result

    def _scan(self, policy: Policy, verify: bool) -> ScanResult:
        t0 = time.monotonic()
        result = scan_root(self.cfg, policy, self.index.rows(), verify, self.stop)
        if result.rows:
            with self.index.atomic():
                self.index.put_rows(result.rows)
        self.log.step("scan", "ok" if not result.errors else "partial", verify=verify, paths=len(result.observed),
                      hashed=result.hashed, bytes_hashed=result.bytes_hashed, drifted=result.drift.total(),
                      seconds=round(time.monotonic() - t0, 3), reasons=result.reasons, errors=result.errors[:20])
        return result

    def _unchanged(self, target: Target, policy: Policy) -> bool:
        """The no-change fast path (quick.py): True when the tree provably matches the index by
        stat and the index matches `target` (recorded clean): the repair is done, nothing read."""
        from regen.daemon.tree.fastpath import no_drift, unchanged

        if self.index.state("clean") != clean_key_of(self.cfg, target):
            return False
        t0 = time.monotonic()
        prune = None if not policy.preserve and not policy.exclude and state_rel(self.cfg) is None else \
            pruner(self.cfg, policy)
        racy: list[str] = []
        trace: list[Any] = []
        found = unchanged(self.cfg.root, self.index.row_map(), prune, strict_dirs=True, racy=racy, trace=trace)
        if found is None or found.unmanaged:  # kept paths: the full path records them as before
            return False
        if len(racy) * 10 > found.paths:  # (just installed: the full scan hashes with two threads)
            return False
        size = self._confirm_racy(racy)
        if size is None:
            return False
        self.writer.trace = trace
        self.log.step("scan", "ok", verify=False, paths=found.paths, hashed=len(racy), bytes_hashed=size,
                      drifted=0, seconds=round(time.monotonic() - t0, 3),
                      reasons={"racy": len(racy)} if racy else {}, errors=[])
        self.log.drift = no_drift()
        empty = Plan()
        res = self.writer.apply(empty, target, "repair")
        self.steps.ok.add("repair")
        self.log.step("repair", "ok", **empty.stats(), **res.counts())
        return True

    def _confirm_racy(self, paths: list[str]) -> int | None:
        """Hash the files the fast path found inside the racy-timestamp window (those the last
        apply wrote) and compare with their rows (scan.confirm_racy): all equal -> their rows are
        refreshed (checked now) and the fast path holds; any surprise -> None (the full scan
        decides). Returns the bytes hashed."""
        from regen.daemon.tree.scan import confirm_racy

        if not paths:
            return 0
        fresh = confirm_racy(self.cfg.root, self.index.get, paths)
        if fresh is None:
            return None
        with self.index.atomic():
            self.index.put_rows(fresh)
        return sum(r.size for r in fresh if r.kind == "file")
