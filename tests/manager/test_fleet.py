"""fleet.analyse: host states and the actions a person must take, from plain values (pure)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from regen.manager.fleet import ChannelHead, HostInput, analyse, drift_of
from regen.store import HardwareFinding, Report, format_time

NOW = datetime(2030, 1, 10, 12, 0, tzinfo=timezone.utc)
HEADS = {"stable": ChannelHead("stable", 5, format_time(NOW - timedelta(days=2)))}


def report(host: str, outcome: str = "ok", *, gen: int = 5, age: timedelta = timedelta(hours=1),
           drift: dict[str, Any] | None = None, findings: tuple[HardwareFinding, ...] = ()) -> HostInput:
    t = format_time(NOW - age)
    return HostInput(host, Report(host, "run", t, t, outcome, 0, "stable", gen, gen, drift=drift or {},
                                  findings=findings))


def test_states_cover_ok_quarantined_stale_and_failing() -> None:
    inputs = [
        report("a-ok"), report("b-repaired", "repaired"), report("c-quarantined", "quarantined", age=timedelta(days=9)),
        report("d-stale", age=timedelta(days=3)), HostInput("e-broken", None, "report is not valid JSON"),
        report("f-failing", "failing"),
    ]
    fleet = analyse(inputs, HEADS, now=NOW, stale_after=timedelta(days=1))
    assert {h.host: h.state for h in fleet.hosts} == {
        "a-ok": "ok", "b-repaired": "repaired", "c-quarantined": "quarantined", "d-stale": "stale",
        "e-broken": "failing", "f-failing": "failing"}
    broken = next(h for h in fleet.hosts if h.host == "e-broken")
    assert broken.errors == ("report is not valid JSON",)
    assert fleet.counts()["failing"] == 2 and fleet.needs_attention


def test_hardware_to_replace_names_host_and_part() -> None:
    disk = HardwareFinding("disk /dev/sda", "fail", "SMART says replace", {"smartctl": 8}, usable=False)
    temp = HardwareFinding("cpu temperature", "warn", "hot", {"celsius": 85}, usable=True)
    nic = HardwareFinding("nic eth1", "warn", "link down", {}, usable=False)
    fleet = analyse([report("h1", findings=(disk, temp)), report("h2", findings=(nic,))], HEADS, now=NOW)
    assert [(a.host, a.component) for a in fleet.replace_hardware] == [("h1", "disk /dev/sda"), ("h2", "nic eth1")]


def test_stuck_hosts_ran_after_the_generation_and_are_still_behind() -> None:
    fleet = analyse([
        report("current", gen=5),
        report("stuck", gen=3),  # reported 1 h ago, the generation is 2 days old
        report("pending", gen=4, age=timedelta(days=2, hours=1)),  # has not run since it was created
        report("gone", gen=2, age=timedelta(days=5)),  # stopped reporting: stale and behind
    ], HEADS, now=NOW, stale_after=timedelta(days=3))
    assert [(s.host, s.generation, s.current) for s in fleet.stuck] == [("gone", 2, 5), ("stuck", 3, 5)]
    assert {h.host for h in fleet.hosts if h.behind} == {"stuck", "pending", "gone"}


def test_paths_drifting_on_many_hosts() -> None:
    def d(*paths: str) -> dict[str, Any]:
        return {"modified": {"count": len(paths), "paths": list(paths)}, "deleted": {"count": 0, "paths": []}}

    fleet = analyse([
        report("h1", "repaired", drift=d("etc/hosts", "var/app.db")),
        report("h2", "repaired", drift={**d("etc/hosts"), "deleted": {"count": 1, "paths": ["var/app.db"]}}),
        report("h3", "repaired", drift=d("etc/hosts", "only/here")),
    ], HEADS, now=NOW, drift_min_hosts=2)
    assert [(p.path, p.hosts, p.kinds) for p in fleet.drifting] == [
        ("etc/hosts", ("h1", "h2", "h3"), ("modified",)), ("var/app.db", ("h1", "h2"), ("deleted", "modified"))]
    assert next(h for h in fleet.hosts if h.host == "h1").drift == {"modified": 2, "deleted": 0}
    assert analyse([report("h1", drift=d("x")), report("h2", drift=d("x"))], HEADS, now=NOW,
                   drift_min_hosts=3).drifting == ()


def test_channel_filter_and_unparseable_times() -> None:
    other = HostInput("o", Report("o", "r", "x", "x", "ok", 0, "testing", 1, 1))
    bad_time = HostInput("t", Report("t", "r", "yesterday", "yesterday", "ok", 0, "stable", 5, 5))
    fleet = analyse([report("s"), other, bad_time], HEADS, now=NOW, channel="stable")
    assert [h.host for h in fleet.hosts] == ["s", "t"]
    t = fleet.hosts[1]
    assert t.state == "failing" and "not YYYY-MM-DDTHH:MM:SSZ" in t.errors[0]
    assert fleet.as_dict()["hosts"][1]["state"] == "failing"


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                       max_size=3), max_leaves=10)


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=5))
def test_any_drift_section_is_tolerated(drift: dict[str, Any]) -> None:
    counts, paths = drift_of(drift)
    assert all(isinstance(v, int) and v >= 0 for v in counts.values())
    assert all(isinstance(p, str) for ps in paths.values() for p in ps)
    analyse([report("h", drift=drift), report("g", drift=drift)], HEADS, now=NOW)


def test_misconfigured_hosts_are_actions_with_their_fix() -> None:
    t = format_time(NOW - timedelta(hours=1))
    line = "store misconfigured: access to https://s/regen.json was denied (HTTP 401); fix the store URL, ..."
    wrong = HostInput("wrong", Report("wrong", "run", t, t, "ok", 11, "stable", 5, 5, store_state="misconfigured",
                                      store_error=line))
    down = HostInput("down", Report("down", "run", t, t, "ok", 10, "stable", 5, 5, store_state="unreachable"))
    fleet = analyse([wrong, down, report("fine")], HEADS, now=NOW)
    assert [(m.host, m.message) for m in fleet.misconfigured] == [("wrong", line)]
    assert fleet.needs_attention
    assert fleet.as_dict()["actions"]["misconfigured"] == [{"host": "wrong", "message": line}]


def test_failed_procedures_are_actions_and_malformed_entries_are_skipped() -> None:
    from regen.manager.fleet import check_line

    t = format_time(NOW - timedelta(hours=1))
    ran = [{"name": "reload nginx", "ok": False, "exit_status": 1, "timed_out": False, "failure": "report",
            "output_tail": "nginx: [emerg] unknown directive\n"},
           {"name": "ldconfig", "ok": True, "exit_status": 0},
           "not a mapping", {"ok": False, "exit_status": "x", "timed_out": True}]
    inputs = [HostInput("pc-01", Report("pc-01", "run", t, t, "ok", 0, "stable", 5, 5,
                                        steps={"procedures": {"outcome": "failed", "ran": ran}})),
              HostInput("pc-02", Report("pc-02", "run", t, t, "ok", 0, "stable", 5, 5,
                                        steps={"procedures": "garbage"})),
              report("pc-03")]
    fleet = analyse(inputs, HEADS, now=NOW)
    assert [(p.host, p.name, p.exit_status, p.timed_out, p.last_line) for p in fleet.procedures] == [
        ("pc-01", "reload nginx", 1, False, "nginx: [emerg] unknown directive"), ("pc-01", "?", -1, True, "")]
    assert fleet.needs_attention and fleet.action_count() == 1
    assert fleet.as_dict()["actions"]["failed_procedures"][0]["name"] == "reload nginx"
    assert "1 with failed procedures" in check_line(fleet)[1]
