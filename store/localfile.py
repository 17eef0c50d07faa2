"""Durable atomic saves of local files: a reader sees the old content or the new, never a part,
and once `save_atomic` returns, the new content survives a power loss (pure I/O, no fsspec).

The one way regen replaces a small local file (regend's state mirror, run reports, trust root
and metrics file, the systemd units, cached pack indexes): a temporary file in the same folder,
written and fsync'ed, renamed over the destination, then the folder fsync'ed so the rename
itself is on disk (borg's SaveFile); the temporary file is removed if anything fails.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from typing import IO, Any

TEMP_PREFIX = ".tmp-"  # (the store's own temp prefix: every reader of a folder skips these)


# How a fetched object's local copy is written: given the open temp file, the writer its content goes
# to (e.g. a compressing one: regend's object cache keeps zstd frames). Closed before the file is
# synced and renamed, so a renamed copy is always complete; the content is verified as it is written.
Wrap = Callable[[IO[bytes]], contextlib.AbstractContextManager[Any]]


def writing(fp: IO[bytes], wrap: Wrap | None) -> contextlib.AbstractContextManager[Any]:
    """The writer a fetch puts content into: `fp` itself, or `wrap(fp)`."""
    return contextlib.nullcontext(fp) if wrap is None else wrap(fp)


def save_atomic(path: str, data: bytes, *, mode: int | None = None, durable: bool = True) -> None:
    """Replace `path` with `data` atomically. `mode`: the new file's permissions (else 0600, as
    mkstemp makes it); `durable=False` skips both fsyncs (a cache that can be fetched again)."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=folder)
    try:
        with os.fdopen(fd, "wb") as fp:
            fp.write(data)
            if durable:
                fp.flush()
                os.fsync(fp.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if durable:
        sync_dir(folder)


def sync_dir(folder: str) -> None:
    """fsync a folder, so the names just created or renamed in it are on disk."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["Wrap", "save_atomic", "sync_dir", "writing"]
