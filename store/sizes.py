"""Byte counts as people write them: 4096, "512M", "4G", "1.5T", "2PiB" (pure).

One grammar for every size regen reads (regend.toml's [limits], [quarantine] and [hardware]),
so a value valid in one table is valid in every other: a whole number of bytes, or a number
with a binary unit k, m, g, t or p (any case, optionally followed by "b" or "ib").
"""

from __future__ import annotations

import re
from typing import Any

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?\s*", re.IGNORECASE)
_UNITS = "kmgtp"
MAX_SIZE = (1 << 63) - 1  # a written size beyond what a signed 64-bit field (SQLite, st_size) holds is refused
SIZE_EXPECTED = 'a byte count: a whole number or a size such as "512M" or "4G"'


def parse_size(value: Any) -> int:
    """Bytes from a whole number (>= 0) or a string such as "512M" (at most MAX_SIZE); ValueError otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value >= 0:
            return value
        raise ValueError(SIZE_EXPECTED)
    m = _SIZE.fullmatch(value) if isinstance(value, str) else None
    if not m:
        raise ValueError(SIZE_EXPECTED)
    unit = m.group(2).lower()
    size = float(m.group(1)) * 1024 ** (_UNITS.index(unit) + 1 if unit else 0)
    if not size <= MAX_SIZE:  # ("9" * 400 is a float infinity)
        raise ValueError(SIZE_EXPECTED)
    return int(size)


__all__ = ["MAX_SIZE", "SIZE_EXPECTED", "parse_size"]
