"""Reading this host's sealed overlay (FORMAT.md §8.1): its seal table, then every sealed object (I/O).

Why here, once: the store's reads are the one door for content (Store.get_to), so once the seal
table is registered there every path that reads an object -- manifests, the batch fetch of an
install or update, a repair's cache miss, a base path read during apply, a dry run -- opens the
box with this host's key and verifies the plaintext against the id the signed overlay (or its
verified manifest) gives. The table is kept beside the manifests (state_dir/manifests/<id>,
checked against its id on every use), so a repair reads no more of the store than before.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import blake3

from regen.daemon.run.hostid import host_key, host_key_path
from regen.daemon.run.target import MANIFEST_DIR
from regen.store import RecordMismatch, parse_seal_table, save_atomic

if TYPE_CHECKING:
    from regen.daemon.run.target import Target
    from regen.store import Store

MAX_TABLE_BYTES = 1 << 20  # 4096 ids (MAX_SEALED_OBJECTS) take about 550 KB


def unseal_overlay(store: Store, state_dir: str, host: str, target: Target) -> None:
    """Make `store` read `target`'s sealed overlay objects with this host's key (nothing if not sealed)."""
    ref = target.overlay_sealed
    if ref is None:
        return
    key = host_key(state_dir, create=False)
    where = f"hosts/{host}/overlay.json"
    if key is None or key.public.keyid != ref.key:
        have = f"this host's key is {key.public.keyid}" if key else f"this host has no key ({host_key_path(state_dir)})"
        raise RecordMismatch(f"{where} is sealed to host key {ref.key}, but {have}", path=where,
                             hint=f"enroll this host's key ('regend host-key', then 'regen host enroll {host} FILE') "
                                  f"and set its overlay again")
    store.add_sealed({ref.table: ref.box}, key)
    path = os.path.join(state_dir, MANIFEST_DIR, ref.table)
    data = _local(path, ref.table)
    if data is None:
        data = store.get(ref.table, max_bytes=MAX_TABLE_BYTES)  # the box opened and verified
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        save_atomic(path, data)
    store.add_sealed(parse_seal_table(data, f"the seal table {ref.table} of {where}"), key)


def _local(path: str, oid: str) -> bytes | None:
    """The kept table if it still hashes to its id (a damaged copy is dropped and read again)."""
    try:
        with open(path, "rb") as fp:
            data = fp.read(MAX_TABLE_BYTES + 1)
    except FileNotFoundError:
        return None
    if blake3.blake3(data).hexdigest() == oid:
        return data
    os.unlink(path)
    return None


__all__ = ["unseal_overlay"]
