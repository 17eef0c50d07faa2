"""fsck of the packed layout: the index list, every index it names, every pack they name (I/O).

Each pack is read once, whole: its bytes must hash to its name, and every blob an index places
in it must decode to its id. Problems are returned as findings (never raised), like check.py's.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import layout
from .errors import NotFound, StoreError
from .findings import Finding
from .objects import ObjectId, object_id
from .packindex import Location
from .packs import read_index, read_list

if TYPE_CHECKING:
    from .objectstore import ObjectStore


@dataclass(slots=True)
class PackCheck:
    """What the packed layout holds: the ids of blobs an index lists, and the problems found."""

    blobs: set[ObjectId] = field(default_factory=set)
    findings: list[Finding] = field(default_factory=list)
    packs: int = 0


def check_packs(store: ObjectStore, *, read_data: bool, finding: Callable[..., Finding],
                progress: Callable[[int, int], None] | None = None) -> PackCheck:
    """Check the index list, the indexes and (with `read_data`) every pack and blob."""
    out = PackCheck()
    try:
        names = read_list(store)
    except StoreError as exc:
        out.findings.append(finding("index", layout.INDEX_LIST, exc.message))
        return out
    by_pack: dict[str, list[Location]] = {}
    for name in names:
        try:
            index = read_index(store, name)
        except StoreError as exc:
            out.findings.append(finding("index", layout.index_path(name), exc.message))
            continue
        for loc in index:
            out.blobs.add(loc.oid)
            by_pack.setdefault(loc.pack, []).append(loc)
    out.packs = len(by_pack)
    listed = set(by_pack)
    if store.backend.capabilities.listable:
        for p in store.backend.list(layout.PACKS):
            pid = layout.parse_hashed_path(p, layout.PACKS)
            if pid is not None and pid not in listed:
                out.findings.append(finding("stray", p, "pack no index lists (gc removes it after the grace period)",
                                            "warning"))
    for pid, locs in sorted(by_pack.items()):
        out.findings.extend(_check_pack(store, pid, locs, read_data, finding))
        if progress:
            progress(1, 0)
    return out


def _check_pack(store: ObjectStore, pid: str, locs: list[Location], read_data: bool,
                finding: Callable[..., Finding]) -> list[Finding]:
    path = layout.pack_path(pid)
    try:
        if not read_data:
            size = store.backend.stat(path).size
            return [finding("corrupt", loc.oid, f"lies past the end of pack {path}")
                    for loc in locs if loc.offset + loc.length > size]
        data = store.backend.read(path)
    except NotFound:
        return [finding("missing", path, f"pack named by an index is missing ({len(locs)} objects in it)")]
    except StoreError as exc:
        return [finding("corrupt", path, exc.message)]
    found = []
    if object_id(data) != pid:
        found.append(finding("corrupt", path, "pack bytes do not hash to its name"))
    for loc in locs:
        blob = data[loc.offset: loc.offset + loc.length]
        try:
            if len(blob) != loc.length:
                found.append(finding("corrupt", loc.oid, f"lies past the end of pack {path}"))
                continue
            store.decode_into(loc.oid, io.BytesIO(blob), _Discard(), where=f"{store.url}/{path}@{loc.offset}")
        except StoreError as exc:
            found.append(finding("corrupt", loc.oid, exc.message))
    return found


class _Discard:
    def write(self, data: bytes) -> int:
        return len(data)


__all__ = ["PackCheck", "check_packs"]
