"""Synthetic fleets for the status, history and dashboard tests and benchmarks.

Reports are built the way regend builds them (daemon.reporting.RunLog.build) and stored the way
it stores them (daemon.reporting.deliver -> Store.put_report), so the manager reads exactly
what a real fleet writes. The mix is deterministic for a seed: mostly ok, some repaired and
updated, a few quarantined (with a failed disk), failing, stale, and behind their channel.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from regen.daemon.run.reporting import RunLog, deliver
from regen.store import HardwareFinding, Report, Store, format_time, utcnow

DRIFT_PATHS = ("etc/app.conf", "var/lib/app/state.db", "home/kiosk/.cache/thumbs.db", "etc/hosts")


def host_name(i: int, prefix: str = "kiosk") -> str:
    return f"{prefix}-{i:05d}"


def synthetic_report(host: str, rng: random.Random, *, now: datetime, head: int = 5,
                     channel: str = "stable", outcome: str | None = None) -> Report:
    """One run's report; `outcome` forces the state, otherwise drawn from a realistic mix."""
    roll = rng.random()
    if outcome is None:
        outcome = ("ok" if roll < 0.80 else "repaired" if roll < 0.90 else "updated" if roll < 0.94
                   else "quarantined" if roll < 0.96 else "failing" if roll < 0.98 else "stale")
    age = timedelta(days=3 + rng.random() * 5) if outcome == "stale" else timedelta(minutes=rng.randint(1, 59))
    gen = head - 1 if rng.random() < 0.03 else head
    log = RunLog(run_id=f"{host}-{rng.getrandbits(48):012x}", started=format_time(now - age - timedelta(seconds=40)),
                 channel=channel, generation_before=gen, generation_after=gen)
    log.step("hardware", "ok", findings=0, gauges={"disk_used_percent": round(20 + rng.random() * 60, 1),
                                                   "temperature_celsius": round(40 + rng.random() * 35, 1)})
    if outcome == "repaired":
        paths = rng.sample(DRIFT_PATHS, rng.randint(1, 2))
        log.drift = {"modified": {"count": len(paths), "paths": paths}}
        log.action("repaired", len(paths))
    if outcome == "quarantined":
        log.findings = (HardwareFinding("disk /dev/sda", "fail", "SMART overall-health: FAILED", {"exit": 8},
                                        usable=False),)
    if outcome == "failing":
        log.fail("install", "store unreachable: connection refused")
    report = log.build(host=host, outcome="ok" if outcome == "stale" else outcome,
                       exit_code=3 if outcome == "quarantined" else 1 if outcome == "failing" else 0,
                       version="fleetgen")
    return _with_finished(report, format_time(now - age))


def _with_finished(r: Report, finished: str) -> Report:
    from dataclasses import replace

    return replace(r, finished=finished)


def make_fleet(store: Store, n: int, *, seed: int = 16, now: datetime | None = None, jobs: int = 16,
               prefix: str = "kiosk") -> dict[str, Report]:
    """Write `n` hosts' latest reports to `store` (as regend delivers them); returns them by host."""
    now = now or utcnow()
    rng = random.Random(seed)
    reports = {host_name(i, prefix): synthetic_report(host_name(i, prefix), random.Random(rng.getrandbits(64)),
                                                      now=now) for i in range(n)}
    with ThreadPoolExecutor(jobs) as pool:
        for err in pool.map(lambda r: deliver(store, None, r), reports.values()):
            assert err is None, err
    return reports


def states_of(reports: dict[str, Report], stale_after: timedelta = timedelta(days=1),
              now: datetime | None = None) -> Iterator[tuple[str, str]]:
    """The state `regen status` must show for each synthetic host."""
    from regen.store import parse_time

    now = now or utcnow()
    for host, r in reports.items():
        if r.outcome == "quarantined":
            yield host, "quarantined"
        elif now - parse_time(r.finished, "report") > stale_after:
            yield host, "stale"
        else:
            yield host, r.outcome


def make_history(store: Store, host: str, *, days: int = 30, seed: int = 3, now: datetime | None = None) -> None:
    """A month (by default) of one host's history, as regend would have left it: a daily entry with
    its gauges, a few repairs, one update; latest.json is the newest."""
    from regen.store import history_due, history_marker

    now = now or utcnow()
    rng = random.Random(seed)
    marker = None
    disk = 35.0
    for hour in range(days * 24, -1, -6):
        when = now - timedelta(hours=hour, minutes=5)
        disk = min(97.0, disk + rng.random() * 0.4)
        gen = 4 if hour > days * 12 else 5
        outcome = "updated" if hour == days * 12 else "repaired" if rng.random() < 0.05 else "ok"
        log = RunLog(run_id=f"{host}-{hour}", started=format_time(when - timedelta(seconds=30)), channel="stable",
                     generation_before=gen, generation_after=gen)
        log.step("hardware", "ok", findings=0, gauges={"disk_used_percent": round(disk, 1),
                                                       "temperature_celsius": round(45 + rng.random() * 20, 1)})
        if outcome == "repaired":
            paths = rng.sample(DRIFT_PATHS, 2)
            log.drift = {"modified": {"count": 1, "paths": paths[:1]}, "deleted": {"count": 1, "paths": paths[1:]}}
        r = _with_finished(log.build(host=host, outcome=outcome, exit_code=0, version="fleetgen"), format_time(when))
        due = history_due(marker, r)
        store.put_report(r, history=due, now=when)
        if due:
            marker = history_marker(r)
