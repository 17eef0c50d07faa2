"""Durations as people write them: "90", "15m", "1h30m", "1d" (pure).

One grammar for every duration regen reads: regend.toml's [schedule], the timeouts of a policy's
procedures and regen's options (--expires, --grace, --stale), so a value valid in one place is
valid in every other: a number of seconds (a TOML number, or a string such as "90" or "1.5"), or
whole numbers each followed by a unit ms, s, m, h, d or w ("1h30m", "2 h", "250ms"; any case).
A fraction with a unit ("1.5h") is refused: write "1h30m".
"""

from __future__ import annotations

import math
import re
from typing import Any

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+)\s*(ms|s|m|h|d|w)", re.IGNORECASE)
_DURATION = re.compile(r"\s*(?:\d+\s*(?:ms|s|m|h|d|w)\s*)+", re.IGNORECASE)
_NUMBER = re.compile(r"\s*\d+(?:\.\d+)?\s*")


def parse_duration(value: Any) -> float:
    """Seconds from a number, or from a string such as "90", "15m", "1h30m", "1d". ValueError if neither."""
    seconds: float | None = None
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if number or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        seconds = float(value)
    elif isinstance(value, str) and _DURATION.fullmatch(value):
        seconds = sum(float(n) * _UNITS[u.lower()] for n, u in _PART.findall(value))
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"not a duration: {value!r}")
    return seconds


__all__ = ["parse_duration"]
