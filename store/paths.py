"""Paths in a tree: which relative paths a manifest may hold, and the tree order (pure).

Tree order sorts by the UTF-8 bytes of the path with ``/`` ranked below every other byte, so a
directory is directly followed by all of its descendants; `sort_key` is that order's one key.
"""

from __future__ import annotations

from .errors import ManifestInvalid

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


__all__ = ["MAX_NAME_BYTES", "MAX_PATH_BYTES", "check_path", "sort_key"]
