"""regend.toml -> DaemonConfig, parsed once at the edge (I/O: reads the file and key files only).

The top-level keys, the trust anchors and the storage options are read here; each table
([limits], [hardware], [schedule], ...) is a value of tables.py with its own validation.

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

from regen.daemon.errors import ConfigInvalid
from regen.daemon.tables import (
    CACHE_MAX_BYTES,
    JUNK_MODES,
    XATTR_MODES,
    FailurePolicy,
    HardwareConfig,
    Hooks,
    Limits,
    QuarantineRetention,
    ScheduleConfig,
    TableReader,
    cache_budget_of,
    failures_of,
    hooks_of,
    limits_of,
    retention_of,
)
from regen.store import (
    InvalidInput,
    PublicKey,
    RegenError,
    check_glob,
    layout,
    load_public_key,
    trust_map,
)

if TYPE_CHECKING:
    from regen.store import Root

DEFAULT_PATH = "/etc/regen/regend.toml"
DEFAULT_STATE_DIR = "/var/lib/regen"
_ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
T = TypeVar("T")
_TOP_KEYS = {"store", "storage_options", "channel", "host", "root", "state_dir", "trusted_keys", "trust_root",
             "preserve", "junk", "limits", "quarantine", "hardware", "hooks", "schedule", "failures", "reports",
             "transfers", "xattrs", "cache"}


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
    top = TableReader(path, data)
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
    reports = TableReader(path, top.table_of("reports"), "reports")
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
        limits=limits_of(TableReader(path, top.table_of("limits"), "limits")),
        quarantine=retention_of(TableReader(path, top.table_of("quarantine"), "quarantine")),
        hooks=hooks_of(TableReader(path, top.table_of("hooks"), "hooks")),
        failures=failures_of(TableReader(path, top.table_of("failures"), "failures")),
        reports_keep=reports.integer("keep", 50, 1),
        metrics_file=metrics_file,
        report_store=report_store,
        transfers=top.integer("transfers", 8, 1), xattrs=xattrs,
        cache_max_bytes=cache_budget_of(TableReader(path, top.table_of("cache"), "cache")),
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


def _name(r: TableReader, key: str, value: str) -> str:
    try:
        return layout.check_name(value, key)
    except InvalidInput:
        raise r.fail(key, "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", value,
                     hint=f"set {key} = \"...\" in the configuration" if key == "host" else None) from None


def _abs_dir(r: TableReader, key: str, value: str) -> str:
    if not os.path.isabs(value) or "\x00" in value:
        raise r.fail(key, "an absolute path", value)
    return os.path.normpath(value)


def _globs(r: TableReader, key: str) -> tuple[str, ...]:
    out = []
    for g in r.strings(key):
        try:
            out.append(check_glob(g))
        except InvalidInput as exc:
            raise r.fail(key, f"a list of path globs relative to root ({exc.message})") from None
    return tuple(out)


def _inside(child: str, parent: str) -> bool:
    return child == parent or child.startswith(parent.rstrip("/") + "/")


def _check_state_dir(r: TableReader, root: str, state_dir: str) -> None:
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


def _load_key(r: TableReader, path: str) -> PublicKey:
    try:
        guard_trust_anchor(path, os.stat(path), "trusted key file")
    except (OSError, ValueError):
        pass  # load_public_key words a missing, unreadable or unnamable (NUL byte) file
    try:
        return load_public_key(path)
    except InvalidInput as exc:
        raise ConfigInvalid(f"{r.where('trusted_keys')}: {exc.message}",
                            hint="copy the administrator's public key file (*.pub) here") from None


def _load_root(r: TableReader, path: str) -> Root:
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


def _storage_options(r: TableReader, environ: Mapping[str, str]) -> dict[str, Any]:
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


__all__ = ["DEFAULT_PATH", "DaemonConfig", "FailurePolicy", "HardwareConfig", "Hooks", "Limits", "QuarantineRetention",
           "ScheduleConfig", "guard_trust_anchor", "implicit_preserve", "load_config", "parse_config"]
