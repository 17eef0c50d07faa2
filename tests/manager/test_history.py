"""Report history that stays small: clients add an entry only on change or once a day; gc prunes it;
`regen history HOST` shows a host's timeline."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from regen.daemon.run.reporting import RunLog, deliver
from regen.daemon.tree.index import Index
from regen.store import (
    HistoryEntry,
    Report,
    Store,
    format_time,
    history_due,
    history_marker,
    parse_history_entry,
    prune_history,
)

START = datetime(2025, 1, 1, tzinfo=timezone.utc)
DAYS = 365


def hourly_year(host: str, rng: random.Random, *, quarantined_from: int | None = None, every: int = 1):
    """(when, report) for every run (hourly, or `every` hours) of one host over a year: mostly ok, rare
    repairs, a new generation every 30 days (updated once), optionally quarantined for good from some day on."""
    steps = {"hardware": {"outcome": "ok", "gauges": {"disk_used_percent": 40.0}}}
    clean = {"modified": {"count": 0, "paths": []}}
    repaired = {"modified": {"count": 1, "paths": ["etc/hosts"]}}
    for hour in range(0, DAYS * 24, every):
        when = START + timedelta(hours=hour)
        gen = 1 + hour // (30 * 24)
        drift = clean
        if quarantined_from is not None and hour >= quarantined_from * 24:
            outcome, gen = "quarantined", 1 + quarantined_from // 30  # a quarantined host updates no more
        elif hour % (30 * 24) == 0 and hour:
            outcome = "updated"
        elif rng.random() < 0.002:
            outcome, drift = "repaired", repaired
        else:
            outcome = "ok"
        t = format_time(when)
        yield when, Report(host, "r", t, t, outcome, 0, "stable", gen, gen, steps, (), drift)


@pytest.mark.slow
def test_a_year_of_hourly_runs_for_100_hosts_leaves_a_bounded_history() -> None:
    rng = random.Random(16)
    written: Counter[str] = Counter()
    changes: Counter[str] = Counter()
    runs = 0
    for i in range(100):
        marker, previous = None, None
        for _when, r in hourly_year(f"pc-{i:03d}", rng):
            runs += 1
            changes[r.host] += (r.outcome, r.generation_after) != previous
            previous = (r.outcome, r.generation_after)
            if history_due(marker, r):  # the rule regend's deliver applies (tested below through deliver)
                written[r.host] += 1
                marker = history_marker(r)
    assert runs == 100 * DAYS * 24 == 876_000
    # at most one entry a day plus one per change
    assert all(written[h] <= DAYS + changes[h] for h in written), (written, changes)
    assert sum(written.values()) < 45_000  # instead of 876,000


def test_deliver_writes_latest_always_and_history_on_change(mem_store: Store) -> None:
    index = Index.memory()
    try:
        def run(outcome: str, when: datetime, gen: int = 1) -> None:
            log = RunLog(run_id=f"run-{when:%H%M}", started=format_time(when), channel="stable",
                         generation_before=gen, generation_after=gen)
            r = replace(log.build(host="pc-01", outcome=outcome, exit_code=0, version="t"), finished=format_time(when))
            assert deliver(mem_store, index, r) is None

        t = START
        run("updated", t)
        for h in range(1, 6):
            run("ok", t + timedelta(hours=h))  # the first ok is news, the next four are not
        run("ok", t + timedelta(hours=5, minutes=30), gen=2)  # a new generation is news
        run("ok", t + timedelta(days=1, hours=6), gen=2)  # a day since the last entry
        states = [e.state for e in mem_store.report_history("pc-01")]
        assert states == ["updated", "ok", "ok", "ok"]
        assert mem_store.read_latest_report("pc-01").finished == format_time(t + timedelta(days=1, hours=6))
    finally:
        index.close()


def entry(host: str, when: datetime, state: str) -> HistoryEntry:
    return HistoryEntry(f"reports/{host}/{when:%Y%m%dT%H%M%S%fZ}-{state}.json", when, state)


def test_prune_keeps_recent_entries_and_the_last_state_change() -> None:
    now = START + timedelta(days=DAYS)
    quiet = [entry("a", START + timedelta(days=d), "ok") for d in range(DAYS)]
    broken = ([entry("b", START + timedelta(days=d), "ok") for d in range(100)]
              + [entry("b", START + timedelta(days=d), "quarantined") for d in range(100, DAYS)])
    plan = prune_history({"a": quiet, "b": broken}, keep=timedelta(days=90), now=now)
    kept = {e.path for e in quiet + broken} - set(plan.delete)
    kept_a = sorted(p for p in kept if "/a/" in p)
    kept_b = sorted(p for p in kept if "/b/" in p)
    assert len(kept_a) == 90 + 1 and kept_a[0] == quiet[0].path  # ok since the first entry: that one stays
    assert len(kept_b) == 90 + 1 and kept_b[0] == broken[100].path  # when it became quarantined
    assert plan.hosts == 2 and plan.kept == len(kept)


def test_entry_names_carry_the_state() -> None:
    e = parse_history_entry("reports/pc-01/20250102T030405123456Z-quarantined.json")
    assert e is not None and e.state == "quarantined" and e.when == datetime(2025, 1, 2, 3, 4, 5, 123456,
                                                                                 tzinfo=timezone.utc)
    old = parse_history_entry("reports/pc-01/20250102T030405123456Z.json")
    assert old is not None and old.state is None
    for name in ("reports/pc-01/latest.json", "reports/pc-01/.tmp-x.json", "reports/pc-01/2025-x.json",
                 "reports/pc-01/20250102T030405123456Z-../x.json"):
        assert parse_history_entry(name) is None, name


@pytest.fixture
def year_store(mem_store: Store, monkeypatch: pytest.MonkeyPatch, key_files) -> Store:
    """5 hosts' history over a year (a run every 4 hours), written with put_report as deliver would
    (on the simulated clock)."""
    rng = random.Random(7)
    for i in range(5):
        marker = None
        for when, r in hourly_year(f"pc-{i:03d}", rng, quarantined_from=200 if i == 0 else None, every=4):
            if history_due(marker, r):
                mem_store.put_report(r, now=when)
                marker = history_marker(r)
    monkeypatch.setenv("REGEN_STORE", mem_store.url)
    monkeypatch.setenv("REGEN_KEY", str(key_files[0]))  # gc counts only records that verify
    return mem_store


def test_gc_keep_reports_prunes_and_keeps_each_hosts_last_state_change(cli, year_store: Store) -> None:
    before = year_store.all_report_history()
    now = datetime.now(timezone.utc)
    age_days = (now - (START + timedelta(days=DAYS))).days  # the simulated year ended this long ago
    keep = age_days + 90
    dry = cli("gc", "--keep-reports", str(keep), "--dry-run", "--json").json()
    assert dry["stats"]["history_to_delete"] > 0
    assert year_store.all_report_history() == before  # a dry run deletes nothing
    out = cli("gc", "--keep-reports", str(keep)).stdout
    assert "report history entries older than" in out
    after = year_store.all_report_history()
    cutoff = now - timedelta(days=keep)
    for host, entries in after.items():
        old = [e for e in entries if e.when < cutoff]
        assert len(old) <= 1, (host, old)
    # pc-000 has been quarantined since day 200 (before the cutoff): that entry is kept
    first_q = next(e for e in before["pc-000"] if e.state == "quarantined")
    assert first_q in after["pc-000"]
    assert sum(map(len, after.values())) < sum(map(len, before.values())) / 2
    # the timeline still starts at the change, and ends with the latest run
    data = cli("history", "pc-000", "--json").json()
    assert data["entries"][0]["state"] == "quarantined" and data["entries"][-1]["latest"] is True


def test_history_command_shows_the_timeline(cli, admin: Store) -> None:
    t = START
    rs = [Report("kiosk-01", f"r{i}", format_time(t + timedelta(hours=i)), format_time(t + timedelta(hours=i)),
                 outcome, 0, "stable", 3, 3, drift=drift,
                 steps={"hardware": {"outcome": "ok", "gauges": {"disk_used_percent": 50.0 + i}}})
          for i, (outcome, drift) in enumerate([
              ("ok", {}), ("repaired", {"modified": {"count": 1, "paths": ["etc/hosts"]}}), ("ok", {})])]
    for r in rs:
        admin.put_report(r)
    admin.put_report(replace(rs[-1], run_id="r9"), history=False)  # latest.json only
    data = cli("history", "kiosk-01", "--json").json()
    assert [e["state"] for e in data["entries"]] == ["ok", "repaired", "ok", "ok"]
    assert data["entries"][1]["repaired"] == ["etc/hosts"] and data["entries"][1]["drift"] == {"modified": 1}
    assert data["entries"][2]["gauges"] == {"disk_used_percent": 52.0}
    assert [e["latest"] for e in data["entries"]] == [False, False, False, True]
    out = cli("history", "kiosk-01").stdout
    assert "host kiosk-01" in out and "repaired etc/hosts" in out
    err = cli("history", "nobody", exit_code=2).stderr
    assert "no report of host 'nobody'" in err


def test_a_broken_latest_report_is_a_row_not_a_crash(cli, admin: Store) -> None:
    t = format_time(START)
    admin.put_report(Report("kiosk-02", "r1", t, t, "ok", 0, "stable", 1, 1))
    admin.backend.write("reports/kiosk-02/latest.json", b"{not json")
    data = cli("history", "kiosk-02", "--json").json()
    assert [e["state"] for e in data["entries"]] == ["ok", "failing"]
    assert data["entries"][-1]["latest"] is True and "not valid JSON" in data["entries"][-1]["errors"][0]
