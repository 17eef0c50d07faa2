"""What each page of `regen serve` shows, from plain values (pure).

The overview never renders 10,000 rows: the host table is filtered, sorted and paged here,
on the server, from the cached FleetStatus (issue 16: "a host table that stays fast at
10,000 hosts"). Query parameters are untrusted: anything unknown falls back to the default.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from urllib.parse import urlencode

from regen.store import parse_time
from regen.store.errors import RegenError

from ..fleet import SORT_KEYS, STATES, FleetStatus, HostStatus, select
from ..history import ChannelLog
from ..timeline import Timeline
from .svg import Series

PER_PAGE = 100
MAX_PER_PAGE = 1000


@dataclass(frozen=True, slots=True)
class HostQuery:
    states: tuple[str, ...] = ()
    channel: str = ""
    pattern: str = ""
    sort: str = "host"
    page: int = 1
    per_page: int = PER_PAGE

    def link(self, **change: object) -> str:
        """The query string of this view with some parameters changed (page back to 1 unless given)."""
        values: dict[str, object] = {"state": ",".join(self.states), "channel": self.channel, "q": self.pattern,
                                     "sort": self.sort, "page": 1, "per": self.per_page}
        values.update(change)
        return "?" + urlencode({k: v for k, v in values.items() if v not in ("", None)})


def _int(text: str | None, default: int, lo: int, hi: int) -> int:
    try:
        return min(max(int(text or ""), lo), hi)
    except ValueError:
        return default


def parse_query(params: Mapping[str, str]) -> HostQuery:
    states = tuple(s for s in (params.get("state") or "").split(",") if s in STATES)
    sort = params.get("sort") or "host"
    return HostQuery(states, (params.get("channel") or "")[:64], (params.get("q") or "")[:100],
                     sort if sort in SORT_KEYS else "host", _int(params.get("page"), 1, 1, 1 << 30),
                     _int(params.get("per"), PER_PAGE, 1, MAX_PER_PAGE))


def _matches(host: str, pattern: str) -> bool:
    if not pattern:
        return True
    if any(c in pattern for c in "*?["):
        return fnmatchcase(host, pattern)
    return pattern.lower() in host.lower()


@dataclass(frozen=True, slots=True)
class HostPage:
    query: HostQuery
    rows: tuple[HostStatus, ...]
    matched: int
    page: int
    pages: int


def host_page(fleet: FleetStatus, q: HostQuery) -> HostPage:
    view = select(fleet, states=q.states, sort=q.sort)
    rows = [h for h in view.hosts if _matches(h.host, q.pattern) and (not q.channel or h.channel == q.channel)]
    pages = max(1, -(-len(rows) // q.per_page))
    page = min(q.page, pages)
    start = (page - 1) * q.per_page
    return HostPage(q, tuple(rows[start:start + q.per_page]), len(rows), page, pages)


@dataclass(frozen=True, slots=True)
class GenerationRow:
    number: int
    created: str
    message: str
    files: int
    current: bool
    hosts: tuple[str, ...]


def channel_rows(fleet: FleetStatus, log: ChannelLog) -> tuple[list[GenerationRow], list[str]]:
    """The channel's generations, newest first, each with the hosts on it; and hosts on unknown ones."""
    on: dict[int | None, list[str]] = defaultdict(list)
    for h in fleet.hosts:
        if h.channel == log.channel:
            on[h.generation].append(h.host)
    known = {e.generation.number for e in log.entries}
    rows = [GenerationRow(e.generation.number, e.generation.created, e.generation.message,
                          int(e.generation.stats.get("files", 0)), e.current, tuple(on.get(e.generation.number, ())))
            for e in reversed(log.entries)]
    unknown = sorted(h for g, hosts in on.items() if g not in known for h in hosts)
    return rows, unknown


def host_series(t: Timeline) -> list[Series]:
    """Trends of a host page: fullest disk, hottest sensor, and drift per run."""
    disk, temp, drift = [], [], []
    for e in t.entries:
        try:
            when = parse_time(e.when, "report")
        except RegenError:
            continue
        if "disk_used_percent" in e.gauges:
            disk.append((when, e.gauges["disk_used_percent"]))
        if "temperature_celsius" in e.gauges:
            temp.append((when, e.gauges["temperature_celsius"]))
        drift.append((when, float(sum(e.drift.values()))))
    return [Series("disk used", "%", tuple(disk)), Series("temperature", "°C", tuple(temp)),
            Series("drifted paths", "", tuple(drift))]


def drift_by_kind(t: Timeline) -> dict[str, int]:
    """Drift counts per kind over the whole timeline."""
    out: dict[str, int] = defaultdict(int)
    for e in t.entries:
        for kind, n in e.drift.items():
            out[kind] += n
    return dict(out)
