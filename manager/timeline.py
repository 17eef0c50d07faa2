"""A host's timeline: its history entries and latest report, oldest first (I/O through the Store).

History entries are written only when something changed or once a day (regen.store.history),
so a year of an hourly host is a few hundred small reads at most; they are read `jobs` at a
time. An entry that cannot be read or parsed becomes a row with the reason, as in `status`.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from regen.store import MAX_HISTORY, HardwareFinding, Report, Store, drift_of, format_time, utcnow
from regen.store.errors import NotFound, StoreAccessDenied, StoreError, StoreUnreachable

from .errors import HostNotFound
from .options import check_host

DEFAULT_JOBS = 16


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    when: str  # when the run finished (the report's own time; the entry's name for unreadable ones)
    state: str
    channel: str | None
    generation: int | None
    drift: Mapping[str, int]
    repaired: tuple[str, ...]  # paths the run put back, as listed in its drift section
    findings: tuple[HardwareFinding, ...]
    gauges: Mapping[str, float]
    errors: tuple[str, ...]
    latest: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"when": self.when, "state": self.state, "channel": self.channel, "generation": self.generation,
                "drift": dict(self.drift), "repaired": list(self.repaired),
                "findings": [f.as_dict() for f in self.findings], "gauges": dict(self.gauges),
                "errors": list(self.errors), "latest": self.latest}


@dataclass(frozen=True, slots=True)
class Timeline:
    host: str
    entries: tuple[TimelineEntry, ...]
    skipped: int = 0  # older history entries not read: the host has more than MAX_HISTORY

    def as_dict(self) -> dict[str, Any]:
        return {"host": self.host, "entries": [e.as_dict() for e in self.entries], "skipped": self.skipped}


def _gauges(r: Report) -> dict[str, float]:
    hw = r.steps.get("hardware")
    g = hw.get("gauges") if isinstance(hw, Mapping) else None
    if not isinstance(g, Mapping):
        return {}
    return {str(k): float(v) for k, v in g.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def entry_of(r: Report, *, latest: bool = False) -> TimelineEntry:
    """One row from one report (untrusted: odd shapes are ignored, never raised)."""
    counts, paths = drift_of(r.drift)
    repaired = tuple(p for kind in paths for p in paths[kind]) if r.outcome == "repaired" else ()
    generation = r.generation_after if r.generation_after is not None else r.generation_before
    return TimelineEntry(r.finished, r.outcome, r.channel, generation, counts, repaired, tuple(r.findings),
                         _gauges(r), tuple(r.errors), latest)


def _broken(when: datetime, message: str) -> TimelineEntry:
    return TimelineEntry(format_time(when), "failing", None, None, {}, (), (), {}, (message,))


def host_timeline(store: Store, host: str, *, jobs: int = DEFAULT_JOBS, limit: int = MAX_HISTORY) -> Timeline:
    """The newest `limit` history entries of `host` (by name) and its latest report, in time order.

    A host's prefix is written by the host (or whoever holds its credentials): however many
    entries it holds, at most `limit` are read; the rest are counted in `skipped` (issue 12).
    """
    check_host(host)
    _ = store.config
    listed = store.report_history(host)
    entries = listed[-limit:] if limit > 0 else []

    def read(path: str) -> Report | StoreError | None:
        try:
            return store.read_report(path)
        except (StoreUnreachable, StoreAccessDenied):
            raise
        except NotFound:
            return None  # pruned by a gc since the listing
        except StoreError as exc:
            return exc

    with ThreadPoolExecutor(max(1, jobs)) as pool:
        reports = list(pool.map(read, [e.path for e in entries]))
    kept = [(e, r) for e, r in zip(entries, reports) if r is not None]
    try:
        latest, latest_error = store.read_latest_report(host), None
    except (StoreUnreachable, StoreAccessDenied):
        raise
    except StoreError as exc:
        latest, latest_error = None, exc
    if not kept and latest is None and latest_error is None:
        raise HostNotFound(f"no report of host {host!r} in {store.url}")
    rows = [entry_of(r) if isinstance(r, Report) else _broken(e.when, r.message) for e, r in kept]
    newest = kept[-1][1] if kept else None
    if latest_error is not None:
        rows.append(replace(_broken(utcnow(), f"latest.json: {latest_error.message}"), latest=True))
    if latest is not None:
        if isinstance(newest, Report) and newest.run_id == latest.run_id:
            rows[-1] = replace(rows[-1], latest=True)  # the latest run was news: it is the newest entry
        else:
            rows.append(entry_of(latest, latest=True))
    return Timeline(host, tuple(rows), len(listed) - len(entries))
