"""The two shapes of an atomic write that the schemes share (each scheme picks one, schemes/):
a single whole-object PUT (s3, memory), or a temp file next to the target given its final name by
a rename the scheme provides (file, smb, sftp). No reader ever sees a partial file, and an
exclusive create never overwrites (restic's Properties.HasAtomicReplace, one answer per scheme).

The functions work on the fsspec filesystem the backend hands them, inside its retry loop.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from typing import IO, Any

from .layout import TEMP_PREFIX
from .translate import is_missing


def put_whole(fs: Any, full: str, fill: Callable[[IO[bytes]], object]) -> None:
    """Write `full` in one request: atomic where one PUT is (s3, memory)."""
    with fs.open(full, "wb") as fp:
        fill(fp)


def via_temp(fs: Any, full: str, fill: Callable[[IO[bytes]], object], rename: Callable[[str, str], None], *,
             durable: bool = False) -> None:
    """Write what `fill` writes to a temp file next to `full`, then `rename` it to `full`; the temp
    file is removed if anything fails. `durable`: fsync the temp file before the rename (local files)."""
    tmp = write_temp(fs, full, fill, durable=durable)
    try:
        rename(tmp, full)
    except BaseException:
        discard(fs, tmp)
        raise


def write_temp(fs: Any, full: str, fill: Callable[[IO[bytes]], object], *, durable: bool = False) -> str:
    """Write a new temp file next to `full` (creating the folders on first need); return its name."""
    parent = full.rsplit("/", 1)[0]
    tmp = f"{parent}/{TEMP_PREFIX}{uuid.uuid4().hex}"
    for attempt in (0, 1):
        try:
            with fs.open(tmp, "wb") as fp:
                fill(fp)
                if durable:
                    fp.flush()
                    os.fsync(fp.fileno())
            return tmp
        except BaseException as exc:
            if attempt or not is_missing(exc):
                discard(fs, tmp)
                raise
        fs.makedirs(parent, exist_ok=True)  # folders exist after the first write: one try saved
    raise AssertionError("unreachable")


def discard(fs: Any, tmp: str) -> None:
    try:
        fs.rm_file(tmp)
    except Exception:  # noqa: BLE001 - best effort cleanup of our own temp file
        pass


__all__ = ["discard", "put_whole", "via_temp", "write_temp"]
