"""What differs between two trees: `diff` merge-joins two manifests' entries into Changes (pure).

Both streams are in tree order (paths.sort_key), so a diff holds one entry of each side at a
time: two 1,000,000-entry manifests are compared without materialising either.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from .entry import Entry
from .paths import merge_join, sort_key

ChangeKind = Literal["added", "removed", "modified", "meta"]


@dataclass(frozen=True, slots=True)
class Change:
    """One path that differs between two manifests. `modified` = kind or content; `meta` = mode only."""

    kind: ChangeKind
    path: str
    old: Entry | None
    new: Entry | None


@dataclass(slots=True)
class DiffStats:
    added: int = 0
    removed: int = 0
    modified: int = 0
    meta: int = 0
    bytes_added: int = 0
    objects_new: set[str] = field(default_factory=set)

    def add(self, c: Change) -> None:
        setattr(self, c.kind, getattr(self, c.kind) + 1)
        if c.new is not None and c.new.kind == "file" and c.kind in ("added", "modified"):
            self.bytes_added += c.new.size


def diff(old: Iterable[Entry], new: Iterable[Entry]) -> Iterator[Change]:
    """Merge-join two tree-ordered entry streams; memory O(1) in the manifests' size."""
    for a, b in merge_join(old, new, _entry_key, _entry_key):
        if b is None:
            assert a is not None
            yield Change("removed", a.path, a, None)
        elif a is None:
            yield Change("added", b.path, None, b)
        elif not a.same_content(b):
            yield Change("modified", a.path, a, b)
        elif not a.same_meta(b):
            yield Change("meta", a.path, a, b)


def _entry_key(e: Entry) -> bytes:
    return sort_key(e.path)


__all__ = ["Change", "ChangeKind", "DiffStats", "diff"]
