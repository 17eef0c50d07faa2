"""Hardware and start diagnosis: a machine that must not start takes the quarantine path (exit 3)."""

from __future__ import annotations

import json
from pathlib import Path

from regen.daemon.gate.hardware import FakeProbe
from regen.store import HardwareFinding, Store

from .conftest import Client, dead_disk, expected, publish

SPEC = {"etc/app.conf": "port = 1\n"}


def test_dead_disk_quarantines_and_runs_the_hook(client: Client, file_store: Store, signing_key,
                                                 tmp_path: Path) -> None:
    publish(file_store, signing_key, SPEC, number=1)
    marker = tmp_path / "network-down"
    client.write_config(hooks={"quarantine": f"touch {marker}"})
    out = client.regend("run", "--once", "--json", hardware=dead_disk(), exit_code=3)
    report = json.loads(out.stdout)
    assert report["outcome"] == "quarantined" and report["exit_code"] == 3
    assert report["findings"][0]["component"] == "disk /dev/sda"
    assert any("SMART says the disk is failing" in e for e in report["errors"])
    assert marker.exists()
    assert client.tree() == {}                      # nothing else ran: no install
    latest = file_store.read_latest_report("client-01")
    assert latest is not None and latest.outcome == "quarantined"
    # the disk was replaced: the next boot starts normally
    client.regend("run", "--once")
    assert client.tree() == expected(SPEC)


def test_shrunk_memory_reported_by_an_injected_probe(mem_client: Client, mem_store: Store, signing_key) -> None:
    publish(mem_store, signing_key, SPEC, number=1)
    probe = FakeProbe({"memory": {"total": 8 << 30}},
                      [HardwareFinding("memory", "warn", "memory shrank from 16 GiB to 8 GiB",
                                       {"before": 16 << 30, "after": 8 << 30}, True)])
    res = mem_client.run(probe=probe)
    assert res.exit_code == 0  # a usable part with a warning does not stop the machine
    assert res.report.findings[0].message.startswith("memory shrank")
    assert res.report.steps["hardware"]["outcome"] == "warn"
    # the inventory is kept for the next comparison
    mem_client.run(probe=probe)
    assert probe.seen[-1] == {"memory": {"total": 8 << 30}}


def test_failing_start_check_refuses_the_start(mem_client: Client, mem_store: Store, signing_key) -> None:
    publish(mem_store, signing_key, SPEC, number=1)
    mem_client.write_config(hooks={"start_check": ["true", "sh -c 'echo db unreachable; exit 4'"]})
    res = mem_client.run()
    assert res.exit_code == 3 and res.report.outcome == "quarantined"
    assert any("db unreachable" in e for e in res.report.errors), res.report.errors
    assert mem_client.tree() == {}


def test_repeated_failures_are_reported_not_retried_blindly(make_client, file_store: Store, signing_key,
                                                           tmp_path: Path) -> None:
    publish(file_store, signing_key, SPEC, number=1)
    c = make_client(file_store.url, failures={"max_consecutive": 2})
    c.regend("run", "--once")
    # the store loses an object of the next generation: the update fails the same way every run
    publish(file_store, signing_key, {**SPEC, "etc/new": "lost object"}, number=2)
    from regen.store import object_id
    file_store.delete_object(object_id(b"lost object"))
    for _ in range(2):  # a missing object is a damaged store: the machine may start, exit 12 says why
        out = json.loads(c.regend("run", "--once", "--json", exit_code=12).stdout)
        assert out["steps"]["update"]["outcome"] == "failed"
    out = json.loads(c.regend("run", "--once", "--json").stdout)
    assert out["steps"]["update"]["outcome"] == "skipped"
    assert "failed 2 runs in a row" in out["steps"]["update"]["reason"]
    assert out["exit_code"] == 0 and c.tree() == expected(SPEC)
    status = json.loads(c.regend("status", "--json").stdout)
    assert status["failures"]["update"]["count"] == 2
    # a --verify run retries it; with the object back, it succeeds and the counter clears
    file_store.put(b"lost object")
    c.regend("run", "--once", "--verify")
    assert json.loads(c.regend("status", "--json").stdout)["failures"] == {}
    assert c.tree() == expected({**SPEC, "etc/new": "lost object"})


def test_repeated_failures_can_take_the_quarantine_path(mem_client: Client, mem_store: Store,
                                                        signing_key) -> None:
    publish(mem_store, signing_key, SPEC, number=1)
    mem_client.write_config(failures={"max_consecutive": 1, "action": "quarantine"})
    mem_client.run()
    publish(mem_store, signing_key, {**SPEC, "etc/new": "lost"}, number=2)
    from regen.store import object_id
    mem_store.delete_object(object_id(b"lost"))
    assert mem_client.run().report.steps["update"]["outcome"] == "failed"
    res = mem_client.run()
    assert res.exit_code == 3
    assert any("step update failed 1 runs in a row" in e for e in res.report.errors)


def test_injected_dead_disk_quarantines_in_process(mem_client: Client, mem_store: Store, signing_key) -> None:
    publish(mem_store, signing_key, SPEC, number=1)
    mem_client.run()
    (mem_client.root / "etc/app.conf").write_text("drifted")
    probe = FakeProbe({}, [HardwareFinding("disk /dev/sdb", "fail", "disk /dev/sdb disappeared since the last "
                                           "boot", {"mountpoint": "/data"}, False)])
    res = mem_client.run(probe=probe)
    assert (res.exit_code, res.report.outcome) == (3, "quarantined")
    assert set(res.report.steps) == {"hardware", "start"}            # nothing else ran
    assert (mem_client.root / "etc/app.conf").read_text() == "drifted"
    assert res.report.generation_before == res.report.generation_after == 1
    latest = mem_store.read_latest_report("client-01")
    assert latest is not None and latest.outcome == "quarantined"
