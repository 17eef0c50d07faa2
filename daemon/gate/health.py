"""Judging a hardware inventory: what is wrong with the machine, as findings (pure).

`assess(inventory, previous, config)` compares what `probe.collect` saw with the last run's
inventory and the [hardware] thresholds; `smart_verdict` reads smartctl's exit status.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from regen.store import HardwareFinding

if TYPE_CHECKING:
    from regen.daemon.tables import HardwareConfig

__all__ = ["assess", "gauges", "smart_verdict"]

SMART_REPLACE_BITS = 0b0001_1000  # bit 3: "DISK FAILING"; bit 4: prefail attribute at threshold
SMART_WARN_BITS = 0b1110_0000     # bits 5-7: past threshold crossings, error log, self-test log
SMART_UNAVAILABLE_BITS = 0b0000_0111  # bits 0-2: bad args, cannot open / no SMART, command failed


def smart_verdict(status: int) -> str:
    """smartctl's exit status is a bit mask: 'replace' (bit 3/4), 'warn' (5-7), 'unavailable' (0-2), 'ok'."""
    if status & SMART_REPLACE_BITS:
        return "replace"
    if status & SMART_WARN_BITS:
        return "warn"
    if status & SMART_UNAVAILABLE_BITS:
        return "unavailable"
    return "ok"


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


def gauges(inventory: Mapping[str, Any]) -> dict[str, float]:
    """The few numbers a fleet view plots over time: fullest local disk, hottest sensor, battery.

    Kept in the report's hardware step (issue 16), so history shows trends without shipping
    the whole inventory with every run.
    """
    out: dict[str, float] = {}
    disks = _numbers(e.get("percent") for e in _table(inventory, "partitions").values()
                     if isinstance(e, Mapping) and not e.get("network") and not e.get("readonly"))
    if disks:
        out["disk_used_percent"] = round(max(disks), 1)
    temps = _numbers(s.get("current") for sensors in _table(inventory, "temperatures").values()
                     if isinstance(sensors, list) for s in sensors if isinstance(s, Mapping))
    if temps:
        out["temperature_celsius"] = round(max(temps), 1)
    bat = inventory.get("battery")
    if isinstance(bat, Mapping) and isinstance(bat.get("percent"), (int, float)):
        out["battery_percent"] = round(float(bat["percent"]), 1)
    return out


def _numbers(values: Iterable[Any]) -> list[float]:
    return [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
