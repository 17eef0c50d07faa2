"""Store housekeeping: init, keygen, gc, fsck, unlock (I/O through the Store).

gc follows plan-then-apply (R7): the plan is computed and, unless --dry-run, executed
under the writer lock, so no snapshot can publish between mark and sweep; objects younger
than the grace period are kept in any case (a snapshot uploads before it writes its record).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from regen.store import (
    DEFAULT_PACK_SIZE,
    CheckResult,
    GcPlan,
    HistoryPrunePlan,
    LeaseInfo,
    MigrateResult,
    Store,
    StoreLock,
    break_lock,
    execute_gc,
    fsck,
    generate,
    migrate_to_packs,
    plan_gc,
    prune_history,
    utcnow,
    write_keypair,
)
from regen.store.errors import KeyInvalid, NotFound

from .errors import DamageFound, StoreNotEmpty
from .options import parse_storage_options
from .progress import NoProgress, Progress
from .trust import Trust, verified_ref


@dataclass(frozen=True, slots=True)
class InitResult:
    url: str
    store_id: str
    compression: str
    features: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {"url": self.url, "store_id": self.store_id, "compression": self.compression,
                "features": list(self.features)}


def init_store(url: str | None, storage_options: Sequence[str] | None, compression: str, *,
               packed: bool = False, pack_size: int = DEFAULT_PACK_SIZE) -> InitResult:
    """Create an empty store; refuse a location that holds a store or other folders."""
    store = Store.open(url or "", parse_storage_options(storage_options))
    try:
        store.backend.read("regen.json", max_bytes=65536)
        has_config = True
    except NotFound:
        has_config = False
    if not has_config:
        folders = store.backend.list_dirs("")
        if folders:
            raise StoreNotEmpty(f"{store.url} is not empty (it holds {', '.join(folders[:5])}"
                                f"{', ...' if len(folders) > 5 else ''}) and is not a regen store")
    # StoreExists if it is one
    store = Store.init(store.url, store.backend.options, compression=compression, packed=packed, pack_size=pack_size)
    return InitResult(store.url, store.store_id, store.config.compression, store.config.features)


@dataclass(frozen=True, slots=True)
class KeygenResult:
    secret: str
    public: str
    keyid: str

    def as_dict(self) -> dict[str, object]:
        return {"secret": self.secret, "public": self.public, "keyid": self.keyid}


def keygen(path: str) -> KeygenResult:
    """A new ed25519 key pair: FILE (0600, never overwritten) and FILE.pub."""
    path = os.path.abspath(os.path.expanduser(path))
    parent = os.path.dirname(path)
    try:
        os.makedirs(parent, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise KeyInvalid(f"cannot create the folder {parent} for key file {path}: {exc.strerror}") from None
    key = generate()
    write_keypair(path, key)
    return KeygenResult(path, path + ".pub", key.public.keyid)


@dataclass(frozen=True, slots=True)
class GcResult:
    plan: GcPlan
    dry_run: bool
    keep: int
    grace_seconds: int
    history: HistoryPrunePlan | None = None
    keep_reports_seconds: int | None = None
    max_reports: int | None = None

    def as_dict(self) -> dict[str, object]:
        stats: dict[str, int] = {**self.plan.stats(), **(self.history.stats() if self.history else {})}
        return {"dry_run": self.dry_run, "keep": self.keep, "grace_seconds": self.grace_seconds,
                "keep_reports_seconds": self.keep_reports_seconds, "max_reports": self.max_reports, "stats": stats,
                "history_hosts_over_cap": list(self.history.over_cap) if self.history else [],
                "generations_dropped": [{"channel": c, "number": n} for c, n in self.plan.delete_generations],
                "unverified": [{"path": p, "why": why} for p, why in self.plan.unverified]}


def prune_reports(store: Store, plan: HistoryPrunePlan) -> None:
    """Delete the history entries of `plan` (clients write new ones meanwhile: no conflict)."""
    for path in plan.delete:
        try:
            store.backend.delete(path)
        except NotFound:
            pass


def gc(store: Store, trust: Trust, *, keep: int, grace: timedelta, dry_run: bool, progress: Progress | None = None,
       keep_reports: timedelta | None = None, max_reports: int | None = None) -> GcResult:
    """Old generations and unreferenced objects; with `keep_reports`, report history older than that,
    with `max_reports`, beyond each host's newest that many (each host's last state change is always kept).

    Only records that verify with `trust` count (issue 12: forged records with high numbers must
    not push real ones out of the keep window); a ref that does not verify stops gc before it
    deletes anything (Untrusted), so wrong keys can never make it sweep a published generation."""
    progress = progress or NoProgress()
    with StoreLock(store, "regen gc") as lock:
        for channel in store.channels():
            verified_ref(store, channel, trust)
        plan = plan_gc(store, keep=keep, grace=grace, trusted=trust.keys)
        history = (prune_history(store.all_report_history(), keep=keep_reports, now=utcnow(), max_per_host=max_reports)
                   if keep_reports is not None or max_reports is not None else None)
        if not dry_run and history is not None:
            prune_reports(store, history)
        if not dry_run:
            stats = plan.stats()
            progress.start("deleting", total_items=stats["objects_to_delete"], total_bytes=stats["bytes_to_free"])
            try:
                execute_gc(store, plan, progress=progress.advance, lock=lock)
            finally:
                progress.finish()
    return GcResult(plan, dry_run, keep, int(grace.total_seconds()), history,
                    int(keep_reports.total_seconds()) if keep_reports is not None else None, max_reports)


def migrate(store: Store, *, pack_size: int, progress: Progress | None = None) -> MigrateResult:
    """Convert a store of loose objects to packs, under the writer lock (store/migrate.py: kill-safe order)."""
    progress = progress or NoProgress()
    with StoreLock(store, "regen migrate"):
        progress.start("packing", total_items=None)
        try:
            return migrate_to_packs(store, pack_size=pack_size, progress=progress.advance)
        finally:
            progress.finish()


def check(store: Store, trust: Trust, *, repair: bool, read_data: bool = True,
          progress: Progress | None = None) -> CheckResult:
    """fsck over every object, record, ref and overlay; damage is returned, never raised here.

    Signatures are checked against `trust` (the operator's keys), never the store's keys/."""
    progress = progress or NoProgress()
    _ = store.config
    progress.start("checking", total_items=None)
    try:
        if repair:
            with StoreLock(store, "regen fsck --repair"):
                return fsck(store, trust.keys, read_data=read_data, repair=True, progress=progress.advance)
        return fsck(store, trust.keys, read_data=read_data, repair=False, progress=progress.advance)
    finally:
        progress.finish()


def raise_if_damaged(result: CheckResult) -> None:
    if result.damaged:
        errors = sum(1 for f in result.findings if f.severity == "error")
        raise DamageFound(f"the store is damaged: {errors} problem(s) found")


def unlock(store: Store) -> LeaseInfo | None:
    _ = store.config
    return break_lock(store)
