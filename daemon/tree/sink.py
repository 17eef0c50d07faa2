"""Writing an object's bytes into a temporary file while hashing exactly what was written (local I/O).

A sparse entry (FORMAT.md §4.7 `z`) is written with holes: an aligned all-zero block is
seeked over instead of written, and the size set at the end, so a 256 MiB file with 8 KiB of
data takes 8 KiB on the client too.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import blake3

if TYPE_CHECKING:
    from regen.daemon.tree.ticker import Ticker

_BLOCK = 4096
_ZERO = bytes(_BLOCK)


class Sink:
    """A file-like target that hashes exactly what it writes to the descriptor."""

    def __init__(self, fd: int, ticker: Ticker, sparse: bool = False) -> None:
        self.fd = fd
        self.hash = blake3.blake3()
        self.size = 0
        self.ticker = ticker
        self.sparse = sparse

    def write(self, data: bytes | memoryview) -> int:
        view = memoryview(data)
        if self.sparse:
            self._write_sparse(view)
            view = view[len(view):]
        while view:
            n = os.write(self.fd, view)
            self.hash.update(view[:n])
            self.size += n
            view = view[n:]
        if self.size and self.size == len(data) and self.ticker.on_tick is not None:
            self.ticker.tick()  # a crash point with a partly written temp file
        return len(data)

    def _write_sparse(self, view: memoryview) -> None:
        """Aligned all-zero blocks become holes (seek over them; `finish` sets the size)."""
        self.hash.update(view)
        pos = 0
        n = len(view)
        while pos < n:
            end = min(n, pos + _BLOCK - (self.size + pos) % _BLOCK)
            block = view[pos:end]
            if block == _ZERO[:len(block)]:
                os.lseek(self.fd, len(block), os.SEEK_CUR)
            else:
                os.write(self.fd, block)
            pos = end
        self.size += n

    def finish(self) -> None:
        if self.sparse:
            os.ftruncate(self.fd, self.size)  # (a trailing hole)

    def reset(self) -> None:
        os.ftruncate(self.fd, 0)
        os.lseek(self.fd, 0, os.SEEK_SET)
        self.hash = blake3.blake3()
        self.size = 0


__all__ = ["Sink"]
