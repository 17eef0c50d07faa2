"""The tables of regend.toml, each a frozen value with its validation (pure: parsed TOML in, a value
or a one-line configuration error out).

config.py reads the file (and the key files it names) and composes DaemonConfig from these; the
modules that need one table's values (gate/ the [hardware] thresholds, schedule.py the
[schedule]) import them from here, not the file's parser.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from regen.daemon.errors import ConfigInvalid, HardwareConfigInvalid, ScheduleConfigInvalid
from regen.store import SIZE_EXPECTED, parse_duration, parse_size

JUNK_MODES = ("quarantine", "keep")
ON_REPEATED = ("report", "quarantine")
XATTR_MODES = ("required", "best-effort")
CACHE_MAX_BYTES = 2 << 30  # the object cache's default budget: a server root's non-base files, compressed


@dataclass(frozen=True, slots=True)
class Limits:
    max_record_bytes: int = 1 << 20          # a signed generation / overlay record (ref)
    max_manifest_bytes: int = 1 << 30        # one manifest object (1 GiB ~ 4 million entries)
    min_free_bytes: int = 64 << 20           # free space the state dir needs for a run to start


@dataclass(frozen=True, slots=True)
class QuarantineRetention:
    max_age_days: float = 90.0               # runs older than this are deleted
    max_bytes: int = 1 << 30                 # then the oldest runs until the total fits
    max_run_bytes: int = 256 << 20           # one run keeps at most this (allocated bytes); the rest stays in place
    keep_runs: int = 3                       # the newest runs never deleted by age or size (the retention floor)


@dataclass(frozen=True, slots=True)
class Hooks:
    start_check: tuple[str, ...] = ()        # shell commands; any failing one refuses the start
    quarantine: str | None = None            # shell command run on the quarantine path
    timeout: float = 60.0                    # seconds per command


@dataclass(frozen=True, slots=True)
class FailurePolicy:
    max_consecutive: int = 3                 # same step failing the same way this often is a loop
    action: str = "report"                   # "report": skip that step until it changes; "quarantine": exit 3


# ---------------------------------------------------------------------------------------------
# [hardware] and [schedule]: tables validated with their own error classes

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
    "min_memory_bytes": parse_size,
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



@dataclass(frozen=True, slots=True)
class ScheduleConfig:
    """The [schedule] table of regend.toml, every value in seconds."""

    interval: float = 3600.0      # one run per interval
    jitter: float = 300.0         # plus a random delay up to this, drawn anew for every run
    verify_every: float = 86400.0  # a run that hashes every file (--verify) this often; 0: never
    backoff_base: float = 30.0    # first retry after a failed run (doubles each further failure)
    backoff_max: float = 3600.0   # retries never wait longer than this (Retry-After may ask for more)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str) -> ScheduleConfig:
        """Validate a parsed TOML table; `where` names it in errors (e.g. "regend.toml [schedule]")."""
        if not isinstance(data, Mapping):
            raise ScheduleConfigInvalid(f"{where} must be a table of settings, not {type(data).__name__}")
        names = cls.__dataclass_fields__
        values: dict[str, float] = {}
        for key, value in data.items():
            if key not in names:
                raise ScheduleConfigInvalid(f"{where}: unknown key {key!r}",
                                            hint="expected one of: " + ", ".join(sorted(names)))
            try:
                values[key] = parse_duration(value)
            except ValueError:
                raise ScheduleConfigInvalid(f"{where}: {key} must be a duration: seconds or a string such as "
                                            f"\"15m\", \"1h\" or \"1d\", not {value!r}") from None
        config = cls(**values)
        for key in ("interval", "backoff_base"):
            if getattr(config, key) <= 0:
                raise ScheduleConfigInvalid(f"{where}: {key} must be longer than 0 seconds, not {data[key]!r}")
        if config.backoff_max < config.backoff_base:
            raise ScheduleConfigInvalid(f"{where}: backoff_max ({config.backoff_max:g} s) must not be shorter "
                                        f"than backoff_base ({config.backoff_base:g} s)")
        return config


class TableReader:
    """Typed access to one TOML table; every failure names file, key and expectation."""

    def __init__(self, path: str, data: Mapping[str, Any], table: str = "") -> None:
        self.path, self.data, self.table = path, data, table

    def where(self, key: str) -> str:
        return f"{self.path}: {self.table + '.' if self.table else ''}{key}"

    def fail(self, key: str, expected: str, value: Any = None, hint: str | None = None) -> ConfigInvalid:
        got = "" if value is None else f", not {value!r}"[:120]
        return ConfigInvalid(f"{self.where(key)} must be {expected}{got}", hint=hint)

    def get(self, key: str, expected: str, check: Callable[[Any], bool], default: Any = None,
            required: bool = False) -> Any:
        if key not in self.data:
            if required:
                raise ConfigInvalid(f"{self.path}: required key {self.where(key).split(': ', 1)[1]!r} is missing "
                                    f"(expected {expected})")
            return default
        value = self.data[key]
        if not check(value):
            raise self.fail(key, expected, value)
        return value

    def text(self, key: str, default: str | None = None, required: bool = False) -> Any:
        return self.get(key, "a non-empty string", lambda v: isinstance(v, str) and bool(v.strip()), default,
                        required)

    def number(self, key: str, default: float, minimum: float = 0.0) -> float:
        return float(self.get(key, f"a number of at least {minimum:g}",
                              lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v >= minimum
                              and v <= 1e300,  # (an integer of 400 digits does not convert to float)
                              default))

    def integer(self, key: str, default: int, minimum: int = 0) -> int:
        return int(self.get(key, f"a whole number of at least {minimum}",
                            lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= minimum, default))

    def size(self, key: str, default: int) -> int:
        value = self.data.get(key, default)
        try:
            return parse_size(value)
        except ValueError:
            raise self.fail(key, SIZE_EXPECTED, value) from None

    def strings(self, key: str) -> tuple[str, ...]:
        return tuple(self.get(key, "a list of strings",
                              lambda v: isinstance(v, list) and all(isinstance(s, str) and s for s in v), []))

    def table_of(self, key: str) -> Mapping[str, Any]:
        return self.get(key, "a table", lambda v: isinstance(v, dict), {})  # type: ignore[no-any-return]

    def only(self, keys: set[str]) -> None:
        unknown = sorted(set(self.data) - keys)
        if unknown:
            raise ConfigInvalid(f"{self.where(unknown[0])} is not a known key",
                                hint=f"expected one of: {', '.join(sorted(keys))}")


def limits_of(r: TableReader) -> Limits:
    r.only({"max_record_bytes", "max_manifest_bytes", "min_free_bytes"})
    d = Limits()
    return Limits(r.size("max_record_bytes", d.max_record_bytes), r.size("max_manifest_bytes", d.max_manifest_bytes),
                  r.size("min_free_bytes", d.min_free_bytes))


def cache_budget_of(r: TableReader) -> int:
    r.only({"max_bytes"})
    return r.size("max_bytes", CACHE_MAX_BYTES)


def retention_of(r: TableReader) -> QuarantineRetention:
    r.only({"max_age_days", "max_bytes", "max_run_bytes", "keep_runs"})
    d = QuarantineRetention()
    return QuarantineRetention(r.number("max_age_days", d.max_age_days), r.size("max_bytes", d.max_bytes),
                               r.size("max_run_bytes", d.max_run_bytes), r.integer("keep_runs", d.keep_runs, 0))


def hooks_of(r: TableReader) -> Hooks:
    r.only({"start_check", "quarantine", "timeout"})
    return Hooks(r.strings("start_check"), r.text("quarantine"), r.number("timeout", 60.0, 0.001))


def failures_of(r: TableReader) -> FailurePolicy:
    r.only({"max_consecutive", "action"})
    action = r.get("action", " or ".join(map(repr, ON_REPEATED)), lambda v: v in ON_REPEATED, "report")
    return FailurePolicy(r.integer("max_consecutive", 3, 1), action)


__all__ = ["CACHE_MAX_BYTES", "JUNK_MODES", "ON_REPEATED", "XATTR_MODES", "FailurePolicy", "HardwareConfig", "Hooks",
           "Limits", "QuarantineRetention", "ScheduleConfig", "TableReader", "cache_budget_of", "failures_of",
           "hooks_of", "limits_of", "retention_of"]
