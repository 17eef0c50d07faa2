"""Listing a store's folders in as few requests as the server allows: each scheme says how one
folder is read (schemes/: one paginated LIST on S3, one scandir per folder on SMB, fsspec's ls
elsewhere). A vanished folder is empty; any other error is raised, never mistaken for an empty
folder (fsspec's find() swallows them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .translate import is_missing

Entries = Callable[[str], list[tuple[str, bool]]]  # folder -> (full name, is a folder) of its entries


def subfolders(ls: Entries, top: str) -> list[str]:
    """Sorted names of the direct subfolders of `top`; [] if `top` does not exist."""
    try:
        entries = ls(top)
    except Exception as exc:  # noqa: BLE001 - translated by the caller unless it means "no such folder"
        if is_missing(exc):
            return []
        raise
    return sorted(name.rsplit("/", 1)[-1] for name, is_dir in entries if is_dir)


def walk_files(ls: Entries, top: str) -> list[str]:
    """Full names of every file below folder `top` (temp files included), one `ls` per folder."""
    out: list[str] = []
    stack = [top]
    while stack:
        d = stack.pop()
        try:
            entries = ls(d)
        except Exception as exc:  # noqa: BLE001 - a vanished folder is empty; anything else is raised
            if is_missing(exc):
                continue
            raise
        for name, is_dir in entries:
            (stack if is_dir else out).append(name)
    return out


def fs_ls(fs: Any, d: str) -> list[tuple[str, bool]]:
    """(full name, is a folder) of the entries of folder `d`, by fsspec's ls."""
    return [(e["name"].rstrip("/"), e.get("type") == "directory") for e in fs.ls(d, detail=True)]


__all__ = ["Entries", "fs_ls", "subfolders", "walk_files"]
