"""A manifest as a line patch against its base: an update reads the lines that changed, not the
whole manifest (pure; FORMAT.md §3.3).

A 1% update of a 100,000-file tree changes 1,000 scattered lines of a ~10 MB manifest: any
chunking of the manifest still refetches nearly every chunk, so a client that holds the base
(the channel's previous manifest) reads a patch instead: copy runs of base lines, insert new
ones. The patch is not trusted: the result is accepted only when its BLAKE3 is the manifest id
the signed generation record names (the caller checks), else the client reads the whole manifest.

Encoding: a canonical JSON header line {"base","format","size","target","type"}, then ops, each
one line: ``c <start> <count>`` (copy base lines start..start+count-1) or ``i <count> <bytes>``
followed by exactly <bytes> bytes of new lines. Lines end with b"\\n" (the last may not).
"""

from __future__ import annotations

import json
import re

PATCH_TYPE = "regen-manifest-patch"
PATCH_ABOVE = 64 << 10  # smaller manifests are read whole: a patch saves too little
_OP = re.compile(rb"^(c|i) (\d{1,10}) (\d{1,12})$")


class PatchInvalid(ValueError):
    """A patch that is malformed or does not fit its base (the client reads the manifest whole)."""


def lines_of(data: bytes) -> list[bytes]:
    """`data` cut after each b"\\n" (only there: a manifest line may hold any other byte)."""
    parts = data.split(b"\n")
    out = [p + b"\n" for p in parts[:-1]]
    if parts[-1]:
        out.append(parts[-1])
    return out


def make_patch(base_id: str, base: bytes, target_id: str, new: bytes) -> bytes:
    """The patch turning `base` into `new` (greedy, one pass: runs of lines found in order in the base
    are copied, everything else inserted). Linear in the two sizes."""
    where: dict[bytes, int] = {}
    for k, line in enumerate(lines_of(base)):
        where.setdefault(line, k)
    head = {"base": base_id, "format": 1, "size": len(new), "target": target_id, "type": PATCH_TYPE}
    out = [json.dumps(head, sort_keys=True, separators=(",", ":")).encode(), b"\n"]
    start = count = 0
    pending: list[bytes] = []

    def flush_copy() -> None:
        if count:
            out.append(b"c %d %d\n" % (start, count))

    def flush_insert() -> None:
        if pending:
            body = b"".join(pending)
            out.append(b"i %d %d\n" % (len(pending), len(body)))
            out.append(body)
            pending.clear()

    for line in lines_of(new):
        at = where.get(line)
        if at is None:
            flush_copy()
            count = 0
            pending.append(line)
        elif count and at == start + count:
            count += 1
        else:
            flush_copy()
            flush_insert()
            start, count = at, 1
    flush_copy()
    flush_insert()
    return b"".join(out)


def header(patch: bytes) -> dict[str, object]:
    """The patch's header (base, target, size); PatchInvalid unless well formed."""
    nl = patch.find(b"\n", 0, 512)
    try:
        head = json.loads(patch[:nl]) if nl > 0 else None
    except ValueError:
        head = None
    if not (isinstance(head, dict) and head.get("type") == PATCH_TYPE and head.get("format") == 1
            and isinstance(head.get("base"), str) and isinstance(head.get("target"), str)
            and isinstance(head.get("size"), int)):
        raise PatchInvalid("not a manifest patch")
    return head


def apply_patch(base: bytes, patch: bytes, max_bytes: int | None = None) -> bytes:
    """`base` patched; PatchInvalid when the patch is malformed, reaches past the base, or the
    result differs from its declared size or exceeds `max_bytes`. The caller verifies the id."""
    head = header(patch)
    size = head["size"]
    assert isinstance(size, int)
    if max_bytes is not None and size > max_bytes:
        raise PatchInvalid(f"the patched manifest would be {size} bytes (limit {max_bytes})")
    lines = lines_of(base)
    out: list[bytes] = []
    total = 0
    pos = patch.index(b"\n") + 1
    while pos < len(patch):
        nl = patch.find(b"\n", pos, pos + 32)
        m = _OP.match(patch[pos:nl]) if nl > 0 else None
        if m is None:
            raise PatchInvalid(f"malformed operation at byte {pos}")
        a, b = int(m.group(2)), int(m.group(3))
        pos = nl + 1
        if m.group(1) == b"c":
            if a + b > len(lines) or b == 0:
                raise PatchInvalid(f"copies lines {a}..{a + b} of a base of {len(lines)}")
            part = b"".join(lines[a:a + b])
        else:
            part = patch[pos:pos + b]
            if len(part) != b or len(lines_of(part)) != a:
                raise PatchInvalid(f"inserted lines at byte {pos} do not add up")
            pos += b
        total += len(part)
        if total > size:
            raise PatchInvalid("the patch makes more than its declared size")
        out.append(part)
    if total != size:
        raise PatchInvalid("the patch makes less than its declared size")
    return b"".join(out)


__all__ = ["PATCH_ABOVE", "PATCH_TYPE", "PatchInvalid", "apply_patch", "header", "lines_of", "make_patch"]
