"""The stat rule, one for the whole of regen (pure): may a digest taken earlier still be trusted
for a file on its stat alone, without reading it?

Yes when size, mtime, ctime, inode and mode all equal what was recorded with the digest and
the file's mtime is outside the racy-timestamp window of the moment the digest was taken
(racywindow.racy). regend's index rows (daemon/tree/verdict.py, for classify and the no-change
fast path alike) and the snapshot's stat cache (manager/scan.py) both ask this function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .racywindow import RACY_WINDOW_NS, racy

if TYPE_CHECKING:  # (a Protocol class costs import time on every no-change run; only mypy needs it)
    from typing import Protocol

    class KnownStat(Protocol):
        """What was recorded with a digest (an index row, a stat cache row)."""

        @property
        def size(self) -> int: ...
        @property
        def mtime_ns(self) -> int | None: ...
        @property
        def ctime_ns(self) -> int | None: ...
        @property
        def inode(self) -> int | None: ...
        @property
        def mode(self) -> int: ...


def stat_change(size: int, mtime_ns: int, ctime_ns: int, inode: int, mode: int, known: KnownStat,
                checked_ns: int, window_ns: int = RACY_WINDOW_NS) -> str:
    """"" when the file's stat proves the digest recorded with `known` (taken at `checked_ns`)
    still holds; else why not: the first field that differs ("size", "mtime", "ctime", "inode",
    "mode"), or "racy". `mode` is compared as the caller records it (permission bits, or st_mode)."""
    if size != known.size:
        return "size"
    if mtime_ns != known.mtime_ns:
        return "mtime"
    if ctime_ns != known.ctime_ns:
        return "ctime"
    if inode != known.inode:
        return "inode"
    if mode != known.mode:
        return "mode"
    if racy(mtime_ns, checked_ns, window_ns):
        return "racy"
    return ""


__all__ = ["stat_change"]
