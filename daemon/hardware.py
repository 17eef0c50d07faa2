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
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


class _Psutil:
    """psutil, imported on first use (a dry run never probes the hardware)."""

    def __getattr__(self, name: str) -> Any:
        import psutil as real

        return getattr(real, name)


psutil = _Psutil()
from regen.store import HardwareFinding
from regen.store.errors import EXIT_USAGE, RegenError

__all__ = [
    "FakeProbe", "HardwareConfig", "HardwareConfigInvalid", "HardwareProbe", "Outcome", "ProbeResult",
    "ProbeSources", "PsutilProbe", "PsutilSources", "TimeBox", "assess", "call_with_timeout", "collect",
    "smart_verdict",
]

# File systems whose calls can hang on a dead server or a stuck user-space daemon.
NETWORK_FSTYPES = frozenset({"nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "glusterfs", "9p", "afs",
                             "davfs", "lustre", "sshfs", "fuse", "fuseblk"})
# Read-only by design (snap packages, CDs): always 100% used and never writable, so not a fault.
READONLY_FSTYPES = frozenset({"squashfs", "iso9660", "udf", "erofs", "cramfs"})
# Local file systems that have no /dev/ device name.
DEVICELESS_LOCAL_FSTYPES = frozenset({"zfs", "bcachefs"})
SMART_REPLACE_BITS = 0b0001_1000  # bit 3: "DISK FAILING"; bit 4: prefail attribute at threshold
SMART_WARN_BITS = 0b1110_0000     # bits 5-7: past threshold crossings, error log, self-test log
SMART_UNAVAILABLE_BITS = 0b0000_0111  # bits 0-2: bad args, cannot open / no SMART, command failed
OUTPUT_TAIL = 2000


class HardwareConfigInvalid(RegenError):
    """A [hardware] setting regend cannot use."""

    exit_code = EXIT_USAGE
    default_hint = "see contrib/regend.toml for the expected keys"


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
# time-boxed calls


@dataclass(frozen=True, slots=True)
class Outcome:
    """The end of one time-boxed call: its value, the exception it raised, or that it hung."""

    value: Any = None
    error: BaseException | None = None
    timed_out: bool = False

    def describe(self, timeout: float) -> str:
        if self.timed_out:
            return f"did not answer within {timeout:g} s"
        return f"{type(self.error).__name__}: {self.error}" if self.error else "ok"


class _Call:
    def __init__(self, fn: Callable[[], Any], name: str) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"regen-probe {name}", daemon=True)

    def _run(self) -> None:
        try:
            self.value = self.fn()
        except BaseException as exc:
            self.error = exc
        finally:
            self.done.set()


class TimeBox:
    """Runs calls in daemon threads against one shared deadline; remembers calls still stuck."""

    def __init__(self) -> None:
        self._stuck: dict[str, _Call] = {}

    def run(self, calls: Mapping[str, Callable[[], Any]], timeout: float) -> dict[str, Outcome]:
        """All `calls` at once; each gets until `timeout` seconds from now. Never raises."""
        started: dict[str, _Call] = {}
        out: dict[str, Outcome] = {}
        for key, fn in calls.items():
            old = self._stuck.get(key)
            if old is not None and not old.done.is_set():
                out[key] = Outcome(timed_out=True)  # still hung since an earlier probe: do not add a thread
                continue
            self._stuck.pop(key, None)
            started[key] = call = _Call(fn, key)
            call.thread.start()
        deadline = time.monotonic() + timeout
        for key, call in started.items():
            if call.done.wait(max(0.0, deadline - time.monotonic())):
                out[key] = Outcome(call.value, call.error)
            else:
                self._stuck[key] = call
                out[key] = Outcome(timed_out=True)
        return {key: out[key] for key in calls}


def call_with_timeout(fn: Callable[[], Any], timeout: float) -> Outcome:
    """Run `fn` in a daemon thread; give up on it after `timeout` seconds."""
    return TimeBox().run({"call": fn}, timeout)["call"]


# ---------------------------------------------------------------------------------------------
# sources: the psutil-like functions the probe reads, injectable for tests


class ProbeSources(Protocol):
    """Where PsutilProbe reads the machine. Values are psutil-shaped (attributes as in psutil)."""

    def cpu_count(self) -> int | None: ...
    def virtual_memory(self) -> Any: ...                       # .total, .available
    def disk_partitions(self) -> Sequence[Any]: ...            # every mount: .device .mountpoint .fstype .opts
    def disk_usage(self, path: str) -> Any: ...                # .total .used .free .percent (statvfs)
    def net_if_stats(self) -> Mapping[str, Any]: ...           # name -> .isup (.flags)
    def net_io_counters(self) -> Mapping[str, Any]: ...        # name -> .errin .errout .dropin .dropout .packets_*
    def sensors_temperatures(self) -> Mapping[str, Sequence[Any]]: ...  # chip -> [.label .current .high .critical]
    def sensors_battery(self) -> Any | None: ...               # .percent .power_plugged
    def disk_of(self, device: str) -> str: ...                 # partition device -> whole-disk device
    def run_smartctl(self, device: str, timeout: float) -> tuple[int, str] | None: ...  # None: not installed


class PsutilSources:
    """The real machine, through psutil, sysfs and smartctl."""

    def cpu_count(self) -> int | None:
        n = psutil.cpu_count(logical=True)
        return int(n) if n else None

    def virtual_memory(self) -> Any:
        return psutil.virtual_memory()

    def disk_partitions(self) -> Sequence[Any]:
        return list(psutil.disk_partitions(all=True))

    def disk_usage(self, path: str) -> Any:
        return psutil.disk_usage(path)

    def net_if_stats(self) -> Mapping[str, Any]:
        return dict(psutil.net_if_stats())

    def net_io_counters(self) -> Mapping[str, Any]:
        return dict(psutil.net_io_counters(pernic=True))

    def sensors_temperatures(self) -> Mapping[str, Sequence[Any]]:
        fn = getattr(psutil, "sensors_temperatures", None)  # absent on some platforms
        return dict(fn()) if fn else {}

    def sensors_battery(self) -> Any | None:
        fn = getattr(psutil, "sensors_battery", None)
        return fn() if fn else None

    def disk_of(self, device: str) -> str:
        """/dev/sda1 -> /dev/sda, /dev/nvme0n1p2 -> /dev/nvme0n1 (via sysfs); LVM/LUKS -> first slave."""
        name = os.path.basename(os.path.realpath(device))
        for _ in range(8):
            sys_dir = os.path.realpath(f"/sys/class/block/{name}")
            slaves = os.path.join(sys_dir, "slaves")
            if os.path.exists(os.path.join(sys_dir, "partition")):
                name = os.path.basename(os.path.dirname(sys_dir))
            elif os.path.isdir(slaves) and os.listdir(slaves):
                name = sorted(os.listdir(slaves))[0]
            else:
                break
        return f"/dev/{name}" if os.path.exists(f"/dev/{name}") else device

    def run_smartctl(self, device: str, timeout: float) -> tuple[int, str] | None:
        exe = shutil.which("smartctl")
        if exe is None:
            return None
        # -n standby: never spin up a sleeping disk just to ask it (reported as bit 1, "unavailable").
        proc = subprocess.run([exe, "-H", "-n", "standby", device], capture_output=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, check=False)
        return proc.returncode, proc.stdout.decode("utf-8", "replace")[-OUTPUT_TAIL:]


# ---------------------------------------------------------------------------------------------
# collecting the inventory (I/O)


def _classify_mount(p: Any, config: HardwareConfig) -> str | None:
    """'local', 'network' or None (pseudo, read-only by design, or ignored) for one mount."""
    mp, fstype, device = str(p.mountpoint), str(p.fstype), str(p.device)
    if mp in config.required_mounts:
        return "network" if _is_network(fstype) else "local"
    if any(fnmatch.fnmatchcase(mp, g) for g in config.ignore_mounts) or fstype in READONLY_FSTYPES:
        return None
    if _is_network(fstype):
        return "network"
    if mp == "/" or device.startswith("/dev/") or fstype in DEVICELESS_LOCAL_FSTYPES:
        return "local"
    return None


def _is_network(fstype: str) -> bool:
    return fstype in NETWORK_FSTYPES or fstype.startswith("fuse.")


def _attrs(obj: Any, names: Iterable[str]) -> dict[str, Any]:
    return {n: getattr(obj, n) for n in names if isinstance(getattr(obj, n, None), (int, float))}


def collect(sources: ProbeSources, config: HardwareConfig, box: TimeBox | None = None) -> dict[str, Any]:
    """The JSON-able inventory of the machine; probe failures are recorded under "errors"."""
    box = box or TimeBox()
    t = config.probe_timeout
    inv: dict[str, Any] = {"errors": {}, "timeout": t}
    errors: dict[str, str] = inv["errors"]
    basic = box.run({"cpus": sources.cpu_count, "memory": sources.virtual_memory,
                     "partitions": sources.disk_partitions, "interfaces": sources.net_if_stats,
                     "counters": sources.net_io_counters, "temperatures": sources.sensors_temperatures,
                     "battery": sources.sensors_battery}, t)
    for key, outcome in basic.items():
        if outcome.timed_out or outcome.error is not None:
            errors[key] = outcome.describe(t)
    inv["cpus"] = basic["cpus"].value if isinstance(basic["cpus"].value, int) else None
    mem = basic["memory"].value
    inv["memory"] = _attrs(mem, ("total", "available")) if mem is not None else None
    _collect_partitions(inv, basic["partitions"].value or [], sources, config, box)
    _collect_interfaces(inv, basic["interfaces"].value or {}, basic["counters"].value or {})
    inv["temperatures"] = {
        str(chip): [{"label": str(getattr(s, "label", "") or ""), **_attrs(s, ("current", "high", "critical"))}
                    for s in sensors]
        for chip, sensors in (basic["temperatures"].value or {}).items()}
    bat = basic["battery"].value
    inv["battery"] = None if bat is None else {
        "percent": float(bat.percent), "plugged": getattr(bat, "power_plugged", None)}
    return inv


def _collect_partitions(inv: dict[str, Any], parts: Sequence[Any], sources: ProbeSources,
                        config: HardwareConfig, box: TimeBox) -> None:
    inv["devices"] = sorted({str(p.device) for p in parts if str(p.device).startswith("/dev/")})
    visible = {str(p.mountpoint): p for p in parts}  # a later mount on the same point hides the earlier
    inv["mountpoints"] = sorted(visible)
    partitions: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    for mp, p in visible.items():
        kind = _classify_mount(p, config)
        if kind is None:
            continue
        if kind == "network" and not config.network_filesystems and mp not in config.required_mounts:
            skipped[mp] = f"network file system {p.fstype} (set network_filesystems = true to probe it)"
            continue
        opts = str(getattr(p, "opts", "")).split(",")
        partitions[mp] = {"device": str(p.device), "fstype": str(p.fstype), "network": kind == "network",
                          "readonly": "ro" in opts}
    usage = box.run({f"usage:{mp}": functools.partial(sources.disk_usage, mp) for mp in partitions},
                    config.probe_timeout)
    for mp, entry in partitions.items():
        outcome = usage[f"usage:{mp}"]
        if outcome.timed_out or outcome.error is not None:
            entry["error"] = outcome.describe(config.probe_timeout)
            entry["timed_out"] = outcome.timed_out
        else:
            entry.update(_attrs(outcome.value, ("total", "used", "free", "percent")))
    inv["partitions"] = partitions
    inv["skipped_mounts"] = skipped
    inv["smart"] = _collect_smart(partitions, sources, config, box)


def _collect_smart(partitions: Mapping[str, Mapping[str, Any]], sources: ProbeSources,
                   config: HardwareConfig, box: TimeBox) -> dict[str, Any]:
    if config.smartctl == "off":
        return {}
    devices = {e["device"] for e in partitions.values() if not e["network"] and e["device"].startswith("/dev/")}
    disks = sorted({sources.disk_of(d) for d in devices})
    t = config.probe_timeout
    results = box.run({f"smart:{d}": functools.partial(sources.run_smartctl, d, t) for d in disks}, t)
    smart: dict[str, Any] = {}
    for disk in disks:
        outcome = results[f"smart:{disk}"]
        if outcome.timed_out or outcome.error is not None:
            smart[disk] = {"error": outcome.describe(t), "timed_out": outcome.timed_out}
        elif outcome.value is not None:
            status, output = outcome.value
            smart[disk] = {"status": int(status), "verdict": smart_verdict(int(status)),
                           "output": output[-OUTPUT_TAIL:]}
    return smart


def _collect_interfaces(inv: dict[str, Any], stats: Mapping[str, Any], counters: Mapping[str, Any]) -> None:
    names = ("errin", "errout", "dropin", "dropout", "packets_sent", "packets_recv")
    interfaces: dict[str, dict[str, Any]] = {}
    for name, st in stats.items():
        flags = str(getattr(st, "flags", ""))
        entry = {"up": bool(st.isup), "loopback": name == "lo" or "loopback" in flags.split(",")}
        if name in counters:
            entry.update(_attrs(counters[name], names))
        interfaces[str(name)] = entry
    inv["interfaces"] = interfaces


def smart_verdict(status: int) -> str:
    """smartctl's exit status is a bit mask: 'replace' (bit 3/4), 'warn' (5-7), 'unavailable' (0-2), 'ok'."""
    if status & SMART_REPLACE_BITS:
        return "replace"
    if status & SMART_WARN_BITS:
        return "warn"
    if status & SMART_UNAVAILABLE_BITS:
        return "unavailable"
    return "ok"


# ---------------------------------------------------------------------------------------------
# judging the inventory (pure)


def _finding(component: str, severity: str, message: str, usable: bool, **evidence: Any) -> HardwareFinding:
    return HardwareFinding(component, severity, message, evidence, usable)


def _table(d: Any, key: str) -> dict[str, Any]:
    v = d.get(key) if isinstance(d, Mapping) else None
    return v if isinstance(v, dict) else {}


def assess(inventory: Mapping[str, Any], previous: Mapping[str, Any] | None,
           config: HardwareConfig) -> tuple[HardwareFinding, ...]:
    """Findings for an inventory, compared with the previous one (which may be None or malformed)."""
    prev: Mapping[str, Any] = previous if isinstance(previous, Mapping) else {}
    out: list[HardwareFinding] = []
    errors = _table(inventory, "errors")
    for key, msg in sorted(errors.items()):
        component = {"cpus": "cpu", "partitions": "disk", "interfaces": "net", "counters": "net",
                     "temperatures": "temp", "battery": "battery"}.get(key, key)
        out.append(_finding(component, "warn", f"{key} could not be probed: {msg}", True, probe=key, error=msg))
    out += _assess_cpu_memory(inventory, prev, config)
    if "partitions" not in errors:
        out += _assess_partitions(inventory, prev, config)
    out += _assess_smart(inventory)
    if "interfaces" not in errors:
        out += _assess_interfaces(inventory, prev, config)
    out += _assess_temperatures(inventory, config)
    bat = inventory.get("battery")
    if isinstance(bat, Mapping) and config.battery_min_percent > 0 and not bat.get("plugged") \
            and bat.get("percent", 100) < config.battery_min_percent:
        out.append(_finding("battery", "warn", f"battery at {bat['percent']:.0f}% and not charging (minimum "
                            f"{config.battery_min_percent:g}%)", True, **bat))
    return tuple(out)


def _assess_cpu_memory(inv: Mapping[str, Any], prev: Mapping[str, Any],
                       config: HardwareConfig) -> list[HardwareFinding]:
    out = []
    cpus, prev_cpus = inv.get("cpus"), prev.get("cpus")
    if isinstance(cpus, int):
        if cpus < config.min_cpus:
            out.append(_finding("cpu", "fail", f"{cpus} CPUs online, {config.min_cpus} required", False,
                                cpus=cpus, min_cpus=config.min_cpus))
        elif isinstance(prev_cpus, int) and cpus < prev_cpus:
            out.append(_finding("cpu", "warn", f"{cpus} CPUs online, {prev_cpus} at the last run", True,
                                cpus=cpus, previous=prev_cpus))
    total = _table(inv, "memory").get("total")
    prev_total = _table(prev, "memory").get("total")
    if isinstance(total, int):
        if total < config.min_memory_bytes:
            out.append(_finding("memory", "fail", f"{_human(total)} of memory, {_human(config.min_memory_bytes)} "
                                "required", False, total=total, min_memory_bytes=config.min_memory_bytes))
        if isinstance(prev_total, int) and prev_total > 0 and \
                (prev_total - total) * 100 > prev_total * config.memory_shrink_percent:
            out.append(_finding("memory", "warn", f"memory shrank from {_human(prev_total)} to {_human(total)} "
                                "since the last run (a memory module may have failed)", True,
                                total=total, previous=prev_total))
    return out


def _assess_partitions(inv: Mapping[str, Any], prev: Mapping[str, Any],
                       config: HardwareConfig) -> list[HardwareFinding]:
    out = []
    parts, prev_parts = _table(inv, "partitions"), _table(prev, "partitions")
    for mp, e in sorted(parts.items()):
        required = mp in config.required_mounts
        comp, ev = f"mount:{mp}", {"device": e.get("device"), "fstype": e.get("fstype"), "mountpoint": mp}
        if "error" in e:
            hard = required or not e.get("network")
            out.append(_finding(comp, "fail" if hard else "warn",
                                f"{mp} ({e.get('device')}) cannot be read: {e['error']}", False,
                                **ev, error=e["error"], timed_out=bool(e.get("timed_out"))))
            continue
        was_rw = _table(prev_parts, mp).get("readonly") is False
        if e.get("readonly") and (required or was_rw):
            why = "it must be writable" if required else "it was writable at the last run (file system errors?)"
            out.append(_finding(comp, "fail", f"{mp} ({e.get('device')}) is mounted read-only; {why}", False, **ev))
        elif e.get("readonly") and mp not in prev_parts:
            out.append(_finding(comp, "info", f"{mp} ({e.get('device')}) is mounted read-only", True, **ev))
        pct = e.get("percent")
        if isinstance(pct, (int, float)) and pct >= config.disk_usage_warn:
            fail = pct >= config.disk_usage_fail
            limit = config.disk_usage_fail if fail else config.disk_usage_warn
            out.append(_finding(comp, "fail" if fail else "warn", f"{mp} is {pct:.1f}% full (limit {limit:g}%)",
                                not fail, **ev, percent=pct, free=e.get("free"), total=e.get("total")))
    for mp in config.required_mounts:
        if mp not in parts:
            out.append(_finding(f"mount:{mp}", "fail", f"{mp} is not mounted; it is required", False, mountpoint=mp))
    devices, mounted = set(inv.get("devices") or ()), set(inv.get("mountpoints") or parts)
    gone_disks: set[str] = set()
    for mp, e in sorted(prev_parts.items()):
        if mp in mounted or mp in config.required_mounts or not isinstance(e, Mapping) or e.get("network") \
                or any(fnmatch.fnmatchcase(mp, g) for g in config.ignore_mounts):
            continue
        dev = str(e.get("device"))
        if dev.startswith("/dev/") and dev not in devices:
            if dev not in gone_disks:
                gone_disks.add(dev)
                out.append(_finding(f"disk:{dev}", "fail", f"disk {dev} (mounted at {mp} at the last run) is gone",
                                    False, device=dev, mountpoint=mp))
        else:
            out.append(_finding(f"mount:{mp}", "fail", f"{mp} ({dev}) was mounted at the last run and is not now",
                                False, device=dev, mountpoint=mp))
    return out


def _assess_smart(inv: Mapping[str, Any]) -> list[HardwareFinding]:
    out = []
    for disk, e in sorted(_table(inv, "smart").items()):
        if not isinstance(e, Mapping):
            continue
        if "error" in e:
            out.append(_finding(f"disk:{disk}", "warn", f"smartctl on {disk}: {e['error']}", True, device=disk,
                                error=e["error"]))
        elif e.get("verdict") == "replace":
            out.append(_finding(f"disk:{disk}", "fail", f"SMART says disk {disk} is failing: replace it now", False,
                                device=disk, smartctl_status=e.get("status"), output=e.get("output", "")))
        elif e.get("verdict") == "warn":
            out.append(_finding(f"disk:{disk}", "warn", f"SMART reports past errors or threshold crossings on {disk}",
                                True, device=disk, smartctl_status=e.get("status"), output=e.get("output", "")))
    return out


def _assess_interfaces(inv: Mapping[str, Any], prev: Mapping[str, Any],
                       config: HardwareConfig) -> list[HardwareFinding]:
    out = []
    ifs, prev_ifs = _table(inv, "interfaces"), _table(prev, "interfaces")
    for name in config.required_interfaces:
        if name not in ifs:
            out.append(_finding(f"net:{name}", "fail", f"network interface {name} is missing; it is required",
                                False, interface=name))
    for name, e in sorted(ifs.items()):
        required = name in config.required_interfaces
        if not required and (e.get("loopback") or any(fnmatch.fnmatchcase(name, g) for g in config.ignore_interfaces)):
            continue
        counts = {k: e[k] for k in ("errin", "errout", "dropin", "dropout", "packets_sent", "packets_recv") if k in e}
        bad = sum(counts.get(k, 0) for k in ("errin", "errout", "dropin", "dropout"))
        packets = counts.get("packets_sent", 0) + counts.get("packets_recv", 0)
        if not e.get("up"):
            was_up = _table(prev_ifs, name).get("up") is True
            if required or was_up or bad:
                why = "it is required" if required else "it was up at the last run" if was_up else \
                    f"with {bad} errors/drops"
                out.append(_finding(f"net:{name}", "fail" if required else "warn", f"network interface {name} is "
                                    f"down ({why})", False, interface=name, **counts))
        elif bad and bad * 100 > max(packets, 1) * config.net_error_percent:
            out.append(_finding(f"net:{name}", "warn", f"network interface {name}: {bad} errors/drops in {packets} "
                                f"packets (over {config.net_error_percent:g}%)", True, interface=name, **counts))
    for name, e in sorted(prev_ifs.items()):
        if name not in ifs and name not in config.required_interfaces and isinstance(e, Mapping) \
                and not e.get("loopback") and not any(fnmatch.fnmatchcase(name, g) for g in config.ignore_interfaces):
            out.append(_finding(f"net:{name}", "warn", f"network interface {name} existed at the last run and is "
                                "gone", False, interface=name))
    return out


def _temperature_level(s: Mapping[str, Any], config: HardwareConfig) -> tuple[int, str, float] | None:
    """(2, "critical", mark) or (1, mark name, mark) for a hot sensor; None when it is fine or unreadable."""
    cur = s.get("current")
    marks = {k: float(v) for k in ("high", "critical") if isinstance(v := s.get(k), (int, float)) and v > 0}
    if not isinstance(cur, (int, float)) or not marks:
        return None
    if "critical" in marks and cur >= marks["critical"] - config.temperature_fail_margin:
        return 2, "critical", marks["critical"]
    name = "high" if "high" in marks else "critical"  # no high mark: warn near the critical one
    if cur >= marks[name] - config.temperature_warn_margin:
        return 1, name, marks[name]
    return None


def _assess_temperatures(inv: Mapping[str, Any], config: HardwareConfig) -> list[HardwareFinding]:
    out = []
    for chip, sensors in sorted(_table(inv, "temperatures").items()):
        hot = [(lv, s) for s in (sensors if isinstance(sensors, list) else ()) if isinstance(s, Mapping)
               and (lv := _temperature_level(s, config))]
        if not hot:
            continue
        (level, mark, value), s = max(hot, key=lambda h: (h[0][0], h[1]["current"]))
        label = f" {s['label']}" if s.get("label") else ""
        out.append(_finding(f"temp:{chip}", "fail" if level == 2 else "warn",
                            f"{chip}{label} at {s['current']:g} °C, at or over its {mark} mark ({value:g} °C)",
                            level < 2, sensor=chip, **s))
    return out


def _human(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    x = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        x /= 1024
        if x < 1024 or unit == "TiB":
            break
    return f"{x:.1f} {unit}"


# ---------------------------------------------------------------------------------------------
# the real probe


class PsutilProbe:
    """The machine's hardware through psutil (or injected `sources`), every call time-boxed."""

    def __init__(self, config: HardwareConfig, sources: ProbeSources | None = None) -> None:
        self.config = config
        self.sources: ProbeSources = sources if sources is not None else PsutilSources()
        self._box = TimeBox()  # keeps calls that hung so the next probe does not start them again

    def probe(self, previous: Mapping[str, Any] | None) -> ProbeResult:
        inventory = collect(self.sources, self.config, self._box)
        return ProbeResult(inventory, assess(inventory, previous, self.config))

