"""What of root a target manages, as the steps of a run see it (pure).

Three answers every step needs, kept in one place so the install, the repair, the update, the
no-change fast path and the tree fingerprint of the report all get the same ones:

    policy_of   the target's policy merged with the local config (extra preserve globs, junk mode)
    pruner      what the walks skip: the state dir when it lies under root, preserved paths, and
                the files (not the directories) of excluded paths: left to the machine
    dir_times   the directories whose mtime is the target's (the others' content is the machine's)
    clean_key   the key the index records when it matches the target (quick.clean_key): the
                fast path and `regend check` trust the index only under the same key
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from typing import TYPE_CHECKING

from regen.store import matches

if TYPE_CHECKING:
    from regen.daemon.config import DaemonConfig
    from regen.daemon.run.target import Target
    from regen.store import Policy

__all__ = ["clean_key_of", "dir_times", "is_dir", "make_pruner", "policy_of", "pruner", "state_rel"]


def policy_of(cfg: DaemonConfig, target: Target) -> Policy:
    return target.policy.merged(cfg.preserve, cfg.junk)


def state_rel(cfg: DaemonConfig) -> str | None:
    """The state dir relative to root when it lies under root (the walks never enter it), else None."""
    root, state = cfg.root, cfg.state_dir
    return os.path.relpath(state, root) if (state + "/").startswith(root.rstrip("/") + "/") else None


def pruner(cfg: DaemonConfig, policy: Policy) -> Callable[[str], bool]:
    """The predicate the walks prune with: True for the state dir, for preserved paths, and for
    what is not a directory below an excluded glob (the snapshot kept the directories, with
    owner and mode, and left their files out: on clients those files belong to the machine)."""
    return make_pruner(cfg.root, state_rel(cfg), policy.preserve, policy.exclude)


def make_pruner(root: str, state: str | None, preserve: tuple[str, ...], exclude: tuple[str, ...]
                ) -> Callable[[str], bool]:
    def prune(path: str) -> bool:
        if path == state or (preserve and matches(path, preserve)):
            return True
        return bool(exclude) and matches(path, exclude) and not is_dir(os.path.join(root, path))
    return prune


def dir_times(policy: Policy) -> Callable[[str], bool]:
    """The scan's `dir_time`: True for a directory whose mtime is the target's, so a change of it
    is `time` drift; the plan restores exactly these (plan.machine_dir, the one rule)."""
    from regen.daemon.tree.plan import machine_dir

    return lambda path: not machine_dir(path, policy)


def is_dir(full: str) -> bool:
    """A directory, not through a symlink. A path that is not there counts as one: the walks only
    ask about what they found, so this is an index row of a directory that vanished (drift)."""
    try:
        return stat.S_ISDIR(os.lstat(full).st_mode)
    except OSError:
        return True


def clean_key_of(cfg: DaemonConfig, target: Target) -> str:
    from regen.daemon.tree.fastpath import clean_key  # lazy, as before the split: quick is imported when a run needs it

    return clean_key(target.as_dict(), policy_of(cfg, target).as_dict(), cfg.root, cfg.state_dir)
