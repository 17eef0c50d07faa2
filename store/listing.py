"""Listing a store's folders, per scheme, in as few requests as the server allows: one paginated
LIST on S3, one scandir per folder on SMB, fsspec's ls elsewhere. A vanished folder is empty; any
other error is raised, never mistaken for an empty folder (fsspec's find() swallows them).
"""

from __future__ import annotations

from typing import Any

from .schemes import _unc
from .translate import is_missing


def files_below(fs: Any, scheme: str, top: str) -> list[str]:
    """Full names of every file below folder `top` (temp files included)."""
    if scheme == "s3":
        return [p for p in fs.find(top) if not p.endswith("/")]  # one paginated LIST
    return _walk_files(fs, scheme, top)


def subfolders(fs: Any, scheme: str, top: str) -> list[str]:
    """Sorted names of the direct subfolders of `top`; [] if `top` does not exist."""
    try:
        entries = ls(fs, scheme, top)
    except Exception as exc:  # noqa: BLE001 - translated by the caller unless it means "no such folder"
        if is_missing(exc):
            return []
        raise
    return sorted(name.rsplit("/", 1)[-1] for name, is_dir in entries if is_dir)


def _walk_files(fs: Any, scheme: str, top: str) -> list[str]:
    out: list[str] = []
    stack = [top]
    while stack:
        d = stack.pop()
        try:
            entries = ls(fs, scheme, d)
        except Exception as exc:  # noqa: BLE001 - a vanished folder is empty; anything else is raised
            if is_missing(exc):
                continue
            raise
        for name, is_dir in entries:
            (stack if is_dir else out).append(name)
    return out


def ls(fs: Any, scheme: str, d: str) -> list[tuple[str, bool]]:
    """(full name, is a folder) of the entries of folder `d`, in one request where possible."""
    if scheme == "smb":
        import smbclient

        # scandir gets names and types in one query; fsspec's ls would stat every entry
        return [(f"{d}/{e.name}", e.is_dir()) for e in smbclient.scandir(_unc(fs, d), port=fs._port)]
    return [(e["name"].rstrip("/"), e.get("type") == "directory") for e in fs.ls(d, detail=True)]


__all__ = ["files_below", "ls", "subfolders"]
