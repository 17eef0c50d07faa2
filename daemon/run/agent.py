"""One regend run, in the issue's order: hardware -> start -> install -> scan -> repair -> update -> report.

The agent wires the pure parts (classify, plan, decide_start) to the I/O parts (index, scan,
apply, fetch, store) and records each step's outcome in the report. Exit statuses: 0 the
machine may start (repairs and updates included; a refused update is an error in the report,
not a reason to stop the machine), 10/11/12 it may start but the store was unreachable / this
client is misconfigured for it / the store is damaged (session.exit_code), 1 the tree could not
be brought to its generation (the next run resumes), 3 quarantined.

This module holds the order of the steps and the report; the steps live in their own modules:

    session   the store as the run uses it (opened once, offline once unreachable)
    accept    taking a target from the store: verify ref and overlay, fetch manifests and objects
    repair    scan, plan, apply (the install is its first run); the no-change fast path
    update    the newest generation, planned from the manifests' delta when it can be
    writer    applying a plan under the journal and recording it in the index
    steps     what each step came to, the exit status, loop protection
    scope     a target's merged policy, the walks' prune predicate, the index's clean key
    space     the disk-space checks made before a fetch or an apply
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from regen.daemon.config import DaemonConfig
from regen.daemon.errors import DaemonError, Interrupted, NotInstalled
from regen.daemon.gate import startcheck
from regen.daemon.gate.hardware import HardwareProbe
from regen.daemon.gate.health import gauges
from regen.daemon.run.accept import accept, prepare
from regen.daemon.run.channel import OFFLINE_WARNING, _open_store
from regen.daemon.run.hostid import host_key
from regen.daemon.run.lock import RunLock
from regen.daemon.run.metrics import run_metrics, write_metrics
from regen.daemon.run.outcome import Steps, looping
from regen.daemon.run.procedures import Procedures
from regen.daemon.run.refill import refill
from regen.daemon.run.repair import Repair
from regen.daemon.run.reporting import RunLog, deliver, save_report
from regen.daemon.run.scope import clean_key_of, policy_of, pruner
from regen.daemon.run.session import StoreFactory, StoreSession
from regen.daemon.run.statefile import load_mirror, seed_from_mirror
from regen.daemon.run.target import Manifests, Target
from regen.daemon.run.update import Update
from regen.daemon.run.writer import TreeWriter
from regen.daemon.tree.cache import ObjectCache
from regen.daemon.tree.index import Index, open_index
from regen.daemon.tree.quarantine import Quarantine, new_run_id
from regen.daemon.tree.ticker import Ticker
from regen.store import EXIT_FAILED, EXIT_QUARANTINED, RACY_WINDOW_NS, RegenError, Report, SecretKey, about, matches
from regen.store.errors import MISCONFIGURED

log = logging.getLogger("regen.daemon")


__version__ = about.version()


@dataclass(frozen=True, slots=True)
class RunOptions:
    verify: bool = False
    on_tick: Callable[[int], None] | None = None  # called after every apply operation (Ticker; test harness only)
    wait_lock: bool = False


@dataclass(slots=True)
class RunResult:
    report: Report
    exit_code: int
    warnings: list[str] = field(default_factory=list)
    upload_error: str | None = None
    retry_after: float | None = None


class Agent:
    """Runs cycles for one configuration. `probe` is the hardware probe (tests inject FakeProbe)."""

    def __init__(self, config: DaemonConfig, probe: HardwareProbe, *, stop: threading.Event | None = None,
                 store_factory: StoreFactory | None = None) -> None:
        self.config = config
        self.probe = probe
        self.stop = stop or threading.Event()
        self.store_factory = store_factory or _open_store
        self.cache = ObjectCache(config.state_dir, config.cache_max_bytes)
        self.manifests = Manifests(config.state_dir, root=config.root)
        self.quarantine = Quarantine(config.state_dir, run_budget=config.quarantine.max_run_bytes,
                                     min_free=config.limits.min_free_bytes)

    # ------------------------------------------------------------------------------------------
    def run(self, options: RunOptions = RunOptions()) -> RunResult:
        cfg = self.config
        runlog = RunLog(new_run_id(), _now(), channel=cfg.channel)
        writable = startcheck.state_dir_writable(cfg.state_dir)
        lock = RunLock(cfg.state_dir)
        index: Index | None = None
        if writable:
            os.chmod(cfg.state_dir, 0o700)
            lock.acquire(wait=options.wait_lock, stop=self.stop)
        cycle: _Cycle | None = None
        try:
            rebuilt = False
            if writable:
                index, rebuilt = self._open_index(runlog)
            cycle = _Cycle(self, runlog, index, replace(options, verify=options.verify or rebuilt))
            return cycle.run(writable)
        finally:
            if cycle is not None:
                cycle.session.close()  # pooled connections (sftp); the store stays reopenable
            if index is not None:
                index.close()
            lock.release()

    def _open_index(self, runlog: RunLog) -> tuple[Index, bool]:
        """The index; True when it was rebuilt (the run then verifies every file)."""
        index, aside = open_index(self.config.state_dir)
        if aside is not None:
            runlog.warnings.append(f"the system log was damaged; it was set aside as {os.path.basename(aside)} "
                                   f"and is rebuilt by a full verify")
        if index.state("installed") is None:
            mirror = load_mirror(self.config.state_dir)
            if mirror.get("installed"):
                seed_from_mirror(index, mirror, self.manifests)
                runlog.warnings.append("the system log was rebuilt from state.json and the installed manifests")
        return index, aside is not None


class _Cycle:
    """The state of one run (one use): the order of the steps, the start decision, the report."""

    def __init__(self, agent: Agent, runlog: RunLog, index: Index | None, options: RunOptions) -> None:
        self.agent = agent
        self.cfg = agent.config
        self.log = runlog
        self.index = index
        self.options = options
        self.verify = options.verify
        self.session = StoreSession(agent.config, index, runlog, agent.store_factory, stop=agent.stop)
        self.steps = Steps(runlog, index, agent.config.failures.max_consecutive, verify=options.verify)
        # one count of operations for the whole run (repair and update): the journal's ops_done and
        # the harness's on_tick hook both count from the start of the run
        self.ticker = Ticker(agent.stop, options.on_tick)
        self.started_ns = time.time_ns()

    # -- the run ---------------------------------------------------------------------------
    def run(self, writable: bool) -> RunResult:
        inventory = self._hardware()
        decision = self._start(writable)
        if not decision.start:
            return self._quarantine_path(decision.reasons, writable)
        index = self.index
        assert index is not None
        if inventory is not None:  # kept only when the start is allowed: a fault is seen again next boot
            with index.atomic():
                index.set_inventory(inventory, _now())
        installed = _installed(index)
        self.log.generation_before = installed.number if installed else None
        writer, repair, update = self._tree_steps(index)
        procedures = writer.procedures
        assert procedures is not None
        if installed is not None:
            procedures.learn(installed)
        try:
            target, phase = self._target(installed)
            if target is not None:
                procedures.learn(target)
                repair.run(target, phase)
                self._refill(phase)
                if phase != "install":
                    update.run(_installed(index) or target)
            procedures.finish()  # what the run's applies fired, once each, after the last of them
        except Interrupted as exc:
            self.log.errors.append(exc.one_line())  # the run did not complete: the report says failing
            self.log.warnings.append(exc.one_line())
            self.steps.exit_code = 128 + getattr(self.agent.stop, "signum", signal.SIGTERM)  # 130 or 143
        except DaemonError as exc:
            self.steps.fail("run", exc)
            self.steps.exit_code = EXIT_FAILED
        final = _installed(index)
        self.log.generation_after = final.number if final else None
        self._remember_tree(final, writer)
        self.steps.remember()
        self._retention()
        self._cache_budget()
        return self._finish()

    def _tree_steps(self, index: Index) -> tuple[TreeWriter, Repair, Update]:
        """The steps that change the tree, sharing one writer (one journal, one operation count)."""
        agent, cfg = self.agent, self.cfg
        writer = TreeWriter(cfg, index, self.log, self.session, ticker=self.ticker, cache=agent.cache,
                            manifests=agent.manifests, quarantine=agent.quarantine,
                            procedures=Procedures(cfg, index, self.log, self.steps))
        repair = Repair(cfg, index, self.log, manifests=agent.manifests, writer=writer, steps=self.steps,
                        stop=agent.stop, verify=self.verify)
        update = Update(cfg, index, self.log, self.session, manifests=agent.manifests, cache=agent.cache,
                        writer=writer, steps=self.steps, verify=self.verify)
        return writer, repair, update

    def _refill(self, phase: str) -> None:
        """After an install moved its objects into the tree, the next run whose repair leaves the
        tree clean copies them back into the cache (refill.py), before any update."""
        installed = _installed(self.index)
        if phase != "repair" or self.steps.failed or installed is None:
            return
        assert self.index is not None
        try:
            copied = refill(self.cfg, self.index, self.agent.cache, installed, self.agent.stop)
        except (OSError, RegenError) as exc:  # best effort: repairs then fetch from the store
            self.log.warnings.append(f"the object cache was not refilled: "
                                     f"{exc.one_line() if isinstance(exc, RegenError) else exc}")
            return
        if copied is not None:
            self.log.step("refill", "done", objects=copied)

    def _remember_tree(self, final: Target | None, writer: TreeWriter) -> None:
        """Record the tree's fingerprint for `regend check` (quick.recall) when this run leaves
        the index matching the target and nothing under root changed since before the run began
        (every ctime older than its start by the racy window): the fingerprint then certifies the
        very tree this run verified. Else the record is dropped."""
        from regen.daemon.tree.fastpath import fingerprint, fingerprint_of, remembered

        idx = self.index
        if idx is None:
            return
        value = None
        ok = final is not None and not self.steps.failed and not self.steps.exit_code
        key = clean_key_of(self.cfg, final) if final is not None and ok else None
        if final is not None and key is not None and not writer.wrote and idx.state("clean") == key:
            policy = policy_of(self.cfg, final)  # (not wrote: an apply leaves new ctimes)
            fp = fingerprint_of(writer.trace) if writer.trace is not None else \
                fingerprint(self.cfg.root, pruner(self.cfg, policy))
            if fp is not None and fp.newest_ctime_ns < self.started_ns - RACY_WINDOW_NS:
                preserve = policy.preserve
                value = remembered(fp, key, [(p, k) for p, k in idx.unmanaged()
                                             if not (preserve and matches(p, preserve))])
        with idx.atomic():
            idx.set_state("tree", value)

    def _hardware(self) -> dict[str, Any] | None:
        previous = self.index.inventory() if self.index is not None else None
        try:
            result = self.agent.probe.probe(previous)
        except Exception as exc:  # noqa: BLE001 - a broken probe is a finding, not a crash of the boot
            self.log.fail("hardware", f"the hardware probe failed: {exc}")
            return None
        self.log.findings = tuple(result.findings)
        worst = max((f.severity for f in result.findings), key=("info", "warn", "fail").index, default="ok")
        self.log.step("hardware", "ok" if worst in ("ok", "info") else worst, findings=len(result.findings),
                      gauges=gauges(result.inventory))
        return result.inventory

    def _start(self, writable: bool) -> startcheck.Decision:
        cfg = self.cfg
        checks = startcheck.run_checks(cfg.hooks.start_check, cfg.hooks.timeout)
        free = startcheck.free_bytes(cfg.state_dir) if writable else 0
        decision = startcheck.decide_start(self.log.findings, state_dir_writable=writable, free_bytes=free,
                                           needed_bytes=cfg.limits.min_free_bytes, check_results=checks)
        reasons = list(decision.reasons)
        if self.index is not None and cfg.failures.action == "quarantine":
            reasons.extend(looping(self.index, cfg.failures.max_consecutive))
        decision = startcheck.Decision(not reasons, tuple(reasons))
        self.log.step("start", "ok" if decision.start else "refused", reasons=list(decision.reasons),
                      checks=[c.describe() for c in checks])
        return decision

    def _quarantine_path(self, reasons: tuple[str, ...], writable: bool) -> RunResult:
        cfg = self.cfg
        self.log.errors.extend(f"start refused: {r}" for r in reasons)
        self.steps.exit_code = EXIT_QUARANTINED
        installed = _installed(self.index) if self.index is not None else None
        self.log.generation_before = self.log.generation_after = installed.number if installed else None
        report = self.log.build(host=cfg.host, outcome="quarantined", exit_code=EXIT_QUARANTINED, version=__version__)
        if writable:
            self._save(report)
        upload_error = deliver(self.session.report_target(self.session.open_quiet()), self.index, report,
                               self._host_key(writable))
        hook = startcheck.run_quarantine_hook(cfg.hooks.quarantine, cfg.hooks.timeout)
        warnings = list(self.log.warnings)
        if hook is not None and not hook.ok:
            warnings.append(f"quarantine hook {hook.describe()}")
        return RunResult(report, EXIT_QUARANTINED, warnings, upload_error)

    # -- target -----------------------------------------------------------------------------
    def _target(self, installed: Target | None) -> tuple[Target | None, str]:
        """What the repair step converges to, and its phase: repair / update (an interrupted
        update resumed) / install (nothing installed: the channel's generation plus overlay)."""
        assert self.index is not None
        journal = self.index.pending_journal()
        if journal is not None:
            self.log.warnings.append(f"run {journal.run_id} was interrupted during its {journal.plan.get('phase')} "
                                     f"after {journal.ops_done} operations; this run finishes it")
            target = Target.from_dict(journal.target)
            if all(self.agent.manifests.has(m) for m in target.manifests()):
                if installed is None:
                    return target, "install"
                return target, ("repair" if target == installed else "update")
        if installed is not None:
            return installed, "repair"
        if self.steps.skip_looping("install"):
            return None, "install"
        try:
            accepted = accept(self.session, None, overlay_check=True)
            if accepted is None:
                raise NotInstalled(f"nothing is installed and channel {self.cfg.channel!r} has no published "
                                   f"generation in {self.cfg.store}", failure=MISCONFIGURED,
                                   hint="check 'channel' in regend.toml, or publish a generation to it")
            prepare(self.session, self.agent.manifests, self.agent.cache, accepted, "install")
        except Interrupted:  # a signal: the run stops now (not a failed step)
            raise
        except RegenError as exc:
            if exc.offline:
                self.session.went_offline(exc)
            self.session.note(exc)
            self.steps.fail("install", exc)
            self.steps.exit_code = EXIT_FAILED
            return None, "install"
        return accepted, "install"

    # -- the end ----------------------------------------------------------------------------
    def _retention(self) -> None:
        q = self.cfg.quarantine
        try:
            pruned = self.agent.quarantine.prune(q.max_age_days, q.max_bytes, keep=[self.log.run_id],
                                                 floor=q.keep_runs)
            self.log.warnings.extend(pruned.notes)
        except OSError as exc:
            self.log.warnings.append(f"quarantine retention: {exc.strerror or exc}")

    def _cache_budget(self) -> None:
        """Keep the object cache within [cache] max_bytes after a run that fetched into it, or a full
        verify (so a lowered budget takes effect by then), compressing what an older regend left
        uncompressed first; a no-change run does not walk the cache."""
        cache = self.agent.cache
        if not (cache.wrote or self.verify):
            return
        try:
            cache.compress_uncompressed()  # (a cache written by an older regend: a share per run)
            count, _ = cache.fit()
        except OSError as exc:
            self.log.warnings.append(f"object cache budget: {exc.strerror or exc}")
            return
        if count:
            self.log.action("cache_evicted", count)

    def _host_key(self, create: bool) -> SecretKey | None:
        """The host's signing key (made on the first run); None, with a warning, if it cannot be had."""
        try:
            return host_key(self.cfg.state_dir, create=create)
        except (RegenError, OSError) as exc:
            msg = exc.one_line() if isinstance(exc, RegenError) else (exc.strerror or str(exc))
            self.log.warnings.append(f"the report is sent unsigned: the host key cannot be used: {msg}")
            return None

    def _save(self, report: Report) -> None:
        try:
            save_report(self.cfg.state_dir, report, self.cfg.reports_keep)
        except OSError as exc:
            self.log.warnings.append(f"the report could not be saved: {exc.strerror or exc}")
        if self.cfg.metrics_file:
            try:
                write_metrics(self.cfg.metrics_file, run_metrics(
                    report, quarantined_bytes=self.agent.quarantine.total_bytes()))
            except OSError as exc:
                self.log.warnings.append(f"the metrics file {self.cfg.metrics_file} could not be written: "
                                         f"{exc.strerror or exc}")

    def _finish(self) -> RunResult:
        outcome = self.steps.outcome()
        exit_code = self.session.exit_code(self.steps.exit_code)
        self.log.store_state, self.log.store_error = self.session.state()
        if self.steps.quarantined:  # a procedure with failure = "quarantine" failed: as a refused start
            hook = startcheck.run_quarantine_hook(self.cfg.hooks.quarantine, self.cfg.hooks.timeout)
            if hook is not None and not hook.ok:
                self.log.warnings.append(f"quarantine hook {hook.describe()}")
        report = self.log.build(host=self.cfg.host, outcome=outcome, exit_code=exit_code, version=__version__)
        self._save(report)
        upload_error = deliver(self.session.report_target(self.session.reachable()), self.index, report,
                               self._host_key(True))
        return RunResult(report, exit_code, list(self.log.warnings), upload_error, self.session.retry_after)


def _installed(index: Index | None) -> Target | None:
    if index is None:
        return None
    d = index.state("installed")
    return Target.from_dict(d) if d else None


def _now() -> str:
    from regen.store import format_time, utcnow

    return format_time(utcnow())


__all__ = ["OFFLINE_WARNING", "Agent", "RunOptions", "RunResult"]
