"""Writing a plan into the tree under the run's journal, and keeping the index in step with it (I/O).

Why one place: the index must never claim more than the tree holds, and a run killed at any
operation must be finished by the next one (tests/hardening kills it at every operation). So
every apply of a run, repair or update, goes through `TreeWriter.apply`, which:

  1. clears the clean record and opens the journal (target, phase, plan) in one transaction,
     with the procedures the plan's changes fire (procedures.py), then runs the "before" ones;
  2. applies, recording the index rows of each batch with the journal's progress;
  3. closes the journal and, for an install or update, records the target as installed, in one
     transaction (never "journal done" with the old generation installed).

`installed` then makes the target the installed one for good: the mirror (state.json), and
the manifests and cache objects of older generations dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from regen.daemon.run.diskspace import need_stage_space
from regen.daemon.run.refill import REFILL
from regen.daemon.run.scope import clean_key_of
from regen.daemon.run.sealed import unseal_overlay
from regen.daemon.run.statefile import save_mirror
from regen.daemon.tree.apply import Applier, ApplyResult
from regen.store import RegenError

if TYPE_CHECKING:
    from regen.daemon.config import DaemonConfig
    from regen.daemon.run.procedures import Procedures
    from regen.daemon.run.reporting import RunLog
    from regen.daemon.run.session import StoreSession
    from regen.daemon.run.target import Manifests, Target
    from regen.daemon.tree.cache import ObjectCache
    from regen.daemon.tree.index import Index
    from regen.daemon.tree.plan import Plan
    from regen.daemon.tree.quarantine import Quarantine
    from regen.daemon.tree.ticker import Ticker
    from regen.store import Store

__all__ = ["TreeWriter"]


class TreeWriter:
    """Applies plans to root for one run. `wrote`: an apply changed the tree in this run;
    `trace`: the no-change fast path's walk (quick.unchanged), kept while nothing was applied
    after it (the report's tree fingerprint is then computed from it, not walked again)."""

    def __init__(self, cfg: DaemonConfig, index: Index, log: RunLog, session: StoreSession, *, ticker: Ticker,
                 cache: ObjectCache, manifests: Manifests, quarantine: Quarantine,
                 procedures: Procedures | None = None) -> None:
        self.cfg = cfg
        self.index = index
        self.log = log
        self.session = session
        self.ticker = ticker
        self.cache = cache
        self.manifests = manifests
        self.quarantine = quarantine
        self.procedures = procedures
        self.trace: list[Any] | None = None
        self.wrote = False

    def apply(self, the_plan: Plan, target: Target, phase: str, gone: list[str] | None = None,
              clean: bool = True) -> ApplyResult:
        """Journal, apply, record: the index is updated batch by batch, then the journal closed.

        `clean`: the plan saw the whole tree; when the apply leaves nothing unfinished the index
        is recorded as matching `target` (the no-change fast path relies on it)."""
        idx = self.index
        run_id = self.log.run_id
        on_batch = self._batch_recorder()
        if phase != "repair":
            need_stage_space(self.cfg, the_plan, target)
        if the_plan.empty and not the_plan.adopt and not the_plan.keep:
            with idx.atomic():
                idx.delete_paths(gone or [])
                idx.close_pending()
                if phase != "repair":
                    idx.set_state("installed", target.as_dict())
                idx.set_state("clean", clean_key_of(self.cfg, target) if clean else None)
            return ApplyResult()
        self.trace, self.wrote = None, True  # the tree changes from here
        procs = self.procedures
        fired = procs is not None and procs.fired_by(the_plan, target, phase)
        with idx.atomic():
            idx.set_state("clean", None)
            idx.delete_paths(gone or [])  # before apply's rows: a path gone may be written again
            idx.begin_journal(run_id, self.log.started, target.as_dict(),
                              {"phase": phase, "stats": the_plan.stats(), "plan": the_plan.summary()})
            if phase == "install":  # it moves objects from the cache into the tree: a later run copies them back
                idx.set_state(REFILL, True)
            if fired and procs is not None:
                procs.save()  # with the journal: a run killed from here on leaves them to the next run
        if procs is not None and not procs.run_before():
            with idx.atomic():  # nothing was changed: the next run plans (and fires) again
                idx.finish_journal(run_id)
                idx.close_pending()
            return ApplyResult(errors=[("procedures", "a 'before' procedure failed; the changes were not applied")])
        applier = Applier(self.cfg.root, the_plan, cache=self.cache, store=self._store(target),
                          quarantine=self.quarantine, run_id=run_id, ticker=self.ticker, on_batch=on_batch,
                          known_dir=idx.get, xattrs_required=self.cfg.xattrs == "required",
                          move=phase == "install")
        res = applier.run()
        with idx.atomic():  # one transaction: never "journal done" with the old generation installed
            idx.finish_journal(run_id)
            idx.close_pending()
            if phase != "repair":
                idx.set_state("installed", target.as_dict())
            clean_now = clean and not res.errors and not res.left
            idx.set_state("clean", clean_key_of(self.cfg, target) if clean_now else None)
        self._count(the_plan, res)
        return res

    def _store(self, target: Target) -> Store | None:
        """The store for what the cache lacks (base paths, cache misses), reading `target`'s sealed
        overlay with this host's key; a seal that cannot be opened is a warning: the cache may do."""
        store = self.session.reachable()
        if store is not None and target.overlay_sealed is not None:
            try:
                unseal_overlay(store, self.cfg.state_dir, self.cfg.host, target)
            except RegenError as exc:
                self.session.note(exc)
                self.log.warnings.append(f"the sealed overlay cannot be read from the store: {exc.one_line()}")
        return store

    def _batch_recorder(self) -> Callable[[ApplyResult], None]:
        """The applier's on_batch: each batch's rows and removals, with the journal's progress, in one transaction."""
        idx, run_id, ticker = self.index, self.log.run_id, self.ticker
        done = {"removed": 0}

        def on_batch(res: ApplyResult) -> None:
            with idx.atomic():
                idx.delete_paths(res.removed[done["removed"]:])
                idx.put_rows(res.rows)
                idx.journal_progress(run_id, ticker.n)
            # rows written are in the index now (where the applier looks them up again): holding
            # them all would cost ~0.5 KB per file of an install
            res.rows.clear()
            done["removed"] = len(res.removed)
        return on_batch

    def _count(self, the_plan: Plan, res: ApplyResult) -> None:
        log = self.log
        log.action("written", res.written)
        log.action("removed", len(res.removed))
        log.action("quarantined", len(res.quarantined))
        log.action("chmod", len(the_plan.chmod))
        log.action("mkdir", len(the_plan.mkdir))
        log.action("symlinks", len(the_plan.symlink))
        log.bytes_fetched += res.bytes_from_store
        if res.left:
            log.action("left_in_place", len(res.left))
            more = f" (and {len(res.left) - 1} more)" if len(res.left) > 1 else ""
            log.warnings.append(f"{res.left[0][1]}{more}")
        log.warnings.extend(res.warnings)
        if the_plan.link:
            log.action("links", len(the_plan.link))
        if res.quarantined:
            log.actions["quarantine_run"] = log.run_id

    def installed(self, target: Target, keep: set[str] | None = None) -> None:
        """`target` is installed; `keep`: its file objects when already known (else read again)."""
        with self.index.atomic():
            self.index.set_state("installed", target.as_dict())
        save_mirror(self.cfg.state_dir, self.index)
        self.manifests.prune(target.local_files())
        if keep is None:
            keep = set()
            with self.manifests.entries(target, verify=False) as entries:
                for e in entries:
                    if e.kind == "file" and e.oid:
                        keep.add(e.oid)
        self.cache.prune(keep)
