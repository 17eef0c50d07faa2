"""`regend check` and `regend status`: look, never touch (read-only I/O).

check: what steps 4-6 of a run would do now -- drift, the repair plan, a pending update with
the bytes it would fetch -- without writing anything: not the tree, not the index (opened
read-only, `immutable` when no run is active), not the cache, not the state directory.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from regen.daemon.run import scope
from regen.daemon.run.channel import _open_store, failure_line, read_generation, read_overlay
from regen.daemon.run.lock import check_free
from regen.daemon.run.refill import REFILL
from regen.daemon.run.target import Manifests, Target
from regen.daemon.run.trustroot import publisher_trust
from regen.daemon.tree.index import Index, open_index_readonly
from regen.store import RegenError, StoreConfig, matches, redact

if TYPE_CHECKING:  # the rest is imported where used: a check with nothing to report stays light
    from regen.daemon.config import DaemonConfig
    from regen.store import Store


def _installed(index: Index | None, state_dir: str) -> Target | None:
    d = index.state("installed") if index is not None else None
    if d is None:
        from regen.daemon.run.statefile import load_mirror

        d = load_mirror(state_dir).get("installed")
    return Target.from_dict(d) if d else None


def check(config: DaemonConfig, *, verify: bool = False) -> dict[str, Any]:
    """The dry run. Raises only when it cannot look at all (a run holds the lock)."""
    if os.path.isdir(config.state_dir):
        check_free(config.state_dir)
    index = open_index_readonly(config.state_dir)
    try:
        return _check(config, index, verify)
    finally:
        if index is not None:
            index.close()


def _check(config: DaemonConfig, index: Index | None, verify: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"host": config.host, "channel": config.channel, "warnings": [], "errors": []}
    manifests = Manifests(config.state_dir)
    installed = _installed(index, config.state_dir)
    journal = index.pending_journal() if index is not None else None
    target = Target.from_dict(journal.target) if journal is not None else installed
    out["installed"] = installed.number if installed else None
    if journal is not None:
        out["warnings"].append(f"run {journal.run_id} was interrupted; the next run finishes it")
    if target is not None:
        found = _drift(config, index, manifests, target, verify)
        out["warnings"] += found.pop("warnings", [])
        out["errors"] += found.pop("errors", [])
        out.update(found)
    store = _store(config, index, out)
    out["update"] = _pending(config, index, store, installed, out) if store is not None else None
    out["procedures"] = _would_run(index, out, [p.name for p in target.policy.procedures] if target else [])
    return out


def _drift(config: DaemonConfig, index: Index | None, manifests: Manifests, target: Target,
           verify: bool) -> dict[str, Any]:
    policy = scope.policy_of(config, target)  # the run's own scope (scope.py), not a copy of it
    root, state_rel = config.root, scope.state_rel(config)
    if not os.path.isdir(root):
        return {"errors": [f"root {root} does not exist"]}
    if index is not None:
        fast = _verified(config, index, target, policy, state_rel) if verify else \
            _unchanged(config, index, target, policy, state_rel)
        if fast is not None:
            return fast
    # the repair step's own scan and plan (repair.py), reported instead of applied
    from regen.daemon.run.repair import base_drift, repair_plan, scan_root

    installed = index is not None and index.state("installed") is not None
    result = scan_root(config, policy, index.rows() if index is not None else (), verify or index is None)
    base = base_drift(result, policy) if index is not None and installed and not verify else None
    if index is not None and base is not None:  # as the run: a full verify
        result = scan_root(config, policy, index.rows(), True)
    out: dict[str, Any] = {"drift": result.drift.as_report(), "scan": {"paths": len(result.observed),
                                                                        "hashed": result.hashed}}
    if index is not None and not result.drift.total() and not result.gone and not result.errors \
            and not any(o.temp for o in result.observed):
        repair = _clean_repair(config, index, target, policy, len(result.observed))
        if repair is not None:  # every path confirmed against an index that matches the target
            out["repair"] = repair
            return out
    if base is not None:
        out.setdefault("warnings", []).append(base)
    try:
        p, warnings = repair_plan(config, manifests, target, policy, result.observed)
        out["repair"] = {**p.stats(), "plan": p.summary()}
        if warnings:
            out.setdefault("warnings", []).extend(warnings)
        if target.policy.procedures:
            from regen.daemon.run.firing import changed_paths, fire

            phase = "repair" if installed else "install"
            out["repair"]["procedures"] = [f.as_dict() for f in fire(target.policy.procedures, changed_paths(p), phase)]
    except RegenError as exc:
        out["repair"] = None
        out.setdefault("errors", []).append(f"cannot plan the repair: {exc.one_line()}")
    return out


def _if_clean(config: DaemonConfig, index: Index, target: Target, policy: Any,
              state_rel: str | None) -> tuple[str, Callable[[str], bool] | None] | None:
    """The fast paths' premise: the index is recorded as matching `target` (quick.clean_key).
    Then (the key, what the walk prunes: the state dir, preserved paths); else None."""
    key = scope.clean_key_of(config, target)
    if index.state("clean") != key:
        return None
    prune = None if not policy.preserve and not policy.exclude and state_rel is None else scope.pruner(config, policy)
    return key, prune


def _unchanged(config: DaemonConfig, index: Index, target: Target, policy: Any,
               state_rel: str | None) -> dict[str, Any] | None:
    """The no-change fast path (quick.py): the tree matches the index by stat and the index is
    known to match the target: no hashing, no manifest read. Fastest when the tree still has the
    fingerprint the last run recorded (no index row loaded); else every row is compared, and
    files written just before the last run (racy timestamps) are read and compared with their
    rows, as that run would. None: take the full path."""
    from regen.daemon.tree.fastpath import keep_plan, no_drift, recall, unchanged

    clean = _if_clean(config, index, target, policy, state_rel)
    if clean is None:
        return None
    key, prune = clean
    found = recall(index.state("tree"), key, config.root, prune)
    hashed = 0
    if found is None:
        racy: list[str] = []
        found = unchanged(config.root, index.row_map(), prune, strict_dirs=False, racy=racy)
        if found is not None and racy:
            from regen.daemon.tree.scan import confirm_racy

            confirmed = confirm_racy(config.root, index.get, racy)
            if confirmed is None:
                return None
            hashed = len(racy)
    repair = keep_plan(found, policy.junk) if found is not None else None
    if found is None or repair is None:
        return None
    return {"drift": no_drift(), "scan": {"paths": found.paths, "hashed": hashed}, "repair": repair}


def _verified(config: DaemonConfig, index: Index, target: Target, policy: Any,
              state_rel: str | None) -> dict[str, Any] | None:
    """A verify's fast path (quick.verified): when the index is known to match the target and
    every file still hashes to its row, the answer is "no drift" without building the scan's
    per-path records. None: take the full path (which finds and reports the drift)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from regen.daemon.tree.fastpath import keep_plan, no_drift, verified
    from regen.daemon.tree.hashing import BIG_FILE, HASH_THREADS, Hasher

    clean = _if_clean(config, index, target, policy, state_rel)
    if clean is None:
        return None
    root, prune = config.root, clean[1]
    inline = Hasher()
    local = threading.local()

    def small(rel: str) -> str | None:
        try:
            return inline.file(os.path.join(root, rel))[0]
        except OSError:
            return None

    def large(rel: str) -> str | None:
        hasher = getattr(local, "hasher", None) or Hasher()
        local.hasher = hasher
        try:
            return hasher.file(os.path.join(root, rel))[0]
        except OSError:
            return None

    pool = ThreadPoolExecutor(HASH_THREADS)
    try:
        found = verified(root, index.row_map(content=True), prune, small, BIG_FILE,
                         lambda rel: pool.submit(large, rel))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # (a surprise early: the rest is not read)
    repair = keep_plan(found[0], policy.junk) if found is not None else None
    if found is None or repair is None:
        return None
    return {"drift": no_drift(), "scan": {"paths": found[0].paths, "hashed": found[1]}, "repair": repair}


def _clean_repair(config: DaemonConfig, index: Index, target: Target, policy: Any,
                  paths: int) -> dict[str, Any] | None:
    """After a full scan without drift: the repair plan without reading the manifest, when the
    index is recorded as matching the target (quick.clean_key); else None."""
    from regen.daemon.tree.fastpath import Unchanged, keep_plan

    if index.state("clean") != scope.clean_key_of(config, target):
        return None
    preserve = policy.preserve
    unmanaged = [(p, k) for p, k in index.unmanaged() if not (preserve and matches(p, preserve))]
    return keep_plan(Unchanged(paths, [p for p, _ in unmanaged], [k for _, k in unmanaged]), policy.junk)


def _store(config: DaemonConfig, index: Index | None, out: dict[str, Any]) -> Store | None:
    cached = index.state("store") if index is not None else None
    cfg = StoreConfig(cached["store_id"], cached.get("compression", "zstd")) if cached and \
        cached.get("url") == redact(config.store) else None
    try:
        store = _open_store(config, cfg)
        _ = store.store_id
        return store
    except RegenError as exc:
        out["warnings"].append(failure_line(exc))
        return None


def _pending(config: DaemonConfig, index: Index | None, store: Store, installed: Target | None,
             out: dict[str, Any]) -> dict[str, Any] | None:
    highest = index.highest("channel", config.channel) if index is not None else None
    try:
        trusted, store_id = publisher_trust(config, store, walk=False)
        gen = read_generation(store, config.channel, trusted, store_id=store_id, min_number=highest,
                              min_epoch=index.highest("epoch", config.channel) if index is not None else None,
                              max_bytes=config.limits.max_record_bytes)
        if gen is None:
            return {"available": None}
        overlay = read_overlay(store, config.host, trusted, store_id=store_id,
                               min_number=index.highest("overlay", config.host) if index is not None else None,
                               max_bytes=config.limits.max_record_bytes)
        new = Target.of(gen, overlay, kept=installed)
    except RegenError as exc:
        key = "warnings" if exc.offline else "errors"
        out[key].append(exc.one_line() if key == "errors" else failure_line(exc))
        return None
    if installed is not None and new.same_tree(installed) and new.number == installed.number:
        return {"available": gen.number, "pending": False}
    # (imported only now: a check with nothing pending stays light)
    from regen.daemon.run.accept import objects_to_fetch
    from regen.daemon.run.firing import changed_paths
    from regen.daemon.run.update import needed_objects, update_plan
    from regen.daemon.tree.cache import ObjectCache
    from regen.store import EMPTY_ID, diff

    cache = ObjectCache(config.state_dir, config.cache_max_bytes)
    sizes: dict[str, int] = {}
    changes = {"added": 0, "removed": 0, "modified": 0, "meta": 0}
    new_entries = _entries(store, new, config)
    old_entries = _entries(store, installed, config) if installed is not None else []
    changed: list[str] = []
    for c in diff(old_entries, new_entries):
        changes[c.kind] += 1
        changed.append(c.path)
    out_plan: dict[str, Any] | None = None
    needed: set[str] | None = None
    if index is not None and installed is not None:
        # the update step's own plan (update.py): against the tree the repair leaves, the index's
        the_plan, warnings = update_plan(config, index, new_entries, scope.policy_of(config, new), sizes, set(), {})
        out["warnings"].extend(w for w in warnings if w not in out["warnings"])
        needed = needed_objects(the_plan)
        out_plan = {**the_plan.stats(), "plan": the_plan.summary()}
        changed = changed_paths(the_plan)  # (what the update's apply fires procedures with)
    else:  # an install: every file object of the target
        sizes = {e.oid: e.size for e in new_entries if e.kind == "file" and e.oid and e.oid != EMPTY_ID}
    missing = objects_to_fetch(cache, sizes, needed)  # (what the update's fetch_objects fetches)
    if installed is not None and index is not None and index.state(REFILL):
        # the run first puts back from the tree the objects the install moved there (refill.py)
        held = {e.oid for e in old_entries if e.kind == "file" and e.oid}
        missing = [o for o in missing if o not in held or (needed is not None and o in needed)]
    return {"available": gen.number, "pending": True, "from": installed.number if installed else None,
            "to": gen.number, "objects_to_fetch": len(missing), "bytes_to_fetch": sum(sizes[o] for o in missing),
            "changes": changes, "plan": out_plan,
            "procedures": _fires(gen.policy.procedures, changed, "update" if installed else "install")}


def _fires(procedures: Any, changed: list[str], phase: str) -> list[dict[str, Any]]:
    from regen.daemon.run.firing import fire

    return [f.as_dict() for f in fire(procedures, changed, phase)] if procedures else []


def _would_run(index: Index | None, out: dict[str, Any], order: list[str]) -> list[dict[str, Any]]:
    """What a run would run now, and why: procedures a killed run left, then those the repair's and
    the update's changes fire (each once, "before" ones first), with the paths that fire them."""
    left_by_run = index.state("procedures") if index is not None else None  # (procedures.STATE)
    parts = [p for p in (out.get("repair"), out.get("update")) if isinstance(p, dict) and p.get("procedures")]
    if not left_by_run and not parts:
        return []  # (the no-change check imports nothing more)
    from regen.daemon.run.firing import Fired, Firing

    firing = Firing.from_dict(left_by_run)
    left = {f.name for f in firing.pending()}
    for part in parts:
        fired = tuple(Fired.from_dict(d) for d in part["procedures"])
        firing = firing.add(fired, order)  # (the installed policy's order; new names last)
    return [{**f.as_dict(), "why": "left by an interrupted run" if f.name in left else "changed paths"}
            for f in firing.pending()]


def _entries(store: Store, target: Target, config: DaemonConfig) -> list[Any]:
    """A target's entries: from the local copies when present, else read from the store into memory."""
    from regen.daemon.run.sealed import unseal_overlay
    from regen.daemon.run.target import merge_overlay

    lists = []
    local = Manifests(config.state_dir)
    if any(not local.has(oid) for oid in target.manifests()):
        unseal_overlay(store, config.state_dir, config.host, target)
    for oid in target.manifests():
        if local.has(oid):
            lists.append(local.read(oid))
        else:
            lists.append(store.read_manifest(oid, max_bytes=config.limits.max_manifest_bytes))
    return lists[0] if len(lists) == 1 else list(merge_overlay(lists[0], lists[1]))


def _host_public(state_dir: str) -> str | None:
    """The host's public key as `regend host-key` prints it; None before the first run made it."""
    from regen.daemon.run.hostid import host_key

    try:
        key = host_key(state_dir, create=False)
    except RegenError:
        return None
    return None if key is None else key.public.text().strip()


def status(config: DaemonConfig) -> dict[str, Any]:
    from regen.daemon.run.reporting import last_report
    from regen.daemon.tree.quarantine import Quarantine

    index = open_index_readonly(config.state_dir)
    try:
        installed = _installed(index, config.state_dir)
        report = last_report(config.state_dir)
        q = Quarantine(config.state_dir)
        runs = q.listing()
        journal = index.pending_journal() if index is not None else None
        return {
            "host": config.host,
            "channel": config.channel,
            "installed": installed.number if installed else None,
            "installed_manifest": installed.manifest if installed else None,
            "overlay": installed.overlay_number if installed else None,
            "last_run": None if report is None else {"run_id": report.run_id, "finished": report.finished,
                                                      "outcome": report.outcome, "exit_code": report.exit_code,
                                                      "store_state": report.store_state,
                                                      "store_error": report.store_error,
                                                      "errors": list(report.errors)[:5],
                                                      "warnings": list(report.warnings)[:5]},
            "outbox": index.outbox_size() if index is not None else 0,
            "quarantine": {"runs": len(runs), "items": sum(r.items for r in runs), "bytes": sum(r.bytes for r in runs)},
            "interrupted_run": journal.run_id if journal is not None else None,
            "failures": {s: {"count": c, "message": m} for s, (_sig, c, m) in
                         (index.failures().items() if index is not None else [])},
            "indexed_paths": index.count() if index is not None else 0,
            "host_key": _host_public(config.state_dir),
        }
    finally:
        if index is not None:
            index.close()


__all__ = ["check", "status"]
