"""What of root a target manages, as the steps of a run see it (pure).

Three answers every step needs, kept in one place so the install, the repair, the update, the
no-change fast path and the tree fingerprint of the report all get the same ones:

    policy_of   the target's policy merged with the local config (extra preserve globs, junk mode)
    pruner      what the walks skip: the state dir when it lies under root, and preserved paths
    clean_key   the key the index records when it matches the target (quick.clean_key): the
                fast path and `regend check` trust the index only under the same key
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from regen.store import matches

if TYPE_CHECKING:
    from regen.store import Policy

    from .config import DaemonConfig
    from .target import Target

__all__ = ["clean_key_of", "policy_of", "pruner", "state_rel"]


def policy_of(cfg: DaemonConfig, target: Target) -> Policy:
    return target.policy.merged(cfg.preserve, cfg.junk)


def state_rel(cfg: DaemonConfig) -> str | None:
    """The state dir relative to root when it lies under root (the walks never enter it), else None."""
    root, state = cfg.root, cfg.state_dir
    return os.path.relpath(state, root) if (state + "/").startswith(root.rstrip("/") + "/") else None


def pruner(cfg: DaemonConfig, policy: Policy) -> Callable[[str], bool]:
    """The predicate the walks prune with: True for the state dir and for preserved paths."""
    rel = state_rel(cfg)
    preserve = policy.preserve

    def prune(path: str) -> bool:
        return path == rel or bool(preserve and matches(path, preserve))
    return prune


def clean_key_of(cfg: DaemonConfig, target: Target) -> str:
    from .quick import clean_key  # lazy, as before the split: quick is imported when a run needs it

    return clean_key(target.as_dict(), policy_of(cfg, target).as_dict(), cfg.root, cfg.state_dir)
