"""Hardware diagnosis: faults a machine can have, simulated through injected psutil-like sources.

No real disk can be made to die in a test, so PsutilProbe reads a `Sources` object that
behaves like psutil would on the broken machine (the only substitute the brief allows);
one test runs the real probe on this machine.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from types import SimpleNamespace as NS
from typing import Any

import pytest

from regen.daemon.errors import HardwareConfigInvalid
from regen.daemon.gate.hardware import (
    FakeProbe,
    HardwareConfig,
    ProbeResult,
    PsutilProbe,
)
from regen.daemon.gate.health import smart_verdict
from regen.store import HardwareFinding
from regen.store.errors import EXIT_USAGE

GiB = 1 << 30


def mount(mountpoint: str, device: str, fstype: str = "ext4", opts: str = "rw,relatime") -> NS:
    return NS(device=device, mountpoint=mountpoint, fstype=fstype, opts=opts)


def nic(up: bool = True, errin: int = 0, errout: int = 0, dropin: int = 0, dropout: int = 0,
        packets: int = 10_000) -> tuple[NS, NS]:
    stats = NS(isup=up, flags="up,broadcast,running" if up else "broadcast")
    counters = NS(errin=errin, errout=errout, dropin=dropin, dropout=dropout, packets_sent=packets // 2,
                  packets_recv=packets // 2)
    return stats, counters


@dataclass
class Sources:
    """A machine as psutil would describe it; every field can be broken by a test."""

    cpus: int = 4
    memory_total: int = 8 * GiB
    mounts: list[NS] = field(default_factory=lambda: [
        mount("/", "/dev/sda1"), mount("/srv", "/dev/sdb1"),
        NS(device="proc", mountpoint="/proc", fstype="proc", opts="rw"),
        NS(device="tmpfs", mountpoint="/run", fstype="tmpfs", opts="rw")])
    percent: dict[str, float] = field(default_factory=dict)       # mountpoint -> % used (default 40)
    hang: dict[str, threading.Event] = field(default_factory=dict)  # statvfs blocks until the event is set
    broken: dict[str, OSError] = field(default_factory=dict)      # statvfs raises
    nics: dict[str, tuple[NS, NS]] = field(default_factory=lambda: {"lo": nic(), "eth0": nic()})
    temps: dict[str, list[NS]] = field(default_factory=dict)
    battery: NS | None = None
    smart: dict[str, int] | None = None                            # disk -> smartctl exit status; None: not installed
    usage_calls: list[str] = field(default_factory=list)
    smart_calls: list[str] = field(default_factory=list)

    def cpu_count(self) -> int:
        return self.cpus

    def virtual_memory(self) -> NS:
        return NS(total=self.memory_total, available=self.memory_total // 2, percent=50.0)

    def disk_partitions(self) -> list[NS]:
        return list(self.mounts)

    def disk_usage(self, path: str) -> NS:
        self.usage_calls.append(path)
        if path in self.hang:
            self.hang[path].wait()
        if path in self.broken:
            raise self.broken[path]
        pct = self.percent.get(path, 40.0)
        return NS(total=100 * GiB, used=int(pct * GiB), free=int((100 - pct) * GiB), percent=pct)

    def net_if_stats(self) -> dict[str, NS]:
        return {name: s for name, (s, _) in self.nics.items()}

    def net_io_counters(self) -> dict[str, NS]:
        return {name: c for name, (_, c) in self.nics.items()}

    def sensors_temperatures(self) -> dict[str, list[NS]]:
        return self.temps

    def sensors_battery(self) -> NS | None:
        return self.battery

    def disk_of(self, device: str) -> str:
        return device.rstrip("0123456789")

    def run_smartctl(self, device: str, timeout: float) -> tuple[int, str] | None:
        self.smart_calls.append(device)
        if self.smart is None:
            return None
        return self.smart.get(device, 0), "SMART overall-health self-assessment test result: ..."


@pytest.fixture
def release() -> Any:
    """Events that hanging fake calls wait on; all set at teardown so no thread outlives the test."""
    events: list[threading.Event] = []

    def make() -> threading.Event:
        events.append(threading.Event())
        return events[-1]
    yield make
    for e in events:
        e.set()


def probe(sources: Sources, previous: dict[str, Any] | None = None, **config: Any) -> ProbeResult:
    return PsutilProbe(HardwareConfig.from_mapping(config, "test"), sources=sources).probe(previous)


def by_component(result: ProbeResult) -> dict[str, HardwareFinding]:
    return {f.component: f for f in result.findings}


def test_healthy_machine_has_no_findings_and_a_json_inventory() -> None:
    result = probe(Sources())
    assert result.findings == ()
    inv = json.loads(json.dumps(result.inventory))  # kept in the index as JSON
    assert inv["cpus"] == 4 and inv["memory"]["total"] == 8 * GiB
    assert set(inv["partitions"]) == {"/", "/srv"}  # pseudo file systems are not disks
    assert inv["partitions"]["/srv"]["device"] == "/dev/sdb1" and inv["partitions"]["/srv"]["percent"] == 40.0
    assert inv["interfaces"]["eth0"]["up"] is True


def test_a_disk_that_disappeared_since_the_last_run_is_named_and_unusable() -> None:
    before = probe(Sources()).inventory
    now = Sources(mounts=[mount("/", "/dev/sda1")])
    f = by_component(probe(now, before))["disk:/dev/sdb1"]
    assert f.severity == "fail" and not f.usable
    assert "/srv" in f.message and f.evidence["mountpoint"] == "/srv"


def test_a_partition_no_longer_mounted_while_its_disk_is_present() -> None:
    before = probe(Sources()).inventory
    now = Sources(mounts=[mount("/", "/dev/sda1"), mount("/var", "/dev/sdb1")])
    f = by_component(probe(now, before))["mount:/srv"]
    assert f.severity == "fail" and not f.usable and f.evidence["device"] == "/dev/sdb1"


def test_removable_media_in_ignore_mounts_may_come_and_go() -> None:
    before = probe(Sources(mounts=[mount("/", "/dev/sda1"), mount("/media/usb", "/dev/sdc1")])).inventory
    assert "/media/usb" not in before["partitions"]
    assert probe(Sources(mounts=[mount("/", "/dev/sda1")]), before).findings == ()


def test_memory_that_shrank_since_the_last_run_is_a_warning() -> None:
    before = probe(Sources(memory_total=16 * GiB)).inventory
    f = by_component(probe(Sources(memory_total=8 * GiB), before))["memory"]
    assert f.severity == "warn" and f.usable
    assert f.evidence == {"total": 8 * GiB, "previous": 16 * GiB}
    # the kernel's own share varies a little between boots: not a finding
    assert probe(Sources(memory_total=16 * GiB - (1 << 20)), before).findings == ()


def test_less_memory_or_fewer_cpus_than_required_refuse_the_part() -> None:
    found = by_component(probe(Sources(memory_total=2 * GiB, cpus=1), min_memory_bytes=4 * GiB, min_cpus=2))
    assert found["memory"].severity == "fail" and not found["memory"].usable
    assert found["cpu"].severity == "fail" and "2 required" in found["cpu"].message


def test_fewer_cpus_than_at_the_last_run() -> None:
    before = probe(Sources(cpus=8)).inventory
    f = by_component(probe(Sources(cpus=4), before))["cpu"]
    assert f.severity == "warn" and f.evidence == {"cpus": 4, "previous": 8}


def test_read_only_mounts() -> None:
    ro = Sources(mounts=[mount("/", "/dev/sda1"), mount("/srv", "/dev/sdb1", opts="ro,relatime")])
    # required to be writable
    f = by_component(probe(ro, required_mounts=["/srv"]))["mount:/srv"]
    assert f.severity == "fail" and not f.usable and "read-only" in f.message
    # writable at the last run: the kernel remounted it after errors
    before = probe(Sources()).inventory
    f = by_component(probe(ro, before))["mount:/srv"]
    assert f.severity == "fail" and not f.usable
    # read-only since we first saw it, and not required: noted, not held against the machine
    first = by_component(probe(ro))["mount:/srv"]
    assert first.severity == "info" and first.usable
    # snap/CD images are read-only and full by design
    snap = Sources(mounts=[mount("/", "/dev/sda1"), mount("/snap/core/1", "/dev/loop0", "squashfs", "ro")],
                   percent={"/snap/core/1": 100.0})
    assert probe(snap).findings == ()


def test_a_required_mount_that_is_missing() -> None:
    f = by_component(probe(Sources(), required_mounts=["/data/"]))["mount:/data"]
    assert f.severity == "fail" and not f.usable


@pytest.mark.parametrize(("percent", "severity", "usable"), [(91.0, "warn", True), (99.5, "fail", False)])
def test_disk_usage_thresholds(percent: float, severity: str, usable: bool) -> None:
    f = by_component(probe(Sources(percent={"/srv": percent})))["mount:/srv"]
    assert (f.severity, f.usable) == (severity, usable)
    assert f.evidence["percent"] == percent


def test_a_hanging_statvfs_becomes_a_finding_and_never_hangs_the_probe(release: Any) -> None:
    sources = Sources(hang={"/srv": release()})
    p = PsutilProbe(HardwareConfig(probe_timeout=0.05), sources=sources)
    results: list[ProbeResult] = []
    worker = threading.Thread(target=lambda: results.extend([p.probe(None), p.probe(None)]), daemon=True)
    worker.start()
    worker.join(30)  # a liveness bound, far above the timeout: the probe must return at all
    assert not worker.is_alive(), "the probe hung on a dead mount"
    for result in results:
        f = by_component(result)["mount:/srv"]
        assert f.severity == "fail" and not f.usable and f.evidence["timed_out"] is True
        assert "did not answer" in f.message
        assert result.inventory["partitions"]["/"]["percent"] == 40.0  # the others were still probed
    # the second probe did not start another thread on the mount that is still stuck
    assert sources.usage_calls.count("/srv") == 1


def test_a_disk_that_errors_is_unusable() -> None:
    f = by_component(probe(Sources(broken={"/srv": OSError(5, "Input/output error")})))["mount:/srv"]
    assert f.severity == "fail" and not f.usable and "Input/output error" in f.message


def test_network_file_systems_are_skipped_unless_configured(release: Any) -> None:
    mounts = [mount("/", "/dev/sda1"), mount("/mnt/nfs", "srv:/export", "nfs4"),
              mount("/mnt/sshfs", "me@host:", "fuse.sshfs")]
    sources = Sources(mounts=mounts, hang={"/mnt/nfs": release()})
    result = probe(sources, probe_timeout=0.05)
    assert result.findings == ()
    assert "/mnt/nfs" not in sources.usage_calls and "/mnt/sshfs" not in sources.usage_calls
    assert set(result.inventory["skipped_mounts"]) == {"/mnt/nfs", "/mnt/sshfs"}
    # configured: probed, and the dead server is a warning (not required, so not fatal)
    f = by_component(probe(sources, probe_timeout=0.05, network_filesystems=True))["mount:/mnt/nfs"]
    assert f.severity == "warn" and not f.usable and f.evidence["timed_out"] is True
    # required: a dead server refuses the start
    f = by_component(probe(sources, probe_timeout=0.05, required_mounts=["/mnt/nfs"]))["mount:/mnt/nfs"]
    assert f.severity == "fail"


@pytest.mark.parametrize(("status", "severity"), [
    (0b0000_1000, "fail"),   # bit 3: DISK FAILING
    (0b0001_0000, "fail"),   # bit 4: prefail attributes at threshold
    (0b0010_0000, "warn"),   # bit 5: threshold crossed in the past
    (0b1000_0000, "warn"),   # bit 7: self-test log has errors
    (0b0000_0010, None),     # bit 1: cannot open / no SMART: nothing to say
    (0, None),
])
def test_smart_health_verdict(status: int, severity: str | None) -> None:
    sources = Sources(smart={"/dev/sdb": status})
    found = by_component(probe(sources))
    assert sorted(sources.smart_calls) == ["/dev/sda", "/dev/sdb"]  # whole disks, once each
    f = found.get("disk:/dev/sdb")
    assert (f.severity if f else None) == severity
    if severity == "fail":
        assert not f.usable and "replace" in f.message and f.evidence["smartctl_status"] == status


def test_smartctl_off_or_absent() -> None:
    sources = Sources(smart={"/dev/sdb": 8})
    assert probe(sources, smartctl="off").findings == () and sources.smart_calls == []
    assert probe(Sources(smart=None)).findings == ()  # not installed


def test_smart_verdict_reads_the_bit_mask() -> None:
    assert smart_verdict(8 | 4) == "replace" and smart_verdict(64) == "warn"
    assert smart_verdict(1) == "unavailable" and smart_verdict(0) == "ok"


def test_temperatures_against_high_and_critical_marks() -> None:
    temps = {"coretemp": [NS(label="Core 0", current=101.0, high=80.0, critical=100.0),
                          NS(label="Core 1", current=85.0, high=80.0, critical=100.0)],
             "nvme": [NS(label="Composite", current=75.0, high=80.0, critical=90.0)],
             "acpitz": [NS(label="", current=30.0, high=None, critical=0.0)]}
    found = by_component(probe(Sources(temps=temps)))
    assert found["temp:coretemp"].severity == "fail" and not found["temp:coretemp"].usable
    assert "Core 0" in found["temp:coretemp"].message  # the worst sensor of the chip is named
    assert "temp:nvme" not in found and "temp:acpitz" not in found
    warm = by_component(probe(Sources(temps=temps), temperature_warn_margin=10))
    assert warm["temp:nvme"].severity == "warn" and warm["temp:nvme"].usable


def test_network_interfaces() -> None:
    nics = {"lo": nic(), "eth0": nic(), "eth1": nic(up=False, errin=12, dropin=3),
            "eth2": nic(errin=400, packets=10_000), "eth3": nic(up=False), "veth1a2b": nic(up=False, errin=9)}
    found = by_component(probe(Sources(nics=nics), required_interfaces=["eth0", "wlan0"]))
    down = found["net:eth1"]
    assert down.severity == "warn" and not down.usable and down.evidence["errin"] == 12
    assert found["net:eth2"].severity == "warn" and found["net:eth2"].usable  # 4% errors
    assert found["net:wlan0"].severity == "fail" and not found["net:wlan0"].usable  # required, missing
    assert {"net:lo", "net:eth0", "net:eth3", "net:veth1a2b"}.isdisjoint(found)  # fine, unused or ignored
    req = by_component(probe(Sources(nics={"eth0": nic(up=False)}), required_interfaces=["eth0"]))
    assert req["net:eth0"].severity == "fail"


def test_an_interface_that_went_down_or_vanished_since_the_last_run() -> None:
    before = probe(Sources(nics={"eth0": nic(), "eth1": nic()})).inventory
    found = by_component(probe(Sources(nics={"eth0": nic(up=False)}), before))
    assert found["net:eth0"].severity == "warn" and "last run" in found["net:eth0"].message
    assert found["net:eth1"].severity == "warn" and "gone" in found["net:eth1"].message


def test_battery_below_minimum_and_not_charging() -> None:
    low = NS(percent=7.0, secsleft=600, power_plugged=False)
    assert by_component(probe(Sources(battery=low), battery_min_percent=20))["battery"].severity == "warn"
    charging = NS(percent=7.0, secsleft=600, power_plugged=True)
    assert probe(Sources(battery=charging), battery_min_percent=20).findings == ()


def test_a_probe_that_raises_is_a_finding_and_the_rest_still_runs() -> None:
    class Broken(Sources):
        def sensors_temperatures(self) -> dict[str, list[NS]]:
            raise OSError("hwmon unreadable")

    result = probe(Broken())
    f = by_component(result)["temp"]
    assert f.severity == "warn" and "hwmon unreadable" in f.message
    assert result.inventory["partitions"]["/"]["percent"] == 40.0


def test_a_malformed_previous_inventory_is_ignored() -> None:
    bad = {"partitions": "x", "memory": [1], "cpus": "8", "interfaces": {"eth0": 3}}
    assert probe(Sources(), bad).findings == ()


def test_the_real_probe_on_this_machine_returns_a_sane_inventory() -> None:
    results: list[ProbeResult] = []
    worker = threading.Thread(target=lambda: results.append(PsutilProbe(HardwareConfig(probe_timeout=5)).probe(None)),
                              daemon=True)
    worker.start()
    worker.join(120)  # liveness only: every call is time-boxed at 5 s
    assert results, "the real probe did not return"
    inv = results[0].inventory
    assert inv["cpus"] >= 1 and inv["memory"]["total"] > 0
    assert "/" in inv["mountpoints"] and inv["interfaces"]
    assert all(isinstance(f, HardwareFinding) for f in results[0].findings)
    json.dumps(inv)


def test_fake_probe_returns_its_fixed_result_and_records_the_previous_inventory() -> None:
    finding = HardwareFinding("disk:/dev/sda", "fail", "dead", {"status": 8}, False)
    fake = FakeProbe({"cpus": 2}, [finding])
    assert fake.probe(None) == ProbeResult({"cpus": 2}, (finding,))
    fake.probe({"cpus": 4})
    assert fake.seen == [None, {"cpus": 4}]


def test_config_defaults_and_values() -> None:
    assert HardwareConfig.from_mapping({}, "regend.toml [hardware]") == HardwareConfig()
    c = HardwareConfig.from_mapping({"min_memory_bytes": "4G", "probe_timeout": 2, "required_mounts": ["/srv/"],
                                     "smartctl": "off", "network_filesystems": True}, "w")
    assert c.min_memory_bytes == 4 * GiB and c.probe_timeout == 2.0 and c.required_mounts == ("/srv",)
    assert c.smartctl == "off" and c.network_filesystems is True


@pytest.mark.parametrize(("data", "words"), [
    ({"disk_usage_warning": 80}, ["unknown key 'disk_usage_warning'"]),
    ({"disk_usage_warn": "high"}, ["disk_usage_warn", "number from 0 to 100", "'high'"]),
    ({"disk_usage_warn": 120}, ["disk_usage_warn", "from 0 to 100"]),
    ({"min_cpus": True}, ["min_cpus", "whole number"]),
    ({"min_cpus": 1.5}, ["min_cpus", "whole number"]),
    ({"min_memory_bytes": "lots"}, ["min_memory_bytes", "byte count"]),
    ({"network_filesystems": "yes"}, ["network_filesystems", "true or false"]),
    ({"required_mounts": "/srv"}, ["required_mounts", "absolute paths"]),
    ({"required_mounts": ["srv"]}, ["required_mounts", "absolute paths"]),
    ({"smartctl": "on"}, ["smartctl", "'auto' or 'off'"]),
    ({"probe_timeout": 0}, ["probe_timeout"]),
    ({"disk_usage_warn": 95, "disk_usage_fail": 90}, ["disk_usage_fail", "below disk_usage_warn"]),
])
def test_config_errors_name_the_file_the_key_and_what_is_expected(data: dict[str, Any], words: list[str]) -> None:
    with pytest.raises(HardwareConfigInvalid) as info:
        HardwareConfig.from_mapping(data, "/etc/regen/regend.toml [hardware]")
    text = info.value.one_line()
    assert info.value.exit_code == EXIT_USAGE
    assert text.startswith("/etc/regen/regend.toml [hardware]: ") and "\n" not in text
    for word in words:
        assert word in text
    assert "regend.toml" in info.value.hint or "expected one of" in info.value.hint


def test_gauges_are_the_fullest_local_disk_the_hottest_sensor_and_the_battery() -> None:
    from regen.daemon.gate.health import gauges

    inv = {"partitions": {"/": {"percent": 41.25, "network": False, "readonly": False},
                          "/data": {"percent": 87.5, "network": False, "readonly": False},
                          "/mnt/nfs": {"percent": 99.0, "network": True, "readonly": False},
                          "/media/cd": {"percent": 100.0, "network": False, "readonly": True}},
           "temperatures": {"coretemp": [{"label": "Core 0", "current": 51.0}, {"label": "Core 1", "current": 64.5}],
                            "acpitz": [{"label": "", "current": "n/a"}]},
           "battery": {"percent": 80.0, "plugged": True}}
    assert gauges(inv) == {"disk_used_percent": 87.5, "temperature_celsius": 64.5, "battery_percent": 80.0}
    assert gauges({"errors": {"temperatures": "timed out"}}) == {}
