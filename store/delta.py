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

from .errors import ManifestInvalid
from .manifest import MAX_LINE_BYTES, Entry, TreeOrderChecker, _path_of, check_header, decode_entry, sort_key


@dataclass(frozen=True, slots=True)
class ManifestDelta:
    added: list[Entry]          # entries of the new manifest not in the old, in tree order (validated)
    removed: list[str]          # paths of the old manifest's entries the new one does not have as they were
    objects: dict[str, int]     # every file object of the new manifest: id -> size
    entries: int                # entries of the new manifest


def manifest_delta(old: bytes, new: bytes) -> ManifestDelta:
    """What changes from manifest `old` (trusted: accepted before) to `new` (validated here).
    Raises ManifestInvalid / UnsupportedFormat on a bad `new`, as iter_entries would."""
    old_lines = _lines(old)
    new_lines = _lines(new)
    check_header(new_lines[0] + b"\n")
    known = set(old_lines[1:])
    ours = set(new_lines[1:])
    checker = TreeOrderChecker()
    added: list[Entry] = []
    objects: dict[str, int] = {}
    for lineno, line in enumerate(new_lines[1:], start=2):
        if line in known:
            key, oid, size = _known(line)
            if oid is not None:
                objects[oid] = size
            checker.check_key(key, line[6:7] == b"d")
            continue
        if len(line) >= MAX_LINE_BYTES:
            raise ManifestInvalid(f"manifest line {lineno} is truncated or longer than {MAX_LINE_BYTES} bytes",
                                  line=lineno)
        e = decode_entry(line + b"\n", lineno)
        checker.check(e)
        if e.kind == "file" and e.oid:
            objects[e.oid] = e.size
        added.append(e)
    removed = [_path_of(_known(line)[0]) for line in old_lines[1:] if line not in ours]
    return ManifestDelta(added, removed, objects, len(new_lines) - 1)


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
    if line[6:7] != b"f":
        return key, None, 0
    o = line.index(b'"o":"') + 5
    s = line.index(b'"s":', start) + 4
    return key, line[o:o + 64].decode("ascii"), int(line[s:line.index(b",", s)])


def _lines(data: bytes) -> list[bytes]:
    """The lines without their newline; a last line without one is refused (truncated)."""
    if not data.endswith(b"\n"):
        raise ManifestInvalid("manifest is empty or its last line is truncated")
    return data[:-1].split(b"\n")


__all__ = ["ManifestDelta", "manifest_delta"]
