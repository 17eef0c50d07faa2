"""Taking a target from the store: accept the channel's generation (and overlay), fetch what it needs (I/O).

Why together: acceptance and fetching are the only parts of a run that read the store beyond
its ref, and they share one rule: nothing is applied from the store until it is verified and
local. `accept` checks the ref and the overlay (monitor.read_generation/read_overlay: signature,
store, rollback, expiry) and raises the highest numbers seen in the index, so a rollback is
refused from then on; `fetch_manifests` keeps verified copies of the target's manifests in
state_dir (repairs then work offline); `fetch_objects` fills the object cache, verified, after
a space check. `prepare` does both for an install.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from regen.daemon.errors import ChannelNotFound, FetchFailed
from regen.daemon.run.channel import check_overlay_version, read_overlay, read_stamped_generation
from regen.daemon.run.diskspace import need_cache_space
from regen.daemon.run.scope import policy_of
from regen.daemon.run.sealed import unseal_overlay
from regen.daemon.run.statefile import save_mirror
from regen.daemon.run.target import Target
from regen.daemon.run.trustroot import publisher_trust
from regen.daemon.tree.cache import to_fetch
from regen.daemon.tree.fetch import fetch_missing
from regen.store import (
    CHUNK_ABOVE,
    EMPTY_ID,
    Entry,
    Generation,
    NotFound,
    Overlay,
    PublicKey,
    RegenError,
    StoreNotFound,
    UnknownKey,
    layout,
    matches,
)
from regen.store.errors import DAMAGED, MISCONFIGURED, UNREACHABLE

if TYPE_CHECKING:
    from regen.daemon.config import DaemonConfig
    from regen.daemon.run.session import StoreSession
    from regen.daemon.run.target import Manifests
    from regen.daemon.tree.cache import ObjectCache
    from regen.store import Policy, Store, Timestamp

__all__ = ["accept", "collect", "fetch_manifests", "fetch_objects", "objects_to_fetch", "prepare"]


CLOCK_SLACK = timedelta(days=1)


def clock_behind(created: str, now: datetime | None = None) -> str | None:
    """The skew, worded, when this machine's clock is behind a generation's signed creation time
    (by more than a day): a clock fault the quarantine's retention and the report also suffer."""
    from regen.store import parse_time, utcnow

    try:
        made = parse_time(created, "generation")
    except RegenError:
        return None
    now = now or utcnow()
    if made - now <= CLOCK_SLACK:
        return None
    return (f"the clock may be wrong: it is {(made - now).days} days behind the creation time of the "
            f"channel's generation ({created})")


def accept(session: StoreSession, installed: Target | None, *, overlay_check: bool) -> Target | None:
    """Read and verify the ref (and the overlay when installing, on a new generation, or when
    asked); the new Target, or None when it describes the installed tree."""
    index, cfg = session.index, session.cfg
    assert index is not None
    store = session.open()
    seen_epoch = index.highest("epoch", cfg.channel)

    stamp_seen = index.highest("timestamp", cfg.channel)

    def read(walk: bool) -> tuple[Generation | None, Timestamp | None, dict[str, PublicKey], str]:
        trusted, store_id = publisher_trust(cfg, store, walk=walk, warnings=session.log.warnings)
        gen, stamp = read_stamped_generation(
            store, cfg.channel, trusted, store_id=store_id, min_number=index.highest("channel", cfg.channel),
            min_epoch=seen_epoch, timestamp_seen=stamp_seen, max_bytes=cfg.limits.max_record_bytes)
        return gen, stamp, trusted, store_id

    walked = False
    try:
        gen, stamp, trusted, store_id = read(False)
    except UnknownKey:
        if cfg.trust_root is None:
            raise
        gen, stamp, trusted, store_id, walked = *read(True), True  # signed by a key a newer root may list
    if cfg.trust_root is not None and not walked and gen is not None and (
            installed is None or installed.number != gen.number):
        gen, stamp, trusted, store_id = read(True)  # a new generation: learn revocations before accepting it
    if gen is None:
        if installed is not None:
            raise _missing_ref(cfg, store)
        return None
    skew = clock_behind(gen.created)
    if skew is not None:
        session.log.warnings.append(skew)
    target = Target.of(gen, None)
    overlay: Overlay | None = None
    if installed is None or installed.number != gen.number or overlay_check:
        overlay = read_overlay(store, cfg.host, trusted, store_id=store_id,
                               min_number=index.highest("overlay", cfg.host),
                               max_bytes=cfg.limits.max_record_bytes)
        check_overlay_version(store, stamp, cfg.host, overlay, cfg.limits.max_record_bytes)
        if overlay is None and installed is not None and installed.overlay_number is not None:
            # regen never deletes an overlay file (removal writes a tombstone): keep ours, say so
            session.log.warnings.append(f"hosts/{cfg.host}/overlay.json is missing from the store; keeping "
                                        f"overlay version {installed.overlay_number}")
    if overlay is not None or installed is not None:
        target = Target.of(gen, overlay, kept=installed)  # no overlay read: keep the installed one's
    with index.atomic():
        if gen.epoch > (seen_epoch or 0):  # a signed new numbering: the old highest number no longer counts
            index.raise_highest("epoch", cfg.channel, gen.epoch)
            index.reset_highest("channel", cfg.channel, gen.number)
        else:
            index.raise_highest("channel", cfg.channel, gen.number)
        if overlay is not None:
            index.raise_highest("overlay", cfg.host, overlay.number)
        if stamp is not None:
            index.raise_highest("timestamp", cfg.channel, stamp.version)
    save_mirror(cfg.state_dir, index)
    if installed is not None and target.same_tree(installed) and target.number == installed.number:
        return None
    return target


def prepare(session: StoreSession, manifests: Manifests, cache: ObjectCache, target: Target, phase: str) -> None:
    """Fetch the target's manifests and every object the cache lacks (verified), with a space check."""
    fetch_manifests(session, manifests, target)
    sizes: dict[str, int] = {}
    with manifests.entries(target) as entries:
        for _ in collect(entries, policy_of(session.cfg, target), sizes, set()):
            pass
    fetch_objects(session, cache, target, phase, sizes)


def fetch_manifests(session: StoreSession, manifests: Manifests, target: Target) -> None:
    store = session.open()
    unseal_overlay(store, session.cfg.state_dir, session.cfg.host, target)  # (a sealed overlay: its table)
    for oid in target.manifests():
        manifests.fetch(store, oid, session.cfg.limits.max_manifest_bytes)


def fetch_objects(session: StoreSession, cache: ObjectCache, target: Target, phase: str,
                  sizes: dict[str, int], big: dict[str, str] | None = None, needed: set[str] | None = None) -> None:
    """Fetch (verified) every object of `sizes` the cache lacks, after a space check; `big` (object ->
    path, from `collect`): the files in the tree whose chunks may seed the rebuild of their new version.
    `needed` (an update: the objects its plan writes): the others only while the cache's budget allows."""
    store = session.open()
    missing = objects_to_fetch(cache, sizes, needed)
    need_cache_space(session.cfg, target, phase, sum(sizes[o] for o in missing))
    seeds = {o: os.path.join(session.cfg.root, p) for o, p in big.items()} if big else None
    result = fetch_missing(store, cache, missing, sizes=sizes, stop=session.stop, seeds=seeds,
                           raw=phase == "install")  # (moved into the tree by apply, refill.py)
    session.remember_config()  # (changed if the store was packed since it was cached)
    session.log.bytes_fetched += result.bytes
    session.log.action("objects_fetched", result.fetched)
    if result.errors:
        worst = next((c for c in (MISCONFIGURED, DAMAGED, UNREACHABLE) if c in result.classes), None)
        raise FetchFailed(f"{result.failed} of {len(missing)} objects could not be fetched: {result.summary()}",
                          failure=worst)


def objects_to_fetch(cache: ObjectCache, sizes: dict[str, int], needed: set[str] | None) -> list[str]:
    """The objects of `sizes` a fetch gets: those the cache lacks; for an update (`needed`: what its
    plan writes) the others only while the cache's budget allows (cache.to_fetch)."""
    missing = cache.missing(sizes)
    return missing if needed is None else to_fetch(missing, needed, sizes, cache.room())


def collect(entries: Iterator[Entry], policy: Policy, sizes: dict[str, int], keep: set[str],
            big: dict[str, str] | None = None) -> Iterator[Entry]:
    """Pass `entries` through, noting every file object (`keep`) and those the cache must hold
    (`sizes`: oid -> size; not preserved, not base paths, which come from the store); `big`: the
    path of each file a packed store may hold as chunks (its installed version seeds the fetch)."""
    preserve, base = policy.preserve, policy.base
    for e in entries:
        if e.kind == "file" and e.oid:
            keep.add(e.oid)
            if e.oid != EMPTY_ID and not matches(e.path, preserve) and not (base and matches(e.path, base)):
                sizes[e.oid] = e.size
                if big is not None and e.size > CHUNK_ABOVE:
                    big.setdefault(e.oid, e.path)
        yield e


def _missing_ref(cfg: DaemonConfig, store: Store) -> RegenError:
    """Why the ref of an installed client is missing: no store at the URL any more (its
    regen.json, cached in the index, is read again: only on this error path), or no such channel."""
    try:
        store.backend.read(layout.CONFIG, max_bytes=65536)
    except NotFound:
        return StoreNotFound(f"no regen store at {store.url}", url=store.url)
    except RegenError as exc:
        return exc
    return ChannelNotFound(f"channel {cfg.channel!r} has no ref in {cfg.store} (refs/{cfg.channel} is missing)")
