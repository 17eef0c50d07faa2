"""regend.toml -> DaemonConfig, parsed once at the edge (I/O: reads the file and key files only).

Every error names the file, the key and what is expected, in one line (exit status 2). The
environment is a parameter, never read deep inside: a storage option written "${NAME}" takes
its value from `environ` (secrets stay out of the file). fsspec itself also reads FSSPEC_*
variables and ~/.config/fsspec; the explicit options given here win over those.
"""

from __future__ import annotations

import os
import re
import socket
import stat
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from regen.daemon.errors import ConfigInvalid, HardwareConfigInvalid, ScheduleConfigInvalid
from regen.store import (
    SIZE_EXPECTED,
    InvalidInput,
    PublicKey,
    RegenError,
    check_glob,
    layout,
    load_public_key,
    parse_duration,
    parse_size,
    trust_map,
)

if TYPE_CHECKING:
    from regen.store import Root

DEFAULT_PATH = "/etc/regen/regend.toml"
DEFAULT_STATE_DIR = "/var/lib/regen"
JUNK_MODES = ("quarantine", "keep")
ON_REPEATED = ("report", "quarantine")
_ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
T = TypeVar("T")
_TOP_KEYS = {"store", "storage_options", "channel", "host", "root", "state_dir", "trusted_keys", "trust_root",
             "preserve", "junk", "limits", "quarantine", "hardware", "hooks", "schedule", "failures", "reports",
             "transfers", "xattrs", "cache"}
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


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    path: str
    store: str
    channel: str
    host: str
    root: str
    state_dir: str
    trusted_keys: tuple[PublicKey, ...]
    trusted_key_files: tuple[str, ...]
    trust_root: Root | None = None           # the pinned root of trust (store/root.py); then trusted_keys is empty
    trust_root_file: str | None = None
    storage_options: Mapping[str, Any] = field(default_factory=dict)
    preserve: tuple[str, ...] = ()
    junk: str | None = None                  # None: the generation's policy decides
    limits: Limits = Limits()
    quarantine: QuarantineRetention = QuarantineRetention()
    hooks: Hooks = Hooks()
    failures: FailurePolicy = FailurePolicy()
    reports_keep: int = 50                   # reports kept in state_dir/reports
    transfers: int = 8                       # objects fetched from the store at once
    cache_max_bytes: int = CACHE_MAX_BYTES   # [cache] max_bytes: the object cache's budget (allocated bytes)
    xattrs: str = "required"                 # "best-effort": an attribute the file system refuses is a warning
    report_store: str | None = None          # [reports] store: where reports go when `store` is read-only (http)
    metrics_file: str | None = None          # [reports] metrics: Prometheus textfile-collector file (off if None)
    report_storage_options: Mapping[str, Any] = field(default_factory=dict)
    hardware: HardwareConfig = field(default_factory=lambda: HardwareConfig())
    schedule: ScheduleConfig = field(default_factory=lambda: ScheduleConfig())

    @property
    def trusted(self) -> dict[str, PublicKey]:
        return trust_map(list(self.trusted_keys))


class _Reader:
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


def load_config(path: str, environ: Mapping[str, str]) -> DaemonConfig:
    """Read and validate `path`; raise ConfigInvalid (exit 2) naming file, key and expectation."""
    try:
        with open(path, "rb") as fp:
            guard_trust_anchor(path, os.fstat(fp.fileno()), "configuration file")
            data = tomllib.load(fp)
    except FileNotFoundError:
        raise ConfigInvalid(f"configuration file {path} does not exist",
                            hint="create it with regend example-config > FILE, or pass --config FILE") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigInvalid(f"configuration file {path} is not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigInvalid(f"configuration file {path} is not valid TOML: values nested too deeply") from None
    except OSError as exc:
        raise ConfigInvalid(f"configuration file {path} cannot be read: {exc.strerror}") from None
    return parse_config(data, path, environ)


def parse_config(data: Mapping[str, Any], path: str, environ: Mapping[str, str]) -> DaemonConfig:
    top = _Reader(path, data)
    top.only(_TOP_KEYS)
    store = top.text("store", required=True).strip()
    channel = _name(top, "channel", top.text("channel", required=True))
    host = _name(top, "host", top.text("host", default=None) or socket.gethostname())
    base = os.path.dirname(os.path.abspath(path))
    root = _abs_dir(top, "root", top.text("root", required=True))
    state_dir = _abs_dir(top, "state_dir", top.text("state_dir", default=DEFAULT_STATE_DIR))
    preserve = _globs(top, "preserve")
    _check_state_dir(top, root, state_dir)
    key_files = tuple(os.path.join(base, os.path.expanduser(p)) for p in top.strings("trusted_keys"))
    root_file = top.text("trust_root", default=None)
    root_file = os.path.join(base, os.path.expanduser(root_file)) if root_file else None
    if key_files and root_file:
        raise top.fail("trusted_keys", "left out when trust_root is set (the root lists the publisher keys, "
                       "and revoking one must take effect)", data.get("trusted_keys"))
    if not key_files and not root_file:
        raise top.fail("trusted_keys", "a non-empty list of public key files (the administrator's *.pub), "
                       "or trust_root", data.get("trusted_keys"))
    trust_root = _load_root(top, root_file) if root_file else None
    keys = tuple(_load_key(top, f) for f in key_files)
    options = _storage_options(top, environ)
    xattrs = top.get("xattrs", " or ".join(map(repr, XATTR_MODES)), lambda v: v in XATTR_MODES) or "required"
    reports = _Reader(path, top.table_of("reports"), "reports")
    reports.only({"keep", "store", "storage_options", "metrics"})
    report_store = (reports.text("store", default=None) or "").strip() or None
    report_options = _storage_options(reports, environ) if report_store else {}
    metrics_file = (reports.text("metrics", default=None) or "").strip() or None
    own = [path, state_dir, *key_files, *([root_file] if root_file else []), *_option_files(options),
           *_option_files(report_options),
           *([metrics_file] if metrics_file else [])]
    preserve += tuple(g for g in implicit_preserve(root, own) if g not in preserve)
    junk = top.get("junk", " or ".join(map(repr, JUNK_MODES)), lambda v: v in JUNK_MODES)
    return DaemonConfig(
        path=path, store=store, channel=channel, host=host, root=root, state_dir=state_dir,
        trusted_keys=keys, trusted_key_files=key_files, trust_root=trust_root, trust_root_file=root_file,
        storage_options=options, preserve=preserve, junk=junk,
        limits=_limits(_Reader(path, top.table_of("limits"), "limits")),
        quarantine=_retention(_Reader(path, top.table_of("quarantine"), "quarantine")),
        hooks=_hooks(_Reader(path, top.table_of("hooks"), "hooks")),
        failures=_failures(_Reader(path, top.table_of("failures"), "failures")),
        reports_keep=reports.integer("keep", 50, 1),
        metrics_file=metrics_file,
        report_store=report_store,
        transfers=top.integer("transfers", 8, 1), xattrs=xattrs,
        cache_max_bytes=_cache_budget(_Reader(path, top.table_of("cache"), "cache")),
        report_storage_options=report_options,
        hardware=_foreign(HardwareConfig.from_mapping, top.table_of("hardware"), f"{path} [hardware]"),
        schedule=_foreign(ScheduleConfig.from_mapping, top.table_of("schedule"), f"{path} [schedule]"),
    )


def _foreign(parse: Callable[[Mapping[str, Any], str], T], data: Mapping[str, Any], where: str) -> T:
    """Tables validated by their own module; their errors become ConfigInvalid (exit 2) too."""
    try:
        return parse(data, where)
    except ConfigInvalid:
        raise
    except Exception as exc:  # noqa: BLE001 - any error of a table parser is a configuration error
        message = getattr(exc, "message", None) or str(exc)
        hint = getattr(exc, "hint", None)
        raise ConfigInvalid(message, hint=hint or None) from exc


def _name(r: _Reader, key: str, value: str) -> str:
    try:
        return layout.check_name(value, key)
    except InvalidInput:
        raise r.fail(key, "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", value,
                     hint=f"set {key} = \"...\" in the configuration" if key == "host" else None) from None


def _abs_dir(r: _Reader, key: str, value: str) -> str:
    if not os.path.isabs(value) or "\x00" in value:
        raise r.fail(key, "an absolute path", value)
    return os.path.normpath(value)


def _globs(r: _Reader, key: str) -> tuple[str, ...]:
    out = []
    for g in r.strings(key):
        try:
            out.append(check_glob(g))
        except InvalidInput as exc:
            raise r.fail(key, f"a list of path globs relative to root ({exc.message})") from None
    return tuple(out)


def _inside(child: str, parent: str) -> bool:
    return child == parent or child.startswith(parent.rstrip("/") + "/")


def _check_state_dir(r: _Reader, root: str, state_dir: str) -> None:
    """state_dir below root is implicitly preserved (implicit_preserve); root itself or above is not."""
    if state_dir == root:
        raise r.fail("state_dir", f"a directory other than root {root}", state_dir)
    if _inside(root, state_dir):
        raise r.fail("root", f"outside state_dir {state_dir}", root)


def guard_trust_anchor(path: str, s: os.stat_result, what: str) -> None:
    """Refuse a configuration or trusted key file that anyone but root (or the user regend runs
    as) could change: whoever can write it decides what this machine trusts (sshd's StrictModes)."""
    if s.st_uid not in (0, os.geteuid()):
        raise ConfigInvalid(f"{what} {path} is owned by uid {s.st_uid}, not by root; refusing to trust it",
                            hint=f"chown root:root {path}")
    if s.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        who = "anyone" if s.st_mode & stat.S_IWOTH else "its group"
        raise ConfigInvalid(f"{what} {path} is writable by {who}; refusing to trust it",
                            hint=f"chmod go-w {path}")


def _load_key(r: _Reader, path: str) -> PublicKey:
    try:
        guard_trust_anchor(path, os.stat(path), "trusted key file")
    except (OSError, ValueError):
        pass  # load_public_key words a missing, unreadable or unnamable (NUL byte) file
    try:
        return load_public_key(path)
    except InvalidInput as exc:
        raise ConfigInvalid(f"{r.where('trusted_keys')}: {exc.message}",
                            hint="copy the administrator's public key file (*.pub) here") from None


def _load_root(r: _Reader, path: str) -> Root:
    """The pinned root of trust: a root version (self-signed by a threshold of its root keys)."""
    from regen.store import verify_root  # only configs with a root pay for importing the signing code

    try:
        guard_trust_anchor(path, os.stat(path), "trust_root file")
        with open(path, "rb") as fp:
            data = fp.read(1 << 20)
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the name
        reason = exc.strerror if isinstance(exc, OSError) else "not a file name"
        raise ConfigInvalid(f"{r.where('trust_root')}: {path!r} cannot be read: {reason}",
                            hint="copy the file 'regen root init --out' wrote here") from None
    try:
        return verify_root(data, None, where=f"trust_root {path}")
    except RegenError as exc:
        raise ConfigInvalid(f"{r.where('trust_root')}: {exc.message}",
                            hint="copy the file 'regen root init --out' wrote here") from None


def _storage_options(r: _Reader, environ: Mapping[str, str]) -> dict[str, Any]:
    """The table with every "${NAME}" value taken from `environ`, in nested tables and lists too
    ([storage_options.headers] and the like)."""

    def expand(value: Any, where: str) -> Any:
        if isinstance(value, dict):
            return {k: expand(v, f"{where}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [expand(v, f"{where}[{i}]") for i, v in enumerate(value)]
        m = _ENV_REF.match(value) if isinstance(value, str) else None
        if not m:
            return value
        if m.group(1) not in environ:
            raise ConfigInvalid(f"{r.where(where)} refers to ${{{m.group(1)}}}, which is not set in the environment",
                                hint="set it (systemd: Environment= or EnvironmentFile=) or write the value")
        return environ[m.group(1)]

    return {k: expand(v, f"storage_options.{k}") for k, v in r.table_of("storage_options").items()}


def _option_files(opts: Any) -> list[str]:
    """Absolute paths named by storage option values (key files, known_hosts), nested ones too."""
    if isinstance(opts, Mapping):
        return [p for v in opts.values() for p in _option_files(v)]
    if isinstance(opts, (list, tuple)):
        return [p for v in opts for p in _option_files(v)]
    return [opts] if isinstance(opts, str) and opts.startswith("/") and "\x00" not in opts else []


def implicit_preserve(root: str, own: list[str]) -> tuple[str, ...]:
    """Globs (relative to root) of regend's own files that lie under root: whatever a generation's
    policy says, regend never quarantines its configuration, its trusted keys, the files its
    storage options name or its state_dir (issue 13: a root = "/" machine would not boot again)."""
    from regen.store import literal_glob

    out = []
    for path in own:
        p = os.path.normpath(os.path.abspath(path))
        if _inside(p, root) and p != root:
            out.append(literal_glob(os.path.relpath(p, root)))
    return tuple(dict.fromkeys(out))


def _limits(r: _Reader) -> Limits:
    r.only({"max_record_bytes", "max_manifest_bytes", "min_free_bytes"})
    d = Limits()
    return Limits(r.size("max_record_bytes", d.max_record_bytes), r.size("max_manifest_bytes", d.max_manifest_bytes),
                  r.size("min_free_bytes", d.min_free_bytes))


def _cache_budget(r: _Reader) -> int:
    r.only({"max_bytes"})
    return r.size("max_bytes", CACHE_MAX_BYTES)


def _retention(r: _Reader) -> QuarantineRetention:
    r.only({"max_age_days", "max_bytes", "max_run_bytes", "keep_runs"})
    d = QuarantineRetention()
    return QuarantineRetention(r.number("max_age_days", d.max_age_days), r.size("max_bytes", d.max_bytes),
                               r.size("max_run_bytes", d.max_run_bytes), r.integer("keep_runs", d.keep_runs, 0))


def _hooks(r: _Reader) -> Hooks:
    r.only({"start_check", "quarantine", "timeout"})
    return Hooks(r.strings("start_check"), r.text("quarantine"), r.number("timeout", 60.0, 0.001))


def _failures(r: _Reader) -> FailurePolicy:
    r.only({"max_consecutive", "action"})
    action = r.get("action", " or ".join(map(repr, ON_REPEATED)), lambda v: v in ON_REPEATED, "report")
    return FailurePolicy(r.integer("max_consecutive", 3, 1), action)


__all__ = ["DEFAULT_PATH", "DaemonConfig", "FailurePolicy", "HardwareConfig", "Hooks", "Limits", "QuarantineRetention",
           "ScheduleConfig", "guard_trust_anchor", "implicit_preserve", "load_config", "parse_config"]
