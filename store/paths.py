"""Paths in a tree: which relative paths a manifest may hold, and the tree order (pure).

Tree order sorts by the UTF-8 bytes of the path with ``/`` ranked below every other byte, so a
directory is directly followed by all of its descendants; `sort_key` is that order's one key.
"""

from __future__ import annotations

from .errors import ManifestInvalid

MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255


def sort_key(path: str) -> bytes:
    """Tree order: '/' ranks below every byte, so descendants follow their directory."""
    return path.encode("utf-8", "surrogatepass").replace(b"/", b"\x00")


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
