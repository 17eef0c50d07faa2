"""Which publisher keys this client trusts, and for which store: the pinned root of trust, moved
forward version by version (I/O: the store's root/ and state_dir/trust-root.json).

Without `trust_root` in the configuration this is the plain `trusted_keys` list and the store id
the client cached (as before). With it, the keys are the newest root version's publisher keys
and the store id is the one signed into the root (no trust on first use of regen.json). The
root is walked (root/N+1, N+2, ... each signed by a threshold of the previous version's root
keys) only when the ref names a generation this client has not installed, or is signed by a key
the current root does not list: a run with nothing to do still reads only the ref.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from regen.store import PublicKey, RecordMismatch, RegenError, save_atomic

if TYPE_CHECKING:
    from regen.daemon.config import DaemonConfig
    from regen.store import Root, Store

_STATE = "trust-root.json"


def _saved(cfg: DaemonConfig) -> Root | None:
    from regen.store import Root

    try:
        with open(os.path.join(cfg.state_dir, _STATE)) as fp:
            return Root.from_record(json.load(fp), "state trust-root.json")
    except (OSError, ValueError, RecursionError, RegenError):  # damaged: the pin is walked again
        return None


def _save(cfg: DaemonConfig, root: Root) -> None:
    path = os.path.join(cfg.state_dir, _STATE)
    save_atomic(path, json.dumps(root.to_record(), sort_keys=True).encode(), mode=0o644)


def current_root(cfg: DaemonConfig) -> Root | None:
    """The newest root this client accepted (or its pin, if that is newer); None without trust_root."""
    pin = cfg.trust_root
    if pin is None:
        return None
    saved = _saved(cfg)
    return saved if saved is not None and saved.store_id == pin.store_id and saved.version > pin.version else pin


def publisher_trust(cfg: DaemonConfig, store: Store, *, walk: bool,
                    warnings: list[str] | None = None) -> tuple[dict[str, PublicKey], str]:
    """(trusted publisher keys, store id records must be bound to); walks the root when `walk`."""
    root = current_root(cfg)
    if root is None:
        return cfg.trusted, store.store_id
    if walk:
        from regen.store import update_root

        newer, error = update_root(root, store.read_root)
        if error is not None and warnings is not None:
            warnings.append(f"the root of trust stays at version {newer.version}: {error}")
        if newer.version != root.version:
            _save(cfg, newer)
        root = newer
    if store.store_id != root.store_id:
        raise RecordMismatch(f"{cfg.store} is store {store.store_id}, not store {root.store_id} that the root of "
                             f"trust names; refusing it", path=cfg.store)
    return root.role_keys("publisher"), root.store_id


__all__ = ["current_root", "publisher_trust"]
