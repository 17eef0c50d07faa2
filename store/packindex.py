"""Pack indexes and the index list: where each packed blob lies (pure).

A pack file is a run of stored objects (tag byte + body, exactly as a loose object) laid end to
end; it has no header, and its name is the BLAKE3 of its bytes. A pack index maps each blob's
object id to (pack, offset, length); it is content-addressed (named by the BLAKE3 of its decoded
bytes) and never changes. `index/current.json`, the index list, names the indexes in use: the
only mutable file of the packed layout, replaced atomically by the writer holding the lock.

Decoded index bytes (FORMAT.md §3.1), all integers big-endian:

    {"blobs":M,"format":1,"packs":N,"type":"regen-pack-index"}\\n   header line (canonical JSON)
    N x 32 bytes                                                   pack ids (raw BLAKE3)
    M x 48 bytes: id (32) | pack number u32 | offset u64 | length u32   sorted by id, no duplicates

The list and indexes are locators, not trust: a blob read through them is verified against the
id the signed manifest gave, so a lying index can make a read fail, never deliver wrong bytes.
"""

from __future__ import annotations

import json
import struct
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import pairwise

from .errors import ObjectCorrupt
from .objects import ObjectId, is_object_id

INDEX_TYPE = "regen-pack-index"
LIST_TYPE = "regen-pack-indexes"
_REC = struct.Struct(">32sIQI")
REC_SIZE = _REC.size  # 48
MAX_BLOB = 64 << 20  # a stored blob is at most a 4 MiB inline file or a chunk, compressed or not: far below
MAX_INDEX_BYTES = 256 << 20  # 5 M blobs
MAX_LIST_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class Location:
    """Where one blob lies: `length` stored bytes at `offset` of pack `pack` (a pack id)."""

    oid: ObjectId
    pack: str
    offset: int
    length: int


def encode_index(packs: list[str], blobs: Iterable[tuple[ObjectId, int, int, int]]) -> bytes:
    """Decoded bytes of an index over `packs`; `blobs` are (id, pack number, offset, length), any order."""
    rows = sorted(blobs)
    for a, b in pairwise(rows):
        if a[0] == b[0]:
            raise ValueError(f"blob {a[0]} twice in one index")
    header = json.dumps({"blobs": len(rows), "format": 1, "packs": len(packs), "type": INDEX_TYPE},
                        sort_keys=True, separators=(",", ":")).encode() + b"\n"
    body = b"".join(bytes.fromhex(p) for p in packs)
    return header + body + b"".join(_REC.pack(bytes.fromhex(o), n, off, ln) for o, n, off, ln in rows)


class PackIndex:
    """One decoded, validated index: lookups by bisection over its sorted records (no per-blob objects)."""

    def __init__(self, name: str, data: bytes) -> None:
        self.name = name
        nl = data.find(b"\n", 0, 256)
        bad = f"pack index {name}"
        try:
            head = json.loads(data[:nl]) if nl > 0 else None
        except ValueError:
            head = None
        if not isinstance(head, dict) or head.get("type") != INDEX_TYPE or head.get("format") != 1 \
                or not all(isinstance(head.get(k), int) and not isinstance(head.get(k), bool) and head[k] >= 0
                           for k in ("packs", "blobs")):
            raise ObjectCorrupt(f"{bad} has no valid header", oid=name)
        npacks, nblobs = head["packs"], head["blobs"]
        start = nl + 1 + 32 * npacks
        if len(data) != start + REC_SIZE * nblobs:
            raise ObjectCorrupt(f"{bad} is {len(data)} bytes, its header says {start + REC_SIZE * nblobs}", oid=name)
        self.packs = [data[nl + 1 + 32 * i: nl + 33 + 32 * i].hex() for i in range(npacks)]
        self._recs = memoryview(data)[start:]
        self._keys = _Keys(self._recs)
        prev = b""
        for oid, pack, offset, length in _REC.iter_unpack(self._recs):
            if oid <= prev or pack >= npacks or not 1 <= length <= MAX_BLOB or offset > 1 << 48:
                raise ObjectCorrupt(f"{bad} has a bad record for {oid.hex()} (unsorted, or pack/offset/length "
                                    "out of range)", oid=name)
            prev = oid
        self.size = nblobs

    def find(self, oid: ObjectId) -> Location | None:
        key = bytes.fromhex(oid)
        i = bisect_left(self._keys, key)
        if i < self.size and self._keys[i] == key:
            _, pack, offset, length = _REC.unpack_from(self._recs, i * REC_SIZE)
            return Location(oid, self.packs[pack], offset, length)
        return None

    def __iter__(self) -> Iterator[Location]:
        for oid, pack, offset, length in _REC.iter_unpack(self._recs):
            yield Location(oid.hex(), self.packs[pack], offset, length)


class _Keys:
    """The ids of an index's records as a sequence, for bisect."""

    def __init__(self, recs: memoryview) -> None:
        self._recs = recs

    def __len__(self) -> int:
        return len(self._recs) // REC_SIZE

    def __getitem__(self, i: int) -> bytes:
        return bytes(self._recs[i * REC_SIZE: i * REC_SIZE + 32])


def encode_list(indexes: Iterable[str]) -> bytes:
    return json.dumps({"format": 1, "indexes": sorted(set(indexes)), "type": LIST_TYPE},
                      sort_keys=True, separators=(",", ":")).encode() + b"\n"


def decode_list(data: bytes, where: str) -> list[str]:
    """The index names of an index list; ObjectCorrupt if it is not one."""
    try:
        d = json.loads(data)
    except ValueError:
        d = None
    if not isinstance(d, dict) or d.get("type") != LIST_TYPE or d.get("format") != 1 \
            or not isinstance(d.get("indexes"), list) or not all(is_object_id(i) for i in d["indexes"]):
        raise ObjectCorrupt(f"index list {where} is not a valid regen-pack-indexes record", path=where)
    return list(d["indexes"])


@dataclass(frozen=True, slots=True)
class Span:
    """One ranged read of a pack: bytes [start, end) holding `blobs` (sorted by offset)."""

    pack: str
    start: int
    end: int
    blobs: tuple[Location, ...]


def coalesce(locations: Iterable[Location], *, gap: int = 64 << 10, max_span: int = 4 << 20) -> list[Span]:
    """Group blobs into ranged reads: neighbours in one pack share a read when the bytes between them
    are at most `gap` and the read stays within `max_span` (a blob larger than that is a read of its own)."""
    by_pack: dict[str, list[Location]] = {}
    for loc in locations:
        by_pack.setdefault(loc.pack, []).append(loc)
    spans: list[Span] = []
    for pack in sorted(by_pack):
        run: list[Location] = []
        start = end = 0
        for loc in sorted(by_pack[pack], key=lambda x: x.offset):
            if run and (loc.offset - end > gap or loc.offset + loc.length - start > max_span):
                spans.append(Span(pack, start, end, tuple(run)))
                run = []
            if not run:
                start = loc.offset
            run.append(loc)
            end = max(end if len(run) > 1 else 0, loc.offset + loc.length)
        if run:
            spans.append(Span(pack, start, end, tuple(run)))
    return spans


__all__ = ["Location", "PackIndex", "Span", "coalesce", "decode_list", "encode_index", "encode_list"]
