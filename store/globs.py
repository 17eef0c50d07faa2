"""Path globs: checking them and matching relative POSIX paths against them (pure).

Glob syntax, matched against the whole relative POSIX path:
  ``*`` any run of characters except ``/``; ``?`` one such character; ``[abc]`` a class;
  ``**`` any run of characters including ``/`` (``a/**`` is everything below ``a``).
A pattern that matches a directory also matches everything below it, so ``home`` and
``home/**`` both protect the whole of ``home``. Used by a channel's policy (policy.py) and by
the paths its procedures watch (procedure.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from .errors import PolicyInvalid


@lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern[str]:
    out = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            k = i + 1
            if pattern[k : k + 1] == "!":
                k += 1
            if pattern[k : k + 1] == "]":  # a leading ']' is a member, not the end
                k += 1
            j = pattern.find("]", k)
            if j < 0:
                out.append(re.escape(c))
                i += 1
            else:
                body = pattern[i + 1 : j]
                negate = body.startswith("!")
                if negate:
                    body = body[1:]
                # members literal except ranges; a class never matches '/', like '*' and '?'
                body = "".join("\\" + ch if ch in "\\[]^&~|" else ch for ch in body)
                out.append("(?!/)[" + ("^" if negate else "") + body + "]")
                i = j + 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("(?s:" + "".join(out) + ")(?:/.*)?")


def check_glob(pattern: object) -> str:
    if not isinstance(pattern, str) or not pattern or "\x00" in pattern:
        raise PolicyInvalid(f"invalid glob {pattern!r}", pattern=pattern)
    p = pattern.strip("/")
    if not p or any(part in (".", "..") for part in p.split("/")):
        raise PolicyInvalid(f"invalid glob {pattern!r}: it must be a relative path pattern", pattern=pattern)
    try:
        _compile(p)
    except re.error as exc:
        raise PolicyInvalid(f"invalid glob {pattern!r}: {exc}", pattern=pattern) from None
    return p


def literal_glob(path: str) -> str:
    """A glob matching exactly `path` (its *, ? and [ taken literally)."""
    return check_glob("".join(f"[{c}]" if c in "*?[" else c for c in path))


def matches(path: str, patterns: Iterable[str]) -> bool:
    """True if `path` or one of its ancestors matches one of `patterns`."""
    return any(_compile(p).fullmatch(path) for p in patterns)


__all__ = ["check_glob", "literal_glob", "matches"]
