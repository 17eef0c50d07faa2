"""Format 2 of manifests: owners, mtimes, extended attributes, hard-link groups (pure).

The fields FORMAT.md §4.7 adds to an entry, their validation, their canonical JSON and the
one rule across entries they bring (a hard-link group's members equal their first member).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from json.encoder import encode_basestring as _q
from typing import TYPE_CHECKING

from .entry import Xattrs
from .errors import ManifestInvalid
from .paths import check_path, sort_key

if TYPE_CHECKING:
    from .entry import Entry

MAX_ID = (1 << 32) - 1          # uid, gid, device major/minor: 32-bit unsigned
MAX_XATTR_BYTES = 8192          # names + values of one entry's extended attributes
MTIME_RANGE = (-(1 << 63), (1 << 63) - 1)
NAME_RE = re.compile(r"^[^\x00-\x1f:/\x7f]{1,256}$")   # user and group names


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _utf8_len_ok(text: str, limit: int) -> bool:
    try:
        return len(text.encode("utf-8")) <= limit
    except UnicodeEncodeError:
        return False


def check_meta(e: Entry) -> None:
    """The format-2 fields of `e` (FORMAT.md §4.7)."""
    for what, v in (("uid", e.uid), ("gid", e.gid)):
        if not _is_int(v) or not 0 <= v <= MAX_ID:  # type: ignore[operator]
            raise ManifestInvalid(f"entry {e.path!r} has invalid {what} {v!r}", path=e.path)
    for what, name in (("user", e.user), ("group", e.group)):
        if name is not None and not (isinstance(name, str) and NAME_RE.match(name)):
            raise ManifestInvalid(f"entry {e.path!r} has invalid {what} name {name!r}", path=e.path)
    if not _is_int(e.mtime) or not MTIME_RANGE[0] <= e.mtime <= MTIME_RANGE[1]:  # type: ignore[operator]
        raise ManifestInvalid(f"entry {e.path!r} has invalid mtime {e.mtime!r}", path=e.path)
    check_xattrs(e.path, e.xattrs)
    if e.link is not None:
        if e.kind != "file":
            raise ManifestInvalid(f"{e.kind} entry {e.path!r} is in a hard-link group (only files are)", path=e.path)
        check_path(e.link)
        if sort_key(e.link) > sort_key(e.path):
            raise ManifestInvalid(f"entry {e.path!r} links to {e.link!r}, which is not the group's first member",
                                  path=e.path)
    if not isinstance(e.sparse, bool) or (e.sparse and e.kind != "file"):
        raise ManifestInvalid(f"entry {e.path!r} has an invalid sparse flag", path=e.path)


def check_xattrs(path: str, xattrs: object) -> None:
    """Sorted, unique, valid names (UTF-8, a namespace prefix), bytes values, bounded in total."""
    if not isinstance(xattrs, tuple):
        raise ManifestInvalid(f"entry {path!r} has invalid extended attributes", path=path)
    total = 0
    prev = ""
    for item in xattrs:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)
                and isinstance(item[1], bytes)):
            raise ManifestInvalid(f"entry {path!r} has an invalid extended attribute {item!r}", path=path)
        name, value = item
        if not (0 < len(name) <= 255 and "." in name[1:] and "\x00" not in name and _utf8_len_ok(name, 255)):
            raise ManifestInvalid(f"entry {path!r} has an invalid extended attribute name {name!r}", path=path)
        if name <= prev:
            raise ManifestInvalid(f"entry {path!r} has extended attributes out of order or twice ({name!r})",
                                  path=path)
        prev = name
        total += len(name.encode("utf-8")) + len(value)
    if total > MAX_XATTR_BYTES:
        raise ManifestInvalid(f"entry {path!r} has {total} bytes of extended attributes (at most "
                              f"{MAX_XATTR_BYTES})", path=path)


def encode_xattrs(xattrs: Xattrs) -> str:
    """The canonical JSON object of extended attributes: names sorted, values standard base64."""
    return "{" + ",".join(f"{_q(n)}:{_q(base64.b64encode(v).decode('ascii'))}" for n, v in xattrs) + "}"


def decode_xattrs(text: str | None) -> Xattrs:
    """The inverse of encode_xattrs (None or "{}": no attributes)."""
    if not text or text == "{}":
        return ()
    return xattrs_of(json.loads(text), "", False)


def xattrs_of(a: object, path: object, strict: bool) -> Xattrs:
    if a is None:
        return ()
    if not isinstance(a, dict) or (strict and not a):
        raise ManifestInvalid(f"entry {path!r} has invalid extended attributes {a!r}", path=path)
    out = []
    for name, value in a.items():
        try:
            if not isinstance(value, str):
                raise ValueError
            raw = base64.b64decode(value.encode("ascii"), validate=True)
        except (ValueError, binascii.Error, UnicodeEncodeError):
            raise ManifestInvalid(f"entry {path!r} has extended attribute {name!r} that is not base64",
                                  path=path) from None
        if strict and base64.b64encode(raw).decode("ascii") != value:
            raise ManifestInvalid(f"entry {path!r} has extended attribute {name!r} not in canonical base64",
                                  path=path)
        out.append((name, raw))
    if strict and [n for n, _ in out] != sorted(n for n, _ in out):
        raise ManifestInvalid(f"entry {path!r} has extended attributes out of order", path=path)
    return tuple(sorted(out))


def encode_meta(e: Entry, kind_code: str) -> bytes:
    """A format-2 line: (key, JSON value) pairs sorted by key (code point order: upper case first)."""
    parts: list[tuple[str, str]] = [("k", _q(kind_code)), ("m", str(e.mode)), ("p", _q(e.path)),
                                    ("u", str(e.uid)), ("g", str(e.gid)), ("T", str(e.mtime))]
    if e.kind == "file":
        parts += [("o", _q(e.oid or "")), ("s", str(e.size)), ("x", _q(e.xxh or ""))]
        if e.link is not None:
            parts.append(("h", _q(e.link)))
        if e.sparse:
            parts.append(("z", "true"))
    elif e.kind == "symlink":
        parts.append(("t", _q(e.target or "")))
    elif e.rdev is not None:
        parts.append(("r", f"[{e.rdev[0]},{e.rdev[1]}]"))
    if e.user is not None:
        parts.append(("U", _q(e.user)))
    if e.group is not None:
        parts.append(("G", _q(e.group)))
    if e.xattrs:
        parts.append(("a", encode_xattrs(e.xattrs)))
    parts.sort()
    return ("{" + ",".join(f'"{k}":{v}' for k, v in parts) + "}\n").encode("utf-8")


class LinkGroups:
    """Hard-link groups across entries: a member names an earlier first member, and has the same
    content and metadata (they are one inode). Memory: one entry per group, not per path."""

    def __init__(self) -> None:
        self._first: dict[str, Entry] = {}

    def check(self, e: Entry) -> None:
        if e.link is None:
            return
        if e.link == e.path:
            self._first[e.path] = e
            return
        first = self._first.get(e.link)
        if first is None:
            raise ManifestInvalid(f"entry {e.path!r} links to {e.link!r}, which is not a group's first member",
                                  path=e.path)
        if not (first.same_content(e) and first.mode == e.mode and first.uid == e.uid and first.gid == e.gid
                and first.user == e.user and first.group == e.group and first.mtime == e.mtime
                and first.xattrs == e.xattrs and first.sparse == e.sparse):
            raise ManifestInvalid(f"entry {e.path!r} is a hard link of {e.link!r} but differs from it", path=e.path)


__all__ = ["LinkGroups", "MAX_ID", "MAX_XATTR_BYTES", "NAME_RE", "Xattrs", "check_meta", "check_xattrs",
           "decode_xattrs", "encode_meta", "encode_xattrs", "xattrs_of"]
