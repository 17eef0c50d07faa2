"""An update planned from the lines that differ between two manifests (I/O: local files, index).

When this run's repair left the tree exactly the installed generation (the index recorded
clean for it), the full plan -- every entry of the new manifest merged with every row of the
index -- can only find work where the two manifests differ. `regen.store.manifest_delta`
gives those entries (validating the new manifest whole), the index gives the disk at just those
paths (plus the kept unmanaged paths, which any plan keeps or removes), and `plan()` runs on
that: ~1% of the entries of a typical release instead of all. The result is the plan the full
merge gives (tests/daemon/test_delta.py checks that on arbitrary trees and changes).

Planned in full instead (None): overlays on either side, a manifest over DELTA_MAX_BYTES (the
delta holds a 128-bit digest per line of both), a case-insensitive root (a new path may collide with an unchanged
one: only a full read sees every name).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from regen.daemon.run.target import Manifests, Target, fitting
from regen.daemon.tree.apply import observed_from_facts
from regen.daemon.tree.index import Index, path_key
from regen.daemon.tree.plan import Observed, Plan, plan
from regen.store import Entry, ManifestDelta, manifest_delta

DELTA_MAX_BYTES = 64 << 20  # per manifest (~400,000 entries)


def read_delta(manifests: Manifests, installed: Target, target: Target) -> ManifestDelta | None:
    """The delta of the installed manifest to the target's, both verified local copies; None
    when this update must be planned in full."""
    if installed.overlay_manifest or target.overlay_manifest or manifests.folds_case():
        return None
    for oid in (installed.manifest, target.manifest):
        if os.path.getsize(manifests.path(oid)) > DELTA_MAX_BYTES:
            return None
        manifests.verify(oid)
    with open(manifests.path(installed.manifest), "rb") as old, open(manifests.path(target.manifest), "rb") as new:
        return manifest_delta(old, new)


def observed_at(index: Index, delta: ManifestDelta, prune: Callable[[str], bool]) -> list[Observed]:
    """The disk as the index knows it at the paths the delta touches and the unmanaged ones,
    in tree order."""
    paths = {e.path for e in delta.added}
    paths.update(delta.removed)
    facts = {t[0]: t for t in index.observed_facts_at(paths)}
    facts.update((t[0], t) for t in index.observed_facts_at(None))
    return observed_from_facts((facts[p] for p in sorted(facts, key=path_key)), prune)


def plan_delta(manifests: Manifests, index: Index, delta: ManifestDelta, policy: Any, prune: Callable[[str], bool],
               collect: Callable[[Iterator[Entry]], Iterable[Entry]],
               owners: Callable[[Entry], Entry] | None = None) -> Plan:
    """The update's plan from `delta`; `collect` sees the new entries (what to fetch); `owners`
    maps their owners to this client's ids."""
    added: Iterator[Entry] = iter(delta.added)
    if manifests.max_rel is not None:
        added = fitting(added, manifests.max_rel)
    return plan(collect(added), observed_at(index, delta, prune), policy, owners)


__all__ = ["DELTA_MAX_BYTES", "plan_delta", "read_delta"]
