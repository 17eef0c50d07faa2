"""What `regen status` asks a person to do, one value per action, with its stable JSON shape (pure).

fleet.analyse finds them in the hosts' reports; render, the web view and the metrics show them.
Everything here came from a report, which is untrusted input: `failed_procedures` skips
malformed entries and cuts long fields instead of refusing the report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class UntrustedReport:
    """A report that cannot be believed: forged, replayed, or unsigned although the host is enrolled."""

    host: str
    auth: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"host": self.host, "auth": self.auth, "message": self.message}


@dataclass(frozen=True, slots=True)
class ReplaceHardware:
    host: str
    component: str
    message: str
    severity: str
    usable: bool

    def as_dict(self) -> dict[str, Any]:
        return {"host": self.host, "component": self.component, "message": self.message,
                "severity": self.severity, "usable": self.usable}


@dataclass(frozen=True, slots=True)
class StuckHost:
    host: str
    channel: str
    generation: int
    current: int
    last_seen: str | None
    state: str

    def as_dict(self) -> dict[str, Any]:
        return {"host": self.host, "channel": self.channel, "generation": self.generation, "current": self.current,
                "last_seen": self.last_seen, "state": self.state}


@dataclass(frozen=True, slots=True)
class MisconfiguredHost:
    host: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"host": self.host, "message": self.message}


@dataclass(frozen=True, slots=True)
class DriftingPath:
    path: str
    hosts: tuple[str, ...]
    kinds: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "hosts": list(self.hosts), "count": len(self.hosts), "kinds": list(self.kinds)}


@dataclass(frozen=True, slots=True)
class FailedProcedure:
    """A signed procedure that failed in a host's last run: its exit status and last output line."""

    host: str
    name: str
    failure: str
    exit_status: int
    timed_out: bool
    last_line: str

    def as_dict(self) -> dict[str, Any]:
        return {"host": self.host, "name": self.name, "failure": self.failure, "exit_status": self.exit_status,
                "timed_out": self.timed_out, "last_line": self.last_line}


def failed_procedures(host: str, steps: Mapping[str, Any]) -> list[FailedProcedure]:
    """The failed entries of a report's "procedures" step (untrusted: malformed entries are skipped)."""
    step = steps.get("procedures") if isinstance(steps, Mapping) else None
    ran = step.get("ran") if isinstance(step, Mapping) else None
    out = []
    for r in ran if isinstance(ran, list) else []:
        if not isinstance(r, Mapping) or r.get("ok") is not False:
            continue
        status, tail = r.get("exit_status"), r.get("output_tail")
        last = str(tail).strip().splitlines()[-1:] if isinstance(tail, str) and tail.strip() else []
        out.append(FailedProcedure(host, str(r.get("name", "?"))[:128], str(r.get("failure", "?"))[:16],
                                   status if isinstance(status, int) and not isinstance(status, bool) else -1,
                                   r.get("timed_out") is True, last[0][:200] if last else ""))
    return out


__all__ = ["DriftingPath", "FailedProcedure", "MisconfiguredHost", "ReplaceHardware", "StuckHost", "UntrustedReport",
           "failed_procedures"]
