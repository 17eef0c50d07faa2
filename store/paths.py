"""Paths in a tree: which relative paths a manifest may hold, and the tree order (pure).

Tree order sorts by the UTF-8 bytes of the path with ``/`` ranked below every other byte, so a
directory is directly followed by all of its descendants; `sort_key` is that order's one key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from .errors import ManifestInvalid

A = TypeVar("A")
B = TypeVar("B")

MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255


def sort_key(path: str) -> bytes:
    """Tree order, the one key of every merge-join in regen: the path's bytes as the filesystem
    holds them (os.fsencode: a name that is not UTF-8 keeps its raw bytes, so the index, the walk
    and the manifests order it alike) with '/' ranked below every other byte, so descendants follow
    their directory. A lone surrogate that is no escaped byte (only in hostile input) is kept as its
    UTF-8 form rather than refused here."""
    try:
        raw = path.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = path.encode("utf-8", "surrogatepass")
    return raw.replace(b"/", b"\x00")


def check_path(path: object) -> str:
    """Return `path` if it is a safe, normalized, relative POSIX path; raise otherwise."""
    if not isinstance(path, str) or not path:
        raise ManifestInvalid(f"manifest path {path!r} is empty or not a string", path=path)
    if "\x00" in path:
        raise ManifestInvalid(f"manifest path {path!r} contains NUL", path=path)
    try:
        raw = path.encode("utf-8")
    except UnicodeEncodeError:
        raise ManifestInvalid(f"manifest path {path!r} is not valid UTF-8", path=path) from None
    if path.startswith("/"):
        raise ManifestInvalid(f"manifest path {path!r} is absolute", path=path)
    if len(raw) > MAX_PATH_BYTES:
        raise ManifestInvalid(f"manifest path {path[:60]!r}... is longer than {MAX_PATH_BYTES} bytes", path=path)
    parts = path.split("/")
    if "" in parts or "." in parts or ".." in parts:
        bad = next(p for p in parts if p in ("", ".", ".."))
        raise ManifestInvalid(f"manifest path {path!r} is not normalized ({bad or 'empty'!r} component)", path=path)
    if len(raw) > MAX_NAME_BYTES:  # (a shorter path cannot hold a longer name)
        for part in parts:
            if len(part.encode("utf-8")) > MAX_NAME_BYTES:
                raise ManifestInvalid(f"manifest path {path[:60]!r} has a name longer than {MAX_NAME_BYTES} bytes",
                                      path=path)
    return path


def merge_join(left: Iterable[A], right: Iterable[B], left_key: Callable[[A], bytes],
               right_key: Callable[[B], bytes]) -> Iterator[tuple[A | None, B | None]]:
    """Walk two streams in tree order together (each already sorted by `sort_key` of its path):
    (a, None) for a key only on the left, (None, b) only on the right, (a, b) for the same key.
    Memory O(1) in the streams' length: how regen compares manifests, index and trees."""
    a_it, b_it = iter(left), iter(right)
    a, b = next(a_it, None), next(b_it, None)
    ka = left_key(a) if a is not None else b""
    kb = right_key(b) if b is not None else b""
    while a is not None or b is not None:
        if b is None or (a is not None and ka < kb):
            yield a, None
            a = next(a_it, None)
            ka = left_key(a) if a is not None else b""
        elif a is None or kb < ka:
            yield None, b
            b = next(b_it, None)
            kb = right_key(b) if b is not None else b""
        else:
            yield a, b
            a, b = next(a_it, None), next(b_it, None)
            ka = left_key(a) if a is not None else b""
            kb = right_key(b) if b is not None else b""


__all__ = ["MAX_NAME_BYTES", "MAX_PATH_BYTES", "check_path", "merge_join", "sort_key"]
