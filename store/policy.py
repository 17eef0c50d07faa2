"""A channel's rules, signed into each generation, and path-glob matching (pure).

Glob syntax, matched against the whole relative POSIX path:
  ``*`` any run of characters except ``/``; ``?`` one such character; ``[abc]`` a class;
  ``**`` any run of characters including ``/`` (``a/**`` is everything below ``a``).
A pattern that matches a directory also matches everything below it, so ``home`` and
``home/**`` both protect the whole of ``home``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable, Mapping

from .errors import PolicyInvalid
from .procedure import Procedure, parse_procedures

JUNK_MODES = ("quarantine", "keep")


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


@dataclass(frozen=True, slots=True)
class Policy:
    """Rules signed into a generation. `preserve`: never touched; `base`: restored only from the
    store and a drift there triggers a full verify; `exclude`: left out of the snapshot;
    `junk`: what clients do with unmanaged files (quarantine or keep); `procedures`: commands
    clients run when paths change (procedure.py), written only when there are some."""

    preserve: tuple[str, ...] = ()
    base: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    junk: str = "quarantine"
    procedures: tuple[Procedure, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"base": list(self.base), "exclude": list(self.exclude), "junk": self.junk,
                               "preserve": list(self.preserve)}
        if self.procedures:  # (absent otherwise: a policy without procedures is what older clients read)
            out["procedure"] = [p.as_dict() for p in self.procedures]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "policy") -> Policy:
        if not isinstance(data, Mapping):
            raise PolicyInvalid(f"{where}: expected a table of rules")
        unknown = set(data) - {"preserve", "base", "exclude", "junk", "procedure"}
        if unknown:
            raise PolicyInvalid(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")

        def globs(key: str) -> tuple[str, ...]:
            value = data.get(key, [])
            if not isinstance(value, list):
                raise PolicyInvalid(f"{where}: '{key}' must be a list of globs")
            try:
                return tuple(check_glob(v) for v in value)
            except PolicyInvalid as exc:
                raise PolicyInvalid(f"{where}: '{key}': {exc.message}") from None

        junk = data.get("junk", "quarantine")
        if junk not in JUNK_MODES:
            raise PolicyInvalid(f"{where}: 'junk' must be one of {', '.join(JUNK_MODES)}, not {junk!r}")
        procedures = parse_procedures(data["procedure"], where) if "procedure" in data else ()
        return cls(preserve=globs("preserve"), base=globs("base"), exclude=globs("exclude"), junk=junk,
                   procedures=procedures)

    def merged(self, preserve: Iterable[str] = (), junk: str | None = None) -> Policy:
        """The client's view: its own extra preserve globs added, its junk mode if set."""
        extra = tuple(check_glob(p) for p in preserve if p not in self.preserve)
        return Policy(self.preserve + extra, self.base, self.exclude, junk or self.junk, self.procedures)


def load_policy_toml(path: str) -> Policy:
    import tomllib

    try:
        with open(path, "rb") as fp:
            data = tomllib.load(fp)
    except FileNotFoundError:
        raise PolicyInvalid(f"policy file {path} does not exist", hint="give an existing TOML file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PolicyInvalid(f"policy file {path} is not valid TOML: {exc}") from None
    except RecursionError:
        raise PolicyInvalid(f"policy file {path} is not valid TOML: values nested too deeply") from None
    except OSError as exc:
        raise PolicyInvalid(f"policy file {path} cannot be read: {exc.strerror}") from None
    section = data.get("policy", data)
    return Policy.from_dict(section, where=f"policy file {path}")


__all__ = ["Policy", "check_glob", "load_policy_toml", "matches"]
