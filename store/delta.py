"""The line-level difference of two canonical manifests (pure).

Canonical form gives every entry exactly one byte string (manifest.py), so an entry of the new
manifest whose line the old one holds too is the same entry: already validated when the old
one was accepted, it needs no decoding into an Entry. An update of a client whose tree is
known to equal the old manifest then plans only the lines that differ (about 1% of a tree
for a typical release) instead of every entry: the rest is the same on disk already.

The new manifest is still validated whole: every differing line as an entry
(`decode_entry`), and every line's place in the tree (order, no duplicates, parents are
directories), so an update accepts exactly what a full read would.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import IO

import xxhash

from .entry import Entry
from .manifest import MAX_LINE_BYTES, TreeOrderChecker, _path_of, check_header, decode_entry, entry_lines
from .manifest_meta import LinkGroups
from .paths import sort_key


@dataclass(frozen=True, slots=True)
class ManifestDelta:
    added: list[Entry]          # entries of the new manifest not in the old, in tree order (validated)
    removed: list[str]          # paths of the old manifest's entries the new one does not have as they were
    objects: dict[str, int]     # every file object of the new manifest: id -> size
    entries: int                # entries of the new manifest


def manifest_delta(old: IO[bytes], new: IO[bytes]) -> ManifestDelta:
    """What changes from manifest `old` (trusted: accepted before) to `new` (validated here), both
    seekable binary files, streamed: memory is two sets of 128-bit line digests, not the
    manifests. Raises ManifestInvalid / UnsupportedFormat on a bad `new`, as iter_entries would."""
    old.seek(0)
    old.readline()
    known = {_digest(line) for line in old}
    new.seek(0)
    fmt = check_header(new.readline(MAX_LINE_BYTES))
    ours: set[int] = set()
    checker = TreeOrderChecker()
    links = LinkGroups()
    added: list[Entry] = []
    objects: dict[str, int] = {}
    entries = 0
    for lineno, line in entry_lines(new):
        entries += 1
        h = _digest(line)
        ours.add(h)
        if h in known and b'"h":' not in line:  # (hard-link members are decoded: their group is checked)
            key, oid, size = _known(line)
            if oid is not None:
                objects[oid] = size
            checker.check_key(key, _kind_code(line) == b"d")
            continue
        e = decode_entry(line, lineno, fmt)
        checker.check(e)
        links.check(e)
        if h in known:
            if e.kind == "file" and e.oid:
                objects[e.oid] = e.size
            continue
        if e.kind == "file" and e.oid:
            objects[e.oid] = e.size
        added.append(e)
    old.seek(0)
    old.readline()
    removed = [_path_of(_known(line)[0]) for line in old if _digest(line) not in ours]
    return ManifestDelta(added, removed, objects, entries)


def _kind_code(line: bytes) -> bytes:
    """The `k` of a canonical line (format 1 starts with it; format 2 sorts G, T, U, a, g, h first)."""
    if line.startswith(b'{"k":"'):
        return line[6:7]
    at = line.index(b'"k":"') + 5
    return line[at:at + 1]


def _digest(line: bytes) -> int:
    """A line's identity in the sets (xxh3-128: a collision would pass a changed line as known;
    at 2^-128 per pair it does not happen)."""
    return xxhash.xxh3_128_intdigest(line)


def _known(line: bytes) -> tuple[bytes, str | None, int]:
    """Sort key, object id and size of an already validated canonical line, read off its bytes:
    ``{"k":"f","m":420,"o":"<id>","p":"<path>","s":3,"x":"<xxh3>"}``, ``{"k":"d","m":493,"p":"<path>"}``,
    ``{"k":"l","m":511,"p":"<path>","t":"<target>"}``. Without a backslash the path is its own
    UTF-8 bytes up to the next quote; with one (escapes), json decodes it."""
    if b"\\" in line:
        d = json.loads(line)
        return sort_key(d["p"]), d.get("o"), d.get("s", 0)
    start = line.index(b'"p":"') + 5
    key = line[start:line.index(b'"', start)].replace(b"/", b"\0")
    if _kind_code(line) != b"f":
        return key, None, 0
    o = line.index(b'"o":"') + 5
    s = line.index(b'"s":', start) + 4
    return key, line[o:o + 64].decode("ascii"), int(line[s:line.index(b",", s)])


__all__ = ["ManifestDelta", "manifest_delta"]
