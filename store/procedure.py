"""Procedures: commands a generation's signed policy tells clients to run when paths change (pure).

Why in the signed policy: a command run as root must come from the administrator's key, never
from a store writer or a client's own configuration (issue 18). A client runs the procedures
of the generation it accepted; `[[procedure]]` tables in the policy file declare them:

    [[procedure]]
    name    = "reload nginx"
    when    = ["etc/nginx/**"]             # globs (policy.py's semantics)
    on      = ["install", "update", "repair"]
    run     = ["/usr/sbin/nginx", "-s", "reload"]
    stage   = "after"                      # or "before"
    timeout = "30s"                        # store.durations grammar
    failure = "report"                     # or "fail-run", or "quarantine"
    chroot  = false                        # true: run inside the managed root

Validation is strict: every error names the procedure and the key, so a typo never turns into
a command that silently never runs (or runs when it should not).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .durations import parse_duration
from .errors import PolicyInvalid
from .globs import check_glob

PHASES = ("install", "update", "repair")
STAGES = ("before", "after")
FAILURES = ("report", "fail-run", "quarantine")
DEFAULT_TIMEOUT = 300.0          # seconds: five minutes, long enough for a service restart
MAX_TIMEOUT = 86400.0            # a day: longer is a mistake, and would hold the boot forever
MAX_NAME = 128
KEYS = frozenset({"name", "when", "on", "run", "stage", "timeout", "failure", "chroot"})
REQUIRED = ("name", "when", "run")


@dataclass(frozen=True, slots=True)
class Procedure:
    """One signed command and what fires it. `timeout` in seconds."""

    name: str
    when: tuple[str, ...]
    run: tuple[str, ...]
    on: tuple[str, ...] = PHASES
    stage: str = "after"
    timeout: float = DEFAULT_TIMEOUT
    failure: str = "report"
    chroot: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The record's form (canonical JSON: a whole number of seconds is written as an integer)."""
        timeout: float | int = int(self.timeout) if self.timeout == int(self.timeout) else self.timeout
        return {"chroot": self.chroot, "failure": self.failure, "name": self.name, "on": list(self.on),
                "run": list(self.run), "stage": self.stage, "timeout": timeout, "when": list(self.when)}

    @classmethod
    def from_dict(cls, data: object, where: str) -> Procedure:
        """Validate one `[[procedure]]` table; `where` names the policy (file or record) in errors."""
        if not isinstance(data, Mapping):
            raise PolicyInvalid(f"{where}: each procedure must be a table ([[procedure]])")
        name = data.get("name")
        label = f"{where}: procedure {name!r}" if isinstance(name, str) and name else f"{where}: a procedure"
        unknown = sorted(set(map(str, data)) - KEYS)
        if unknown:
            raise PolicyInvalid(f"{label}: unknown key {unknown[0]!r}", hint="keys: " + ", ".join(sorted(KEYS)))
        for key in REQUIRED:
            if key not in data:
                raise PolicyInvalid(f"{label}: key {key!r} is missing")
        return cls(name=_name(name, label), when=_globs(data["when"], label), run=_argv(data["run"], label),
                   on=_phases(data.get("on", list(PHASES)), label), stage=_enum(data, "stage", STAGES, label),
                   timeout=_timeout(data.get("timeout", DEFAULT_TIMEOUT), label),
                   failure=_enum(data, "failure", FAILURES, label), chroot=_bool(data.get("chroot", False), label))


def parse_procedures(value: object, where: str) -> tuple[Procedure, ...]:
    """The policy's `procedure` list: each valid, names unique (the journal knows them by name)."""
    if not isinstance(value, list):
        raise PolicyInvalid(f"{where}: 'procedure' must be a list of tables ([[procedure]])")
    out = tuple(Procedure.from_dict(item, where) for item in value)
    seen: set[str] = set()
    for p in out:
        if p.name in seen:
            raise PolicyInvalid(f"{where}: procedure {p.name!r}: key 'name': the name is used twice")
        seen.add(p.name)
    return out


def _name(value: object, label: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME \
            or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise PolicyInvalid(f"{label}: key 'name' must be a non-empty line of at most {MAX_NAME} characters")
    return value


def _globs(value: object, label: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise PolicyInvalid(f"{label}: key 'when' must be a non-empty list of globs")
    try:
        return tuple(check_glob(v) for v in value)
    except PolicyInvalid as exc:
        raise PolicyInvalid(f"{label}: key 'when': {exc.message}") from None


def _argv(value: object, label: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise PolicyInvalid(f"{label}: key 'run' must be a non-empty list of strings (an argument vector)")
    if not all(isinstance(a, str) and "\x00" not in a for a in value):
        raise PolicyInvalid(f"{label}: key 'run' must hold strings without NUL characters")
    if not value[0].startswith("/"):
        raise PolicyInvalid(f"{label}: key 'run': the command {value[0]!r} must be an absolute path",
                            hint="write the full path, e.g. \"/usr/sbin/nginx\"; no PATH lookup is made")
    return tuple(value)


def _phases(value: object, label: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise PolicyInvalid(f"{label}: key 'on' must be a non-empty list of {', '.join(PHASES)}")
    bad = [v for v in value if v not in PHASES]
    if bad or len(set(value)) != len(value):
        what = f"{bad[0]!r} is not one of" if bad else "repeats a phase; use each of"
        raise PolicyInvalid(f"{label}: key 'on': {what} {', '.join(PHASES)}")
    return tuple(p for p in PHASES if p in value)  # one order, whatever the file's


def _enum(data: Mapping[str, Any], key: str, choices: Sequence[str], label: str) -> str:
    value = data.get(key, choices[-1] if key == "stage" else choices[0])
    if value not in choices:
        raise PolicyInvalid(f"{label}: key {key!r} must be one of {', '.join(choices)}, not {value!r}")
    return str(value)


def _timeout(value: object, label: str) -> float:
    try:
        seconds = parse_duration(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= MAX_TIMEOUT:
        raise PolicyInvalid(f"{label}: key 'timeout' must be a duration above 0 and at most a day "
                            f"(\"30s\", \"5m\", \"1h\"), not {value!r}")
    return seconds


def _bool(value: object, label: str) -> bool:
    if not isinstance(value, bool):
        raise PolicyInvalid(f"{label}: key 'chroot' must be true or false, not {value!r}")
    return value


__all__ = ["FAILURES", "PHASES", "STAGES", "Procedure", "parse_procedures"]
