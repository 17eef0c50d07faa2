"""The generation monitor: read the channel's ref (one small read), accept it only if it verifies.

FORMAT.md §6.1 in order: signature by a configured key, well formed, this store and channel,
not below the highest generation ever accepted here (rollback), not expired. The host
overlay (§8) gets the same checks against the highest overlay version accepted. Nothing
else of the store is read here: a client with nothing to do reads exactly the ref.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from regen.daemon.tree.cache import ObjectCache
from regen.store import (
    Generation,
    Overlay,
    PublicKey,
    Store,
    StoreConfig,
    open_store,
    verify_generation,
    verify_overlay,
)
from regen.store.errors import FAILURE_FIX, UNREACHABLE, RegenError

if TYPE_CHECKING:
    from regen.daemon.config import DaemonConfig
    from regen.store import Timestamp

OFFLINE_WARNING = "ran from cache, could not confirm the newest generation"


def failure_line(exc: RegenError, *, confirmed: bool = False) -> str:
    """The one line a run (and `regend check`) says about a store problem: its failure class,
    what happened, and the fix -- so a 401 no longer reads like an outage. `confirmed`: the
    channel's ref was read (the newest generation is known) before the store failed."""
    state = exc.failure or UNREACHABLE
    if state == UNREACHABLE and exc.offline and not confirmed:
        return f"{OFFLINE_WARNING} (store unreachable: {exc.one_line()})"
    return f"store {state}: {exc.one_line()}; {FAILURE_FIX[state]}"


def _open_store(cfg: DaemonConfig, config: StoreConfig | None) -> Store:
    # pack indexes are immutable and named by their hash: kept across runs, an update reads only new ones
    store = open_store(cfg.store, dict(cfg.storage_options), config=config, concurrency=cfg.transfers,
                       index_cache=os.path.join(cfg.state_dir, "packindex"))
    cache = ObjectCache(cfg.state_dir)
    store.local_object = cache.local_path  # chunks of big files reused (uncompressed copies only)
    return store


def read_generation(store: Store, channel: str, trusted: dict[str, PublicKey], *, store_id: str,
                    min_number: int | None, max_bytes: int, min_epoch: int | None = None) -> Generation | None:
    """The channel's current generation, verified; None if the ref does not exist.

    Raises the store's TrustError subclasses (BadSignature, UnknownKey, RecordMismatch,
    RollbackRefused, RecordExpired, RecordInvalid), RecordTooLarge, or StoreError when the
    store cannot be read.
    """
    data = store.read_ref(channel, max_bytes=max_bytes)
    if data is None:
        return None
    return verify_generation(data, trusted, store_id=store_id, channel=channel, min_number=min_number,
                             min_epoch=min_epoch,
                             where=f"refs/{channel}", max_bytes=max_bytes)


def read_stamped_generation(store: Store, channel: str, trusted: dict[str, PublicKey], *, store_id: str,
                            min_number: int | None, min_epoch: int | None, timestamp_seen: int | None,
                            max_bytes: int) -> tuple[Generation | None, Timestamp | None]:
    """`read_generation` plus freeze protection (store/timestamp.py): the ref's timestamp must be
    valid, not replayed and not expired once this channel had one; (generation, its timestamp).

    Still one read: the timestamp travels inside the ref.
    """
    from regen.store import check_timestamp, read_timestamp, utcnow

    data = store.read_ref(channel, max_bytes=max_bytes)
    if data is None:
        return None, None
    where = f"refs/{channel}"
    gen = verify_generation(data, trusted, store_id=store_id, channel=channel, min_number=min_number,
                            min_epoch=min_epoch, where=where, max_bytes=max_bytes)
    ts = read_timestamp(data, trusted, gen, where=where)
    check_timestamp(ts, seen=timestamp_seen, now=utcnow(), where=where)
    return gen, ts


def check_overlay_version(store: Store, ts: Timestamp | None, host: str, overlay: Overlay | None,
                          max_bytes: int) -> None:
    """Refuse an overlay older than the version the signed timestamp lists for this host (a removed
    overlay replayed to a client that never saw the tombstone); one object read, only when the
    overlay is read at all (install, new generation, full verify)."""
    if ts is None or ts.overlays is None:
        return
    from regen.store import RollbackRefused, parse_overlay_versions

    want = parse_overlay_versions(store.get(ts.overlays, max_bytes), f"overlay versions {ts.overlays}").get(host)
    have = overlay.number if overlay is not None else None
    if want is not None and (have is None or have < want):
        raise RollbackRefused(f"hosts/{host}/overlay.json is {'missing' if have is None else f'version {have}'}, but "
                              f"the signed timestamp lists version {want}: a replayed or withheld overlay",
                              path=f"hosts/{host}/overlay.json", number=have, seen=want)


def read_overlay(store: Store, host: str, trusted: dict[str, PublicKey], *, store_id: str,
                 min_number: int | None, max_bytes: int) -> Overlay | None:
    """This host's overlay record, verified; None if the host never had one."""
    data = store.read_overlay(host, max_bytes=max_bytes)
    if data is None:
        return None
    return verify_overlay(data, trusted, store_id=store_id, host=host, min_number=min_number,
                          where=f"hosts/{host}/overlay.json", max_bytes=max_bytes)


__all__ = ["OFFLINE_WARNING", "failure_line", "read_generation", "read_overlay"]
