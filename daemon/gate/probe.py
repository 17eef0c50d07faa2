"""Collecting the hardware inventory: what the machine has, read through psutil (I/O).

`collect(sources, config, box)` reads the machine through `ProbeSources` (the real one is
`PsutilSources`: psutil, sysfs and smartctl; tests inject psutil-shaped fakes) and returns a
plain-JSON inventory; every call is time-boxed (see `timebox`), and a call that fails or hangs
is recorded in the inventory, never raised. Judging the inventory is `health.assess`.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import shutil
import subprocess
from typing import TYPE_CHECKING, Any, Protocol

from regen.daemon.gate.health import smart_verdict
from regen.daemon.gate.timebox import TimeBox

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from regen.daemon.tables import HardwareConfig

__all__ = ["ProbeSources", "PsutilSources", "collect"]


class _Psutil:
    """psutil, imported on first use (a dry run never probes the hardware)."""

    def __getattr__(self, name: str) -> Any:
        import psutil as real

        return getattr(real, name)


psutil = _Psutil()

# File systems whose calls can hang on a dead server or a stuck user-space daemon.
NETWORK_FSTYPES = frozenset({"nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "glusterfs", "9p", "afs",
                             "davfs", "lustre", "sshfs", "fuse", "fuseblk"})
# Read-only by design (snap packages, CDs): always 100% used and never writable, so not a fault.
READONLY_FSTYPES = frozenset({"squashfs", "iso9660", "udf", "erofs", "cramfs"})
# Local file systems that have no /dev/ device name.
DEVICELESS_LOCAL_FSTYPES = frozenset({"zfs", "bcachefs"})
OUTPUT_TAIL = 2000  # characters of smartctl's output kept in the inventory


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
