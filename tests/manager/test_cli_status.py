"""`regen status` over real reports written with store.put_report (and a few broken ones)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from regen.store import HardwareFinding, Report, Store, format_time, layout, utcnow

from ..conftest import make_tree


def put(store: Store, host: str, outcome: str, *, gen: int, age: timedelta = timedelta(minutes=5),
        channel: str = "stable", **kw) -> None:
    t = format_time(utcnow() - age)
    store.put_report(Report(host, f"run-{host}", t, t, outcome, 3 if outcome == "quarantined" else 0, channel,
                            gen, gen, version="test", **kw))


@pytest.fixture
def fleet(cli, admin: Store, tmp_path: Path) -> Store:
    src = make_tree(tmp_path / "ref", {"etc/app.conf": b"v1"})
    cli("snapshot", src, "-c", "stable", "-m", "one", "--publish")
    (src / "etc/app.conf").write_bytes(b"v2")
    cli("snapshot", src, "-c", "stable", "-m", "two", "--publish")
    drift = {"modified": {"count": 1, "paths": ["etc/app.conf"]}, "created": {"count": 0, "paths": []}}
    put(admin, "pc-01", "ok", gen=2)
    put(admin, "pc-02", "repaired", gen=2, drift=drift)
    put(admin, "pc-03", "updated", gen=1, drift=drift, age=timedelta(0))  # ran after 2 appeared, still on 1
    put(admin, "pc-04", "quarantined", gen=2, findings=(
        HardwareFinding("disk /dev/sda", "fail", "SMART overall-health: FAILED", {"exit": 8}, usable=False),))
    put(admin, "pc-05", "ok", gen=2, age=timedelta(days=3))  # stale
    admin.backend.write(layout.report_latest_path("pc-06"), b"{not json")  # malformed
    admin.backend.write(layout.report_latest_path("pc-07"), b'{"type": "regen-report", "format": 1}')
    return admin


def test_status_json_states_and_actions(cli, fleet: Store) -> None:
    data = cli("status", "--json").json()
    states = {h["host"]: h["state"] for h in data["hosts"]}
    assert states == {"pc-01": "ok", "pc-02": "repaired", "pc-03": "updated", "pc-04": "quarantined",
                      "pc-05": "stale", "pc-06": "failing", "pc-07": "failing"}
    errors = {h["host"]: h["errors"] for h in data["hosts"]}
    assert "not valid JSON" in errors["pc-06"][0] and "lacks field" in errors["pc-07"][0]
    assert data["heads"] == {"stable": 2} and data["counts"]["failing"] == 2
    actions = data["actions"]
    assert actions["replace_hardware"] == [{"host": "pc-04", "component": "disk /dev/sda", "severity": "fail",
                                            "message": "SMART overall-health: FAILED", "usable": False}]
    assert [s["host"] for s in actions["stuck"]] == ["pc-03"]
    assert actions["drifting_paths"] == [{"path": "etc/app.conf", "hosts": ["pc-02", "pc-03"], "count": 2,
                                          "kinds": ["modified"]}]
    pc3 = next(h for h in data["hosts"] if h["host"] == "pc-03")
    assert pc3["behind"] is True and pc3["current"] == 2 and pc3["drift"] == {"modified": 1, "created": 0}


def test_status_table_names_what_a_person_must_do(cli, fleet: Store) -> None:
    out = cli("status").stdout
    assert "7 hosts" in out and "1 quarantined" in out and "1 stale" in out and "2 failing" in out
    assert "replace hardware  pc-04: disk /dev/sda (unusable): SMART overall-health: FAILED" in out
    assert "stuck             pc-03: generation 1 of stable, current is 2" in out
    assert "drifting path     etc/app.conf: modified on 2 hosts (pc-02, pc-03)" in out


def test_status_filters_and_thresholds(cli, fleet: Store) -> None:
    put(fleet, "lab-01", "ok", gen=1, channel="testing")
    data = cli("status", "--channel", "testing", "--json").json()
    assert "lab-01" in [h["host"] for h in data["hosts"]] and "pc-01" not in [h["host"] for h in data["hosts"]]
    data = cli("status", "--stale", "4d", "--drift-min-hosts", "3", "--json").json()
    assert {h["host"]: h["state"] for h in data["hosts"]}["pc-05"] == "ok"
    assert data["actions"]["drifting_paths"] == []


def test_status_of_an_empty_fleet(cli, admin: Store) -> None:
    out = cli("status").stdout
    assert "0 hosts" in out and "no action needed" in out


def test_failing_stale_and_quarantined_hosts_are_actions(cli, fleet: Store) -> None:
    out = cli("status").stdout
    assert "quarantined       pc-04: must not start its software" in out
    assert "failing           pc-06: " in out and "not valid JSON" in out
    assert "stale             pc-05: no report since" in out
    actions = cli("status", "--json").json()["actions"]
    assert [h["host"] for h in actions["failing"]] == ["pc-06", "pc-07"]
    assert [h["host"] for h in actions["stale"]] == ["pc-05"]
    assert [h["host"] for h in actions["quarantined"]] == ["pc-04"]


def test_check_is_a_monitoring_plugin(cli, fleet: Store, admin: Store) -> None:
    run = cli("status", "--check", exit_code=1)
    lines = run.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("REGEN WARNING - ")
    assert "1 quarantined, 2 failing, 1 stale" in lines[0] and "| hosts=7 ok=1 " in lines[0]
    # only the healthy hosts: nothing to do, exit 0
    run = cli("status", "--check", "pc-01", "pc-02")
    assert run.stdout.startswith("REGEN OK - 2 hosts, nothing to do | hosts=2 ")
    assert cli("status", "--check", "--state", "ok").stdout.startswith("REGEN OK")


def test_state_filter_globs_and_sort(cli, fleet: Store) -> None:
    data = cli("status", "--state", "failing,stale", "--json").json()
    assert [h["host"] for h in data["hosts"]] == ["pc-05", "pc-06", "pc-07"]
    assert data["counts"]["ok"] == 1  # counts still describe every host read
    assert data["actions"]["quarantined"] == [] and data["actions"]["replace_hardware"] == []
    data = cli("status", "pc-0[1-3]", "pc-07", "--json").json()
    assert [h["host"] for h in data["hosts"]] == ["pc-01", "pc-02", "pc-03", "pc-07"]
    data = cli("status", "--sort", "state", "--json").json()
    assert [h["state"] for h in data["hosts"]][:4] == ["quarantined", "failing", "failing", "stale"]
    out = cli("status", "--state", "stale").stdout
    assert out.startswith("7 hosts (1 shown):")
    run = cli("status", "--state", "sunny", exit_code=2)
    assert "unknown state 'sunny'" in run.stderr
    assert "unknown sort key" in cli("status", "--sort", "mood", exit_code=2).stderr


def test_long_host_names_are_never_cut_at_80_columns(cli, fleet: Store) -> None:
    long = "kiosk-building-north-floor-3-room-311-terminal-07"
    put(fleet, long, "repaired", gen=2, drift={"modified": {"count": 3, "paths": ["a", "b", "c"]}})
    out = cli("status", env={"COLUMNS": "80"}).stdout
    table = out.split("actions:")[0].splitlines()
    assert all(len(line) <= 80 for line in table), "\n".join(table)
    row = next(line for line in table if long in line)  # whole, on one line
    assert "repaired" in row
    longer = "x" * 60 + "-" + "y" * 3  # 64 characters: the longest name a store accepts
    put(fleet, longer, "ok", gen=2)
    out = cli("status", env={"COLUMNS": "60"}).stdout
    assert longer[:59] in out.replace("\n", "") or longer in out.replace("\n", "")
    assert "…" not in out
