"""state.json: what must survive a damaged index -- rollback protection above all (local I/O).

A copy of the index's small state (store id, installed generation, highest numbers accepted),
written atomically whenever it changes. When the index is lost or set aside, a new one is
seeded from it: the installed generation, the highest numbers, and one row per path of the
installed manifests without stat facts, so the next scan hashes everything (a full verify)
and still reports drift against the last known state.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

from regen.daemon.run.target import Manifests, Target
from regen.daemon.tree.index import Index, IndexRow
from regen.store import Entry, RegenError, save_atomic

MIRROR_NAME = "state.json"


def save_mirror(state_dir: str, index: Index) -> None:
    data = {"store": index.state("store"), "installed": index.state("installed"), "highest": index.all_highest()}
    save_atomic(os.path.join(state_dir, MIRROR_NAME), json.dumps(data, sort_keys=True, indent=1).encode())


def load_mirror(state_dir: str) -> dict[str, Any]:
    try:
        with open(os.path.join(state_dir, MIRROR_NAME)) as fp:
            data = json.load(fp)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def seed_from_mirror(index: Index, mirror: dict[str, Any], manifests: Manifests) -> None:
    """A new index from state.json: installed generation, highest numbers, and rows from the
    installed manifests with no stat facts (every path is then hashed: a full verify)."""
    target = Target.from_dict(mirror["installed"])
    with index.atomic():
        if mirror.get("store"):
            index.set_state("store", mirror["store"])
        index.set_state("installed", mirror["installed"])
        for scope, names in (mirror.get("highest") or {}).items():
            for name, number in names.items():
                index.raise_highest(scope, name, int(number))
        try:
            with manifests.entries(target) as entries:
                index.put_rows(_seed_rows(entries))
        except RegenError:
            index.clear_entries()  # no manifest: the rows come from the next full scan


def _seed_rows(entries: Iterator[Entry]) -> Iterator[IndexRow]:
    for e in entries:
        yield IndexRow(e.path, e.kind, e.mode, e.size, None, None, None, e.xxh, e.oid, e.target, True, 0)


__all__ = ["MIRROR_NAME", "load_mirror", "save_mirror", "seed_from_mirror"]
