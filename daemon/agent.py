"""One regend run, in the issue's order: hardware -> start -> install -> scan -> repair -> update -> report.

The agent wires the pure parts (classify, plan, decide_start) to the I/O parts (index, scan,
apply, fetch, store) and records each step's outcome in the report. Exit statuses: 0 the
machine may start (repairs and updates included; a refused or unreachable update is a
warning or an error in the report, not a reason to stop the machine), 1 the tree could not
be brought to its generation (the next run resumes), 3 quarantined.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from regen.store import (
    EMPTY_ID,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_QUARANTINED,
    Entry,
    IntegrityError,
    ManifestDelta,
    Overlay,
    RegenError,
    Report,
    Store,
    StoreConfig,
    StoreError,
    TrustError,
    matches,
    open_store,
)

from . import startcheck
from .apply import Applier, ApplyResult, Ticker, observed_from_facts
from .cache import ObjectCache
from .config import DaemonConfig
from .delta import plan_delta, read_delta
from .errors import DaemonError, Interrupted, NoSpace, NotInstalled
from .fetch import fetch_missing
from .hardware import HardwareProbe
from .index import Index, open_index
from .lock import RunLock
from .mirror import load_mirror, save_mirror, seed_from_mirror
from .monitor import OFFLINE_WARNING, _is_offline, _open_store, read_generation, read_overlay
from .plan import Plan, plan
from .quarantine import Quarantine, new_run_id
from .reporting import RunLog, deliver, save_report
from .scan import RACY_WINDOW_NS, ScanResult, scan
from .target import Manifests, Target

log = logging.getLogger("regen.daemon")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("regen")
    except PackageNotFoundError:
        return "unknown"


__version__ = _version()

TRACKED_STEPS = ("install", "repair", "update")


@dataclass(frozen=True, slots=True)
class RunOptions:
    verify: bool = False
    kill_after: int | None = None      # test hook (REGEN_TEST_KILL_AFTER): SIGKILL after N apply operations
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
                 store_factory: Callable[[DaemonConfig, StoreConfig | None], Store] | None = None) -> None:
        self.config = config
        self.probe = probe
        self.stop = stop or threading.Event()
        self.store_factory = store_factory or _open_store
        self.cache = ObjectCache(config.state_dir)
        self.manifests = Manifests(config.state_dir, root=config.root)
        self.quarantine = Quarantine(config.state_dir)

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
            if cycle is not None and cycle.store is not None:
                cycle.store.backend.close()  # pooled connections (sftp); the store stays reopenable
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
    """The state of one run (one use)."""

    def __init__(self, agent: Agent, runlog: RunLog, index: Index | None, options: RunOptions) -> None:
        self.agent = agent
        self.cfg = agent.config
        self.log = runlog
        self.index = index
        self.options = options
        self.verify = options.verify
        self.store: Store | None = None
        self.offline = False
        self.exit_code = EXIT_OK
        self.updated = False
        self.repaired = False
        self.retry_after: float | None = None
        self.failed_steps: dict[str, str] = {}
        self.ok_steps: set[str] = set()
        # one count of operations for the whole run (repair and update): the journal's ops_done and
        # the REGEN_TEST_KILL_AFTER hook both count from the start of the run
        self.ticker = Ticker(options.kill_after, agent.stop)
        self.started_ns = time.time_ns()
        self.trace: list[Any] | None = None  # the fast path's walk, while nothing was applied after it
        self.wrote = False                     # an apply changed the tree in this run

    # -- the run ---------------------------------------------------------------------------
    def run(self, writable: bool) -> RunResult:
        inventory = self._hardware()
        decision = self._start(writable)
        if not decision.start:
            return self._quarantine_path(decision.reasons, writable)
        assert self.index is not None
        if inventory is not None:  # kept only when the start is allowed: a fault is seen again next boot
            with self.index.atomic():
                self.index.set_inventory(inventory, _now())
        installed = _installed(self.index)
        self.log.generation_before = installed.number if installed else None
        try:
            target, phase = self._target(installed)
            if target is not None:
                self._repair(target, phase)
                if phase != "install":
                    self._update(_installed(self.index) or target)
        except Interrupted as exc:
            self.log.errors.append(exc.one_line())  # the run did not complete: the report says failing
            self.log.warnings.append(exc.one_line())
            self.exit_code = exc.exit_code
        except DaemonError as exc:
            self._step_failed("run", exc)
            self.exit_code = EXIT_FAILED
        final = _installed(self.index)
        self.log.generation_after = final.number if final else None
        self._remember_tree(final)
        self._remember_failures()
        self._retention()
        return self._finish()

    def _remember_tree(self, final: Target | None) -> None:
        """Record the tree's fingerprint for `regend check` (quick.recall) when this run leaves
        the index matching the target and nothing under root changed since before the run began
        (every ctime older than its start by the racy window): the fingerprint then certifies the
        very tree this run verified. Else the record is dropped."""
        from .quick import fingerprint, fingerprint_of, remembered

        idx = self.index
        if idx is None:
            return
        value = None
        key = self._clean_key(final) if final is not None and not self.failed_steps and not self.exit_code else None
        if key is not None and not self.wrote and idx.state("clean") == key:  # (wrote: ctimes are new)
            policy = self._policy(final)
            fp = fingerprint_of(self.trace) if self.trace is not None else \
                fingerprint(self.cfg.root, self._prune(policy))
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
        self.log.step("hardware", "ok" if worst in ("ok", "info") else worst, findings=len(result.findings))
        return result.inventory

    def _start(self, writable: bool) -> startcheck.Decision:
        cfg = self.cfg
        checks = startcheck.run_checks(cfg.hooks.start_check, cfg.hooks.timeout)
        free = startcheck.free_bytes(cfg.state_dir) if writable else 0
        decision = startcheck.decide_start(self.log.findings, state_dir_writable=writable, free_bytes=free,
                                           needed_bytes=cfg.limits.min_free_bytes, check_results=checks)
        reasons = list(decision.reasons)
        if self.index is not None and cfg.failures.action == "quarantine":
            for step, (_sig, count, msg) in self.index.failures().items():
                if count >= cfg.failures.max_consecutive:
                    reasons.append(f"step {step} failed {count} runs in a row: {msg}")
        decision = startcheck.Decision(not reasons, tuple(reasons))
        self.log.step("start", "ok" if decision.start else "refused", reasons=list(decision.reasons),
                      checks=[c.describe() for c in checks])
        return decision

    def _quarantine_path(self, reasons: tuple[str, ...], writable: bool) -> RunResult:
        cfg = self.cfg
        self.log.errors.extend(f"start refused: {r}" for r in reasons)
        self.exit_code = EXIT_QUARANTINED
        installed = _installed(self.index) if self.index is not None else None
        self.log.generation_before = self.log.generation_after = installed.number if installed else None
        report = self.log.build(host=cfg.host, outcome="quarantined", exit_code=EXIT_QUARANTINED, version=__version__)
        if writable:
            try:
                save_report(cfg.state_dir, report, cfg.reports_keep)
            except OSError as exc:
                self.log.warnings.append(f"the report could not be saved: {exc.strerror or exc}")
        upload_error = deliver(self._report_target(self._open_store_quiet()), self.index, report)
        hook = startcheck.run_quarantine_hook(cfg.hooks.quarantine, cfg.hooks.timeout)
        warnings = list(self.log.warnings)
        if hook is not None and not hook.ok:
            warnings.append(f"quarantine hook {hook.describe()}")
        return RunResult(report, EXIT_QUARANTINED, warnings, upload_error)

    # -- store ------------------------------------------------------------------------------
    def _report_target(self, store: Store | None) -> Store | None:
        """Where reports go: `[reports] store` when set (clients of a read-only http store), else the store."""
        if self.cfg.report_store is None:
            return store
        try:
            return open_store(self.cfg.report_store, dict(self.cfg.report_storage_options))
        except RegenError as exc:
            self.log.warnings.append(f"the report store cannot be opened: {exc.one_line()}")
            return None

    def _open_store_quiet(self) -> Store | None:
        try:
            return self._store()
        except RegenError as exc:
            self._went_offline(exc)
            return None

    def _store(self) -> Store:
        """The store, opened with the cached configuration (so regen.json is read once per host)."""
        if self.store is None:
            cached = self.index.state("store") if self.index is not None else None
            config = None
            if cached and cached.get("url") == self.cfg.store:
                config = StoreConfig(cached["store_id"], cached.get("compression", "zstd"))
            store = self.agent.store_factory(self.cfg, config)
            if config is None:
                cfgd = store.config  # reads regen.json once (raises while the store is unreachable)
                if self.index is not None:
                    with self.index.atomic():
                        self.index.set_state("store", {"url": self.cfg.store, "store_id": cfgd.store_id,
                                                       "compression": cfgd.compression})
                    save_mirror(self.cfg.state_dir, self.index)
            self.store = store
        return self.store

    def _went_offline(self, exc: BaseException) -> None:
        self.offline = True
        ra = getattr(exc, "retry_after", None)
        if isinstance(ra, (int, float)):
            self.retry_after = float(ra)
        if OFFLINE_WARNING not in " ".join(self.log.warnings):
            msg = exc.one_line() if isinstance(exc, RegenError) else str(exc)
            self.log.warnings.append(f"{OFFLINE_WARNING} ({msg})")

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
        if self._skip_looping("install"):
            return None, "install"
        try:
            accepted = self._accept(None, overlay_check=True)
            if accepted is None:
                raise NotInstalled(f"nothing is installed and channel {self.cfg.channel!r} has no published "
                                   f"generation in {self.cfg.store}")
            self._prepare(accepted, "install")
        except RegenError as exc:
            if _is_offline(exc):
                self._went_offline(exc)
            self._step_failed("install", exc)
            self.exit_code = EXIT_FAILED
            return None, "install"
        return accepted, "install"

    def _accept(self, installed: Target | None, *, overlay_check: bool) -> Target | None:
        """Read and verify the ref (and the overlay when installing, on a new generation, or when
        asked); the new Target, or None when it describes the installed tree."""
        assert self.index is not None
        cfg = self.cfg
        store = self._store()
        gen = read_generation(store, cfg.channel, cfg.trusted, store_id=store.store_id,
                              min_number=self.index.highest("channel", cfg.channel),
                              max_bytes=cfg.limits.max_record_bytes)
        if gen is None:
            if installed is not None:
                raise _missing_ref(cfg)
            return None
        target = Target.of(gen, None)
        overlay: Overlay | None = None
        if installed is None or installed.number != gen.number or overlay_check:
            overlay = read_overlay(store, cfg.host, cfg.trusted, store_id=store.store_id,
                                   min_number=self.index.highest("overlay", cfg.host),
                                   max_bytes=cfg.limits.max_record_bytes)
            if overlay is None and installed is not None and installed.overlay_number is not None:
                # regen never deletes an overlay file (removal writes a tombstone): keep ours, say so
                self.log.warnings.append(f"hosts/{cfg.host}/overlay.json is missing from the store; keeping "
                                         f"overlay version {installed.overlay_number}")
        if overlay is not None:
            target = target.with_overlay(overlay)
        elif installed is not None:
            target = replace(target, overlay_number=installed.overlay_number,
                             overlay_manifest=installed.overlay_manifest)
        with self.index.atomic():
            self.index.raise_highest("channel", cfg.channel, gen.number)
            if overlay is not None:
                self.index.raise_highest("overlay", cfg.host, overlay.number)
        save_mirror(cfg.state_dir, self.index)
        if installed is not None and target.same_tree(installed) and target.number == installed.number:
            return None
        return target

    def _prepare(self, target: Target, phase: str) -> None:
        """Fetch the target's manifests and every object the cache lacks (verified), with a space check."""
        self._fetch_manifests(target)
        sizes: dict[str, int] = {}
        with self.agent.manifests.entries(target) as entries:
            for _ in _collect(entries, self._policy(target), sizes, set()):
                pass
        self._fetch_objects(target, phase, sizes)

    def _fetch_manifests(self, target: Target) -> None:
        store = self._store()
        for oid in target.manifests():
            self.agent.manifests.fetch(store, oid, self.cfg.limits.max_manifest_bytes)

    def _fetch_objects(self, target: Target, phase: str, sizes: dict[str, int]) -> None:
        """Fetch (verified) every object of `sizes` the cache lacks, after a space check."""
        store = self._store()
        missing = self.agent.cache.missing(sizes)
        need = sum(sizes[o] for o in missing)
        free = startcheck.free_bytes(self.cfg.state_dir)
        if need + self.cfg.limits.min_free_bytes > free:
            raise NoSpace(f"the {phase} to generation {target.number} needs {_human(need)} in "
                          f"{self.cfg.state_dir} but only {_human(free)} are free", need=need, free=free)
        result = fetch_missing(store, self.agent.cache, missing, sizes=sizes)
        self.log.bytes_fetched += result.bytes
        self.log.action("objects_fetched", result.fetched)
        if result.errors:
            first = next(iter(result.errors.values()))
            raise _FetchFailed(f"{len(result.errors)} of {len(missing)} objects could not be fetched: {first}")

    def _policy(self, target: Target) -> Any:
        return target.policy.merged(self.cfg.preserve, self.cfg.junk)

    # -- scan and repair --------------------------------------------------------------------
    def _prune(self, policy: Any) -> Callable[[str], bool]:
        root, state = self.cfg.root, self.cfg.state_dir
        state_rel = os.path.relpath(state, root) if (state + "/").startswith(root.rstrip("/") + "/") else None
        preserve = policy.preserve

        def prune(path: str) -> bool:
            return path == state_rel or bool(preserve and matches(path, preserve))
        return prune

    def _scan(self, policy: Any, verify: bool) -> ScanResult:
        assert self.index is not None
        t0 = time.monotonic()
        result = scan(self.cfg.root, self.index.rows(), prune=self._prune(policy), verify=verify, stop=self.agent.stop)
        if result.rows:
            with self.index.atomic():
                self.index.put_rows(result.rows)
        self.log.step("scan", "ok" if not result.errors else "partial", verify=verify, paths=len(result.observed),
                      hashed=result.hashed, bytes_hashed=result.bytes_hashed, drifted=result.drift.total(),
                      seconds=round(time.monotonic() - t0, 3), reasons=result.reasons, errors=result.errors[:20])
        return result

    def _repair(self, target: Target, phase: str) -> None:
        """Scan, plan against `target`, apply. `phase` install/update makes `target` the installed one."""
        assert self.index is not None
        if not os.path.isdir(self.cfg.root):
            raise NotInstalled(f"root {self.cfg.root} does not exist or is not a directory",
                               hint="create it (an empty directory is installed into) or fix 'root' in the config")
        step = "install" if phase == "install" else "repair"
        if phase == "repair" and self._skip_looping("repair"):
            return
        policy = self._policy(target)
        verify = self.verify or phase == "install"
        if phase == "repair" and not verify and self._unchanged(target, policy):
            return
        result = self._scan(policy, verify)
        if phase != "install":
            base = [p for p in result.drift.paths() if policy.base and matches(p, policy.base)]
            if base and not verify:
                self.log.warnings.append(f"drift under base paths ({base[0]}, ...): full verify")
                result = self._scan(policy, True)
            self.log.drift = result.drift.as_report()
        try:
            with self.agent.manifests.entries(target) as entries:
                the_plan = plan(entries, result.observed, policy)
        except RegenError as exc:
            self._step_failed(step, exc)
            self.exit_code = EXIT_FAILED
            return
        try:
            res = self._apply(the_plan, target, phase, gone=result.gone, clean=not result.errors)
        except NoSpace as exc:
            self._step_failed(step, exc)
            self.exit_code = EXIT_FAILED
            return
        if res.errors:
            self._apply_failed(step, res)
        else:
            self.ok_steps.add(step)
            self.repaired = self.repaired or (phase == "repair" and not the_plan.empty)
        self.log.step(step, "failed" if res.errors else ("done" if not the_plan.empty else "ok"),
                      **the_plan.stats(), **res.counts())
        if phase != "repair":
            self._installed(target)

    def _unchanged(self, target: Target, policy: Any) -> bool:
        """The no-change fast path (quick.py): True when the tree provably matches the index by
        stat and the index matches `target` (recorded clean): the repair is done, nothing read."""
        from .quick import no_drift, unchanged

        assert self.index is not None
        if self.index.state("clean") != self._clean_key(target):
            return False
        t0 = time.monotonic()
        preserve = policy.preserve
        root, state = self.cfg.root, self.cfg.state_dir
        state_rel = os.path.relpath(state, root) if (state + "/").startswith(root.rstrip("/") + "/") else None
        prune = None if not preserve and state_rel is None else self._prune(policy)
        racy: list[str] = []
        trace: list[Any] = []
        found = unchanged(root, self.index.row_map(), prune, strict_dirs=True, racy=racy, trace=trace)
        if found is None or found.unmanaged:  # kept paths: the full path records them as before
            return False
        if len(racy) * 10 > found.paths:  # (just installed: the full scan hashes with two threads)
            return False
        size = self._confirm_racy(racy)
        if size is None:
            return False
        self.trace = trace
        self.log.step("scan", "ok", verify=False, paths=found.paths, hashed=len(racy), bytes_hashed=size,
                      drifted=0, seconds=round(time.monotonic() - t0, 3),
                      reasons={"racy": len(racy)} if racy else {}, errors=[])
        self.log.drift = no_drift()
        empty = Plan()
        res = self._apply(empty, target, "repair")
        self.ok_steps.add("repair")
        self.log.step("repair", "ok", **empty.stats(), **res.counts())
        return True

    def _confirm_racy(self, paths: list[str]) -> int | None:
        """Hash the files the fast path found inside the racy-timestamp window (those the last
        apply wrote) and compare with their rows (scan.confirm_racy): all equal -> their rows are
        refreshed (checked now) and the fast path holds; any surprise -> None (the full scan
        decides). Returns the bytes hashed."""
        from .scan import confirm_racy

        assert self.index is not None
        if not paths:
            return 0
        fresh = confirm_racy(self.cfg.root, self.index.get, paths)
        if fresh is None:
            return None
        with self.index.atomic():
            self.index.put_rows(fresh)
        return sum(r.size for r in fresh if r.kind == "file")

    def _clean_key(self, target: Target) -> str:
        from .quick import clean_key

        return clean_key(target.as_dict(), self._policy(target).as_dict(), self.cfg.root, self.cfg.state_dir)

    def _apply(self, the_plan: Plan, target: Target, phase: str, gone: list[str] | None = None,
               clean: bool = True) -> ApplyResult:
        """Journal, apply, record: the index is updated batch by batch, then the journal closed.

        `clean`: the plan saw the whole tree; when the apply leaves nothing unfinished the index
        is recorded as matching `target` (the no-change fast path relies on it)."""
        assert self.index is not None
        idx = self.index
        run_id = self.log.run_id
        done = {"removed": 0}
        ticker = self.ticker

        def on_batch(res: ApplyResult) -> None:
            with idx.atomic():
                idx.delete_paths(res.removed[done["removed"]:])
                idx.put_rows(res.rows)
                idx.journal_progress(run_id, ticker.n)
            # rows written are in the index now (where the applier looks them up again): holding
            # them all would cost ~0.5 KB per file of an install
            res.rows.clear()
            done["removed"] = len(res.removed)

        if phase != "repair":
            self._check_space(the_plan, target)
        if the_plan.empty and not the_plan.adopt and not the_plan.keep:
            with idx.atomic():
                idx.delete_paths(gone or [])
                idx.close_pending()
                if phase != "repair":
                    idx.set_state("installed", target.as_dict())
                idx.set_state("clean", self._clean_key(target) if clean else None)
            return ApplyResult()
        self.trace, self.wrote = None, True  # the tree changes from here
        with idx.atomic():
            idx.set_state("clean", None)
            idx.delete_paths(gone or [])  # before apply's rows: a path gone may be written again
            idx.begin_journal(run_id, self.log.started, target.as_dict(),
                              {"phase": phase, "stats": the_plan.stats(), "plan": the_plan.summary()})
        store = None if self.offline else self._open_store_quiet()
        applier = Applier(self.cfg.root, the_plan, cache=self.agent.cache, store=store,
                          quarantine=self.agent.quarantine, run_id=run_id, ticker=ticker, on_batch=on_batch,
                          known_dir=idx.get)
        res = applier.run()
        with idx.atomic():  # one transaction: never "journal done" with the old generation installed
            idx.finish_journal(run_id)
            idx.close_pending()
            if phase != "repair":
                idx.set_state("installed", target.as_dict())
            idx.set_state("clean", self._clean_key(target) if clean and not res.errors else None)
        self.log.action("written", res.written)
        self.log.action("removed", len(res.removed))
        self.log.action("quarantined", len(res.quarantined))
        self.log.action("chmod", len(the_plan.chmod))
        self.log.action("mkdir", len(the_plan.mkdir))
        self.log.action("symlinks", len(the_plan.symlink))
        self.log.bytes_fetched += res.bytes_from_store
        if res.quarantined:
            self.log.actions["quarantine_run"] = run_id
        return res

    def _check_space(self, the_plan: Plan, target: Target) -> None:
        """Files are staged next to their targets, one batch at a time: that much must fit in root."""
        from .apply import BATCH_BYTES

        need = min(the_plan.stats()["bytes_to_write"], BATCH_BYTES)
        free = startcheck.free_bytes(self.cfg.root)
        if need > free:
            raise NoSpace(f"the update to generation {target.number} stages up to {_human(need)} in "
                          f"{self.cfg.root} but only {_human(free)} are free", need=need, free=free)

    def _apply_failed(self, step: str, res: ApplyResult) -> None:
        path, msg = res.errors[0]
        more = f" (and {len(res.errors) - 1} more)" if len(res.errors) > 1 else ""
        self.failed_steps[step] = f"{path}: {msg}"
        self.log.errors.extend(f"{step}: {p}: {m}" for p, m in res.errors[:50])
        self.log.warnings.append(f"{step} left {len(res.errors)} paths unfinished: {path}: {msg}{more}")
        self.exit_code = EXIT_FAILED

    def _installed(self, target: Target, keep: set[str] | None = None) -> None:
        """`target` is installed; `keep`: its file objects when already known (else read again)."""
        assert self.index is not None
        with self.index.atomic():
            self.index.set_state("installed", target.as_dict())
        save_mirror(self.cfg.state_dir, self.index)
        self.agent.manifests.prune(set(target.manifests()))
        self._prune_cache(target, keep)
        self.updated = True

    # -- update -----------------------------------------------------------------------------
    def _update(self, installed: Target) -> None:
        assert self.index is not None
        if self._skip_looping("update"):
            return
        try:
            target = self._accept(installed, overlay_check=self.verify)
        except RegenError as exc:
            if _is_offline(exc):
                self._went_offline(exc)
                self.log.step("update", "skipped", reason=OFFLINE_WARNING)
            else:
                self._step_failed("update", exc, refused=isinstance(exc, (TrustError, IntegrityError)))
            return
        if target is None:
            self.ok_steps.add("update")
            self.log.step("update", "ok", generation=installed.number, detail="up to date")
            return
        policy = self._policy(target)
        prune = self._prune(policy)
        sizes: dict[str, int] = {}
        keep: set[str] = set()
        try:
            self._fetch_manifests(target)
            delta = self._delta(installed, target, policy)
            if delta is not None:  # only what differs from the installed manifest (delta.py)
                the_plan = plan_delta(self.agent.manifests, self.index, delta, policy, prune,
                                      lambda entries: _collect(entries, policy, sizes, keep))
                keep.update(delta.objects)
            else:
                observed = observed_from_facts(self.index.observed_facts(), prune)
                # one pass over the manifest: the plan, the objects to fetch, the objects the cache keeps
                with self.agent.manifests.entries(target) as entries:
                    the_plan = plan(_collect(entries, policy, sizes, keep), observed, policy)
            self._fetch_objects(target, "update", sizes)
        except RegenError as exc:
            if _is_offline(exc):
                self._went_offline(exc)
            self._step_failed("update", exc)
            return
        try:
            res = self._apply(the_plan, target, "update")
        except NoSpace as exc:
            self._step_failed("update", exc)  # nothing changed: the installed generation stays
            return
        if res.errors:
            self._apply_failed("update", res)
        else:
            self.ok_steps.add("update")
        self.log.step("update", "failed" if res.errors else "done", generation_from=installed.number,
                      generation_to=target.number, planned="delta" if delta is not None else "full",
                      **the_plan.stats(), **res.counts())
        self._installed(target, keep)

    def _delta(self, installed: Target, target: Target, policy: Any) -> ManifestDelta | None:
        """The update is planned from the manifests' differing lines (delta.py) when the tree is
        exactly `installed`: this run's repair succeeded and left the index clean for it, under
        the same policy. None: plan in full."""
        assert self.index is not None
        if ("repair" not in self.ok_steps or policy != self._policy(installed)
                or self.index.state("clean") != self._clean_key(installed)):
            return None
        return read_delta(self.agent.manifests, installed, target)

    def _prune_cache(self, target: Target, keep: set[str] | None = None) -> None:
        if keep is None:
            keep = set()
            with self.agent.manifests.entries(target, verify=False) as entries:
                for e in entries:
                    if e.kind == "file" and e.oid:
                        keep.add(e.oid)
        self.agent.cache.prune(keep)

    # -- loops and failures -----------------------------------------------------------------
    def _skip_looping(self, step: str) -> bool:
        """A step failing the same way max_consecutive runs in a row is not retried blindly:
        it is skipped (and reported) until a --verify run, or until what it fails on changes."""
        assert self.index is not None
        f = self.index.failure(step)
        limit = self.cfg.failures.max_consecutive
        if f is None or f[1] < limit or self.verify:
            return False
        msg = f"{step} failed {f[1]} runs in a row ({f[2]}); not retried until a --verify run"
        self.log.step(step, "skipped", reason=msg)
        self.log.errors.append(msg)
        if step == "install":
            self.exit_code = EXIT_FAILED
        return True

    def _step_failed(self, step: str, exc: BaseException, **detail: Any) -> None:
        self.log.fail(step, exc, **detail)
        self.failed_steps[step] = exc.one_line() if isinstance(exc, RegenError) else str(exc)

    def _remember_failures(self) -> None:
        assert self.index is not None
        with self.index.atomic():
            for step in TRACKED_STEPS:
                if step in self.failed_steps:
                    msg = self.failed_steps[step]
                    self.index.record_failure(step, _signature(msg), msg)
                elif step in self.ok_steps:
                    self.index.clear_failure(step)

    def _retention(self) -> None:
        q = self.cfg.quarantine
        try:
            self.agent.quarantine.prune(q.max_age_days, q.max_bytes, keep=[self.log.run_id])
        except OSError as exc:
            self.log.warnings.append(f"quarantine retention: {exc.strerror or exc}")

    # -- the end ----------------------------------------------------------------------------
    def _finish(self) -> RunResult:
        cfg = self.cfg
        if self.exit_code == EXIT_OK and self.log.errors and any(
                s.get("outcome") == "failed" for n, s in self.log.steps.items() if n in ("install", "repair")):
            self.exit_code = EXIT_FAILED
        if self.log.errors:
            outcome = "failing"
        elif self.updated:
            outcome = "updated"
        elif self.repaired:
            outcome = "repaired"
        else:
            outcome = "ok"
        report = self.log.build(host=cfg.host, outcome=outcome, exit_code=self.exit_code, version=__version__)
        try:
            save_report(cfg.state_dir, report, cfg.reports_keep)
        except OSError as exc:
            self.log.warnings.append(f"the report could not be saved: {exc.strerror or exc}")
        store = None if self.offline else self._open_store_quiet()
        upload_error = deliver(self._report_target(store), self.index, report)
        return RunResult(report, self.exit_code, list(self.log.warnings), upload_error, self.retry_after)


def _collect(entries: Iterator[Entry], policy: Any, sizes: dict[str, int], keep: set[str]) -> Iterator[Entry]:
    """Pass `entries` through, noting every file object (`keep`) and those the cache must hold
    (`sizes`: oid -> size; not preserved, not base paths, which come from the store)."""
    preserve, base = policy.preserve, policy.base
    for e in entries:
        if e.kind == "file" and e.oid:
            keep.add(e.oid)
            if e.oid != EMPTY_ID and not matches(e.path, preserve) and not (base and matches(e.path, base)):
                sizes[e.oid] = e.size
        yield e


class _FetchFailed(DaemonError):
    default_hint = "the store may be damaged or unreachable; the next run retries"


def _missing_ref(cfg: DaemonConfig) -> StoreError:
    from regen.store import NotFound

    return NotFound(f"refs/{cfg.channel} is missing from {cfg.store}")


def _signature(msg: str) -> str:
    import hashlib

    return hashlib.sha256(msg.encode()).hexdigest()[:16]


def _installed(index: Index | None) -> Target | None:
    if index is None:
        return None
    d = index.state("installed")
    return Target.from_dict(d) if d else None


def _now() -> str:
    from regen.store import format_time, utcnow

    return format_time(utcnow())


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


__all__ = ["OFFLINE_WARNING", "Agent", "RunOptions", "RunResult"]
