"""The racy-timestamp rule, one for the whole of regen (pure; as git's "racy git" rule).

A file's cached digest (regen's snapshot stat cache) or index row (regend's) is trusted on its
stat alone only if the file's mtime is older, by at least RACY_WINDOW_NS, than the moment the
digest was taken: a write in the same clock tick as the hash could otherwise hide behind an
identical stat. The window covers 2 s timestamp granularity (FAT, SMB) and small clock steps.
"""

from __future__ import annotations

RACY_WINDOW_NS = 2_000_000_000


def racy(mtime_ns: int, hashed_ns: int, window_ns: int = RACY_WINDOW_NS) -> bool:
    """True if a file with this mtime may have changed unseen since its digest was taken at `hashed_ns`."""
    return mtime_ns >= hashed_ns - window_ns


__all__ = ["RACY_WINDOW_NS", "racy"]
