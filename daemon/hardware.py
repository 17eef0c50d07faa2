"""Hardware diagnosis: what the machine has and what is wrong with it (I/O behind a Protocol).

`PsutilProbe.probe(previous)` collects an inventory (I/O, every call time-boxed) and then
judges it with the pure `assess(inventory, previous, config)`. The inventory is plain JSON
so the index can keep it and the next run can compare against it.

Why every call is time-boxed: a dead NFS/CIFS/FUSE mount, or a dying disk, makes statvfs
block in the kernel, possibly forever, and a boot that waits on it never ends. Each call runs
in a daemon thread; one that misses its deadline becomes a finding and its thread is left
behind (daemon threads do not hold up interpreter exit). A `PsutilProbe` remembers such
stuck calls and does not pile up new threads on the same mount while the old one hangs, so
the long-running daemon should keep one probe for its lifetime.

This module holds the [hardware] configuration, the probe Protocol and its results, and
`PsutilProbe`, which joins the parts kept in their own modules:
- `probe`: `collect` and the psutil-like `ProbeSources` it reads (I/O; psutil imported lazily);
- `health`: `assess` and `smart_verdict`, findings from an inventory (pure);
- `timebox`: `TimeBox` and `call_with_timeout`, calls bounded by a deadline.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from regen.store import HardwareFinding


from .errors import HardwareConfigInvalid

if TYPE_CHECKING:
    from .probe import ProbeSources

__all__ = [
    "FakeProbe", "HardwareConfig", "HardwareProbe", "ProbeResult", "PsutilProbe",
]



# ---------------------------------------------------------------------------------------------
# configuration

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?\s*$", re.IGNORECASE)


def _number(lo: float | None = None, hi: float | None = None, integer: bool = False) -> Callable[[Any], Any]:
    kind = "a whole number" if integer else "a number"
    what = kind + (f" from {lo:g} to {hi:g}" if lo is not None and hi is not None
                   else f" of at least {lo:g}" if lo is not None else "")

    def check(v: Any) -> Any:
        ok_type = isinstance(v, int) if integer else isinstance(v, (int, float))
        if isinstance(v, bool) or not ok_type or (lo is not None and v < lo) or (hi is not None and v > hi):
            raise ValueError(what)
        return v if integer else float(v)
    return check


def _size(v: Any) -> int:
    if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
        return v
    m = _SIZE.match(v) if isinstance(v, str) else None
    if not m:
        raise ValueError("a byte count: a whole number or a size such as \"512M\" or \"4G\"")
    return int(float(m.group(1)) * 1024 ** " kmgtp".index(m.group(2).lower() or " "))


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError("true or false")
    return v


def _strings(absolute: bool = False) -> Callable[[Any], tuple[str, ...]]:
    what = "a list of absolute paths" if absolute else "a list of strings"

    def check(v: Any) -> tuple[str, ...]:
        if not isinstance(v, (list, tuple)) or not all(isinstance(s, str) and s for s in v):
            raise ValueError(what)
        if absolute and not all(s.startswith("/") for s in v):
            raise ValueError(what)
        return tuple((s.rstrip("/") or "/") if absolute else s for s in v)
    return check


def _choice(*choices: str) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if v not in choices:
            raise ValueError(" or ".join(repr(c) for c in choices))
        return str(v)
    return check


_FIELDS: dict[str, Callable[[Any], Any]] = {
    "disk_usage_warn": _number(0, 100),
    "disk_usage_fail": _number(0, 100),
    "min_memory_bytes": _size,
    "memory_shrink_percent": _number(0, 100),
    "min_cpus": _number(0, integer=True),
    "temperature_warn_margin": _number(0),
    "temperature_fail_margin": _number(0),
    "probe_timeout": _number(0.001),
    "network_filesystems": _bool,
    "required_mounts": _strings(absolute=True),
    "ignore_mounts": _strings(),
    "required_interfaces": _strings(),
    "ignore_interfaces": _strings(),
    "net_error_percent": _number(0, 100),
    "smartctl": _choice("auto", "off"),
    "battery_min_percent": _number(0, 100),
}


@dataclass(frozen=True, slots=True)
class HardwareConfig:
    """Thresholds of the hardware diagnosis: the [hardware] table of regend.toml."""

    disk_usage_warn: float = 90.0          # percent used: warn at or above
    disk_usage_fail: float = 98.0          # percent used: the partition counts as unusable
    min_memory_bytes: int = 0              # less installed memory refuses the start (0: no minimum)
    memory_shrink_percent: float = 2.0     # memory smaller than last run by more than this: a module failed
    min_cpus: int = 1                      # fewer CPUs refuse the start
    temperature_warn_margin: float = 0.0   # degrees C below a sensor's high mark that already warn
    temperature_fail_margin: float = 0.0   # degrees C below a sensor's critical mark that already fail
    probe_timeout: float = 5.0             # seconds each probe may take before it counts as hung
    network_filesystems: bool = False      # also probe nfs/cifs/fuse mounts (they can hang)
    required_mounts: tuple[str, ...] = ()  # must be mounted read-write, or the start is refused
    ignore_mounts: tuple[str, ...] = ("/media/*", "/run/media/*")  # globs never probed (removable media)
    required_interfaces: tuple[str, ...] = ()  # must exist and be up, or the start is refused
    ignore_interfaces: tuple[str, ...] = ("lo", "veth*", "docker*", "br-*", "virbr*", "vnet*", "tun*",
                                          "tap*", "ifb*", "wg*")
    net_error_percent: float = 1.0         # errors+drops above this share of packets warn
    smartctl: str = "auto"                 # "auto": use smartctl -H where installed; "off"
    battery_min_percent: float = 0.0       # on battery below this warns (0: never)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str) -> HardwareConfig:
        """Validate a parsed TOML table; `where` names it in errors (e.g. "regend.toml [hardware]")."""
        if not isinstance(data, Mapping):
            raise HardwareConfigInvalid(f"{where} must be a table of settings, not {type(data).__name__}")
        values: dict[str, Any] = {}
        for key, value in data.items():
            check = _FIELDS.get(key)
            if check is None:
                raise HardwareConfigInvalid(f"{where}: unknown key {key!r}",
                                            hint="expected one of: " + ", ".join(sorted(_FIELDS)))
            try:
                values[key] = check(value)
            except ValueError as exc:
                raise HardwareConfigInvalid(f"{where}: {key} must be {exc}, not {value!r}") from None
        config = cls(**values)
        if config.disk_usage_fail < config.disk_usage_warn:
            raise HardwareConfigInvalid(f"{where}: disk_usage_fail ({config.disk_usage_fail:g}) must not be "
                                        f"below disk_usage_warn ({config.disk_usage_warn:g})")
        return config


# ---------------------------------------------------------------------------------------------
# results and the probe protocol


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What a probe saw (JSON-able, kept for the next comparison) and what it found wrong."""

    inventory: dict[str, Any]
    findings: tuple[HardwareFinding, ...]


class HardwareProbe(Protocol):
    def probe(self, previous: Mapping[str, Any] | None) -> ProbeResult:
        """Inspect the machine; compare with `previous` (the last run's inventory) when given."""
        ...


class FakeProbe:
    """Fixed results, for tests of the daemon: the only allowed substitute for the real probe."""

    def __init__(self, inventory: Mapping[str, Any] | None = None,
                 findings: Iterable[HardwareFinding] = ()) -> None:
        self.inventory = dict(inventory or {})
        self.findings = tuple(findings)
        self.seen: list[Mapping[str, Any] | None] = []  # the `previous` of every call, oldest first

    def probe(self, previous: Mapping[str, Any] | None) -> ProbeResult:
        self.seen.append(previous)
        return ProbeResult(dict(self.inventory), self.findings)


# ---------------------------------------------------------------------------------------------
# the real probe


class PsutilProbe:
    """The machine's hardware through psutil (or injected `sources`), every call time-boxed."""

    def __init__(self, config: HardwareConfig, sources: ProbeSources | None = None) -> None:
        # (imported here: every command parses [hardware], only a run probes)
        from .probe import PsutilSources
        from .timebox import TimeBox

        self.config = config
        self.sources: ProbeSources = sources if sources is not None else PsutilSources()
        self._box = TimeBox()  # keeps calls that hung so the next probe does not start them again

    def probe(self, previous: Mapping[str, Any] | None) -> ProbeResult:
        from .health import assess
        from .probe import collect

        inventory = collect(self.sources, self.config, self._box)
        return ProbeResult(inventory, assess(inventory, previous, self.config))
