"""Report history that stays small: which runs leave an entry, and which entries gc removes (pure).

A client keeps `reports/<host>/latest.json` current after every run, but adds an entry to its
history only when something a person would want to see changed -- the state, the generation,
the drift counts, the hardware findings -- or when its newest entry is a day old (issue 16:
one entry per run was ~8.8 M objects a year for 1,000 hosts running hourly). A host that runs
hourly and never changes leaves one entry a day; the state it is in is named in the entry's
file name, so gc can find each host's last state change from a listing, without reading.

`prune_history` keeps every entry younger than the retention and, older than that, only the
entry where the host's present state began: `regen history` can always say since when. It also
keeps at most `MAX_HISTORY` entries per host (the newest), so a host -- or whoever holds its
write access -- cannot grow its history without bound; readers read no more than that either.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .report import Report, drift_of

HISTORY_EVERY = timedelta(days=1)
# At most this many history entries per host are read (newest first, by name) and kept by gc:
# a host writing one entry an hour for 40 days. Its own clients write about one a day; more
# means a flapping host, or someone with that host's write access filling its prefix (issue 12).
MAX_HISTORY = 1000
STAMP_FORMAT = "%Y%m%dT%H%M%S%fZ"
STAMP_LEN = 22  # YYYYMMDDTHHMMSSffffffZ


def signature(r: Report) -> str:
    """What must differ between two runs for the second to be news (a short digest)."""
    drift = sorted((k, n) for k, n in drift_of(r.drift)[0].items() if n) if r.drift else []
    generation = r.generation_after if r.generation_after is not None else r.generation_before
    findings = sorted((f.component, f.severity, f.usable) for f in r.findings)
    text = repr((r.outcome, r.channel, generation, drift, findings))  # plain values: repr is canonical
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def history_marker(r: Report) -> dict[str, str]:
    """What a client remembers of the last history entry it wrote (kept in its index)."""
    return {"signature": signature(r), "finished": r.finished}


def history_due(last: Mapping[str, Any] | None, r: Report, every: timedelta = HISTORY_EVERY) -> bool:
    """Whether run `r` gets a history entry, given the marker of the last one (None: never wrote one)."""
    if not isinstance(last, Mapping) or last.get("signature") != signature(r):
        return True
    now, then = _when(r.finished), _when(last.get("finished"))
    return now is None or then is None or now - then >= every


def _when(value: object) -> datetime | None:
    """A report time (YYYY-MM-DDTHH:MM:SSZ), or None; fromisoformat: hourly runs for a year add up."""
    if not isinstance(value, str) or len(value) != 20 or not value.endswith("Z"):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One history object, known from its name alone."""

    path: str
    when: datetime
    state: str | None  # None for entries written before names carried the state


def stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime(STAMP_FORMAT)


def entry_name(when: datetime, state: str | None) -> str:
    return f"{stamp(when)}-{state}.json" if state else f"{stamp(when)}.json"


def parse_entry(path: str) -> HistoryEntry | None:
    """The entry a history path names, or None (latest.json, temporary files, anything else)."""
    base = path.rsplit("/", 1)[-1]
    if not base.endswith(".json") or len(base) < STAMP_LEN + 5:
        return None
    rest = base[STAMP_LEN:-5]
    if rest and (not rest.startswith("-") or not rest[1:].isalpha()):
        return None
    try:
        when = datetime.strptime(base[:STAMP_LEN], STAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None
    return HistoryEntry(path, when, rest[1:] or None)


@dataclass(frozen=True, slots=True)
class HistoryPrunePlan:
    delete: tuple[str, ...]
    kept: int
    hosts: int
    over_cap: tuple[str, ...] = ()  # hosts that had more than `max_per_host` entries

    def stats(self) -> dict[str, int]:
        return {"history_to_delete": len(self.delete), "history_kept": self.kept, "hosts": self.hosts,
                "history_hosts_over_cap": len(self.over_cap)}


def last_change(entries: Sequence[HistoryEntry]) -> HistoryEntry | None:
    """The entry where the host's present state began (entries in time order)."""
    start = None
    for i, e in enumerate(entries):
        if i == 0 or e.state != entries[i - 1].state:
            start = e
    return start


def prune_history(by_host: Mapping[str, Sequence[HistoryEntry]], *, keep: timedelta | None,
                  now: datetime, max_per_host: int | None = MAX_HISTORY) -> HistoryPrunePlan:
    """Entries older than `keep` (None: any age) and beyond each host's newest `max_per_host`
    (None: any number), except each host's last state change."""
    cutoff = now - keep if keep is not None else None
    delete: list[str] = []
    kept = 0
    over: list[str] = []
    for host, entries in sorted(by_host.items()):
        ordered = sorted(entries, key=lambda e: (e.when, e.path))
        anchor = last_change(ordered)
        first = len(ordered) - max_per_host if max_per_host is not None else 0
        if first > 0:
            over.append(host)
        for i, e in enumerate(ordered):
            if e is anchor or ((cutoff is None or e.when >= cutoff) and i >= first):
                kept += 1
            else:
                delete.append(e.path)
    return HistoryPrunePlan(tuple(delete), kept, len(by_host), tuple(over))
