"""The update step: move the installed tree to the channel's newest generation (I/O).

Why a step of its own: unlike the repair, it needs the store, and a store that cannot be read
(offline) or refuses (a bad signature, a rollback: TrustError, IntegrityError) must not stop
the machine: the update is then skipped or failed in the report, and the installed generation
stays. Everything is fetched and verified before the first change; when this run's repair left
the tree exactly the installed generation, the plan is built from the manifests' differing
lines only (delta.py), else from the whole manifest against the index.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from regen.daemon.errors import Interrupted, NoSpace
from regen.daemon.run.accept import accept, collect, fetch_manifests, fetch_objects
from regen.daemon.run.channel import failure_line
from regen.daemon.run.delta import plan_delta, read_delta
from regen.daemon.run.scope import clean_key_of, policy_of, pruner
from regen.daemon.tree.apply import observed_from_facts
from regen.daemon.tree.owners import Owners
from regen.daemon.tree.plan import plan
from regen.store import IntegrityError, RegenError, TrustError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from regen.daemon.config import DaemonConfig
    from regen.daemon.run.outcome import Steps
    from regen.daemon.run.reporting import RunLog
    from regen.daemon.run.session import StoreSession
    from regen.daemon.run.target import Manifests, Target
    from regen.daemon.run.writer import TreeWriter
    from regen.daemon.tree.cache import ObjectCache
    from regen.daemon.tree.index import Index
    from regen.daemon.tree.plan import Plan
    from regen.store import Entry, ManifestDelta, Policy

__all__ = ["Update", "needed_objects", "update_plan"]


def update_plan(cfg: DaemonConfig, index: Index, entries: Iterable[Entry], policy: Policy, sizes: dict[str, int],
                keep: set[str], big: dict[str, str]) -> tuple[Plan, list[str]]:
    """The update's plan in full, in one pass over the target's entries: against the disk as the
    index knows it (what the repair left), noting the objects to fetch (`sizes`), those the cache
    keeps (`keep`) and the big files (`big`: accept.collect); and the owner mapping's warnings.
    (The delta plan, delta.py, gives the same plan: tests/daemon/test_delta.py.)"""
    observed = observed_from_facts(index.observed_facts(), pruner(cfg, policy))
    owners = Owners.of_root(cfg.root)
    return plan(collect(iter(entries), policy, sizes, keep, big), observed, policy, owners.map), owners.warnings


def needed_objects(the_plan: Plan) -> set[str]:
    """The objects an update fetches: those of the files it writes, but for copies from the tree."""
    return {e.oid for e in the_plan.writes() if e.oid and e.path not in the_plan.from_store}


class Update:
    """Updates root from `installed` to the accepted generation. `verify`: read the overlay
    again even when the generation did not change (a --verify run)."""

    def __init__(self, cfg: DaemonConfig, index: Index, log: RunLog, session: StoreSession, *, manifests: Manifests,
                 cache: ObjectCache, writer: TreeWriter, steps: Steps, verify: bool) -> None:
        self.cfg = cfg
        self.index = index
        self.log = log
        self.session = session
        self.manifests = manifests
        self.cache = cache
        self.writer = writer
        self.steps = steps
        self.verify = verify

    def run(self, installed: Target) -> None:
        if self.steps.skip_looping("update"):
            return
        try:
            # a failed repair of a sealed overlay may lack boxes gc removed after the overlay was sealed
            # again (another admin machine): read the overlay record too (one small read), so its
            # current boxes repair the tree
            resealed = installed.overlay_sealed is not None and "repair" in self.steps.failed
            target = accept(self.session, installed, overlay_check=self.verify or resealed)
        except Interrupted:  # a signal: the run stops now (not a failed step)
            raise
        except RegenError as exc:
            self.session.note(exc)
            if exc.offline:
                self.session.went_offline(exc)
                self.log.step("update", "skipped", reason=failure_line(exc))
            else:
                self.steps.fail("update", exc, refused=isinstance(exc, (TrustError, IntegrityError)))
            return
        if target is None:
            self.steps.ok.add("update")
            self.log.step("update", "ok", generation=installed.number, detail="up to date")
            return
        policy = policy_of(self.cfg, target)
        keep: set[str] = set()
        try:
            the_plan, delta = self._prepare(installed, target, policy, pruner(self.cfg, policy), keep)
        except Interrupted:  # a signal: the run stops now (not a failed step)
            raise
        except RegenError as exc:
            self.session.note(exc)
            if exc.offline:
                self.session.went_offline(exc, confirmed=True)  # (the ref was read: not "could not confirm")
            self.steps.fail("update", exc)
            return
        try:
            res = self.writer.apply(the_plan, target, "update")
        except NoSpace as exc:
            self.steps.fail("update", exc)  # nothing changed: the installed generation stays
            return
        if res.errors:
            self.steps.apply_failed("update", res)
        else:
            self.steps.ok.add("update")
        self.log.step("update", "failed" if res.errors else "done", generation_from=installed.number,
                      generation_to=target.number, planned="delta" if delta is not None else "full",
                      **the_plan.stats(), **res.counts())
        self.writer.installed(target, keep)
        self.steps.updated = True

    def _prepare(self, installed: Target, target: Target, policy: Policy, prune: Callable[[str], bool],
                 keep: set[str]) -> tuple[Plan, ManifestDelta | None]:
        """Fetch the manifests, plan (from the delta when possible), fetch the objects the plan
        needs; `keep` collects the target's file objects (what the cache keeps afterwards)."""
        sizes: dict[str, int] = {}
        big: dict[str, str] = {}  # big files: their installed version seeds the fetch of the new one
        fetch_manifests(self.session, self.manifests, target)
        delta = self._delta(installed, target, policy)
        if delta is not None:  # only what differs from the installed manifest (delta.py)
            owners = Owners.of_root(self.cfg.root)
            the_plan = plan_delta(self.manifests, self.index, delta, policy, prune,
                                  lambda entries: collect(entries, policy, sizes, keep, big), owners.map)
            keep.update(delta.objects)
            self.log.warnings.extend(owners.warnings)
        else:
            with self.manifests.entries(target) as entries:
                the_plan, warnings = update_plan(self.cfg, self.index, entries, policy, sizes, keep, big)
            self.log.warnings.extend(warnings)
        needed = needed_objects(the_plan)
        fetch_objects(self.session, self.cache, target, "update", sizes, big, needed)
        return the_plan, delta

    def _delta(self, installed: Target, target: Target, policy: Policy) -> ManifestDelta | None:
        """The update is planned from the manifests' differing lines (delta.py) when the tree is
        exactly `installed`: this run's repair succeeded and left the index clean for it, under
        the same policy. None: plan in full."""
        if ("repair" not in self.steps.ok or policy != policy_of(self.cfg, installed)
                or self.index.state("clean") != clean_key_of(self.cfg, installed)):
            return None
        return read_delta(self.manifests, installed, target)

