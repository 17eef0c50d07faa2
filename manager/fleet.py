"""The fleet as the administrator needs to see it, from the hosts' latest reports (pure).

`analyse` takes plain values (each host's parsed report or the reason it could not be read,
the channels' current generations, the time) and returns a FleetStatus: one row per host
and the actions a person must take (values of actions.py):

- hardware to replace: findings with severity "fail" or a part no longer usable;
- hosts stuck on an old generation: behind their channel's current generation although
  they ran after it was created (or they stopped reporting);
- paths drifting on many hosts: the same path deleted/created/modified on at least
  `drift_min_hosts` hosts -- a candidate for `preserve`, or a fix in the reference;
- misconfigured hosts: the client reported its store configuration wrong (401/403, no store at
  its URL, an unknown channel, bad storage options): its regend.toml needs fixing;
- hosts quarantined, failing or stale: each needs a person (issue 16: they were shown in
  the table only, and a monitoring check could not see them);
- procedures that failed in a host's last run (the report's "procedures" step, issue 18);
- untrusted reports (issue 12): forged (the signature does not verify with the host's enrolled
  key), replayed (its counter is not above the last one seen) or unsigned from an enrolled host.
  Such a host is "failing": what its report says cannot be believed.

A host is stale when its report is old by the report's own time or by the store's (when the
backend gives the object's modification time): a client clock ahead must not keep a dead host
looking fresh.

`select` narrows a FleetStatus to some states and orders its rows; `check_line` is the
one-line, Nagios-style verdict of `regen status --check`.

Reports are untrusted input: anything malformed makes that host "failing" with the reason,
and never stops the analysis.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

from regen.store import HardwareFinding, Report, drift_of, format_time, parse_time
from regen.store.errors import RegenError

from .actions import (
    DriftingPath,
    FailedProcedure,
    MisconfiguredHost,
    ReplaceHardware,
    StuckHost,
    UntrustedReport,
    failed_procedures,
)
from .hostkeys import UNSIGNED, Verdict

STATES = ("ok", "repaired", "updated", "quarantined", "failing", "stale")
ATTENTION_STATES = ("quarantined", "failing", "stale")
SEVERITY = ("quarantined", "failing", "stale", "updated", "repaired", "ok")  # --sort state: worst first
SORT_KEYS = ("host", "state", "age", "generation", "channel")
DRIFT_KINDS = ("deleted", "created", "modified", "meta")
DEFAULT_STALE = timedelta(days=1)
DEFAULT_DRIFT_MIN_HOSTS = 2


@dataclass(frozen=True, slots=True)
class HostInput:
    """What was read for one host: its latest report, or why it could not be used."""

    host: str
    report: Report | None
    error: str | None = None
    stored: datetime | None = None  # when the store wrote latest.json (its clock), if the backend says
    verdict: Verdict | None = None  # the report's signature, when trusted keys were given


@dataclass(frozen=True, slots=True)
class ChannelHead:
    channel: str
    number: int
    created: str


@dataclass(frozen=True, slots=True)
class HostStatus:
    host: str
    state: str
    reported_outcome: str | None
    channel: str | None
    generation: int | None
    current: int | None  # the channel's current generation, when known
    last_seen: str | None
    age_seconds: int | None
    drift: Mapping[str, int]
    findings: tuple[HardwareFinding, ...]
    errors: tuple[str, ...]
    report_auth: str | None = None  # signed / unsigned / forged / replayed; None: not checked (no trusted key)

    @property
    def behind(self) -> bool:
        return self.generation is not None and self.current is not None and self.generation < self.current

    def as_dict(self) -> dict[str, Any]:
        return {"host": self.host, "state": self.state, "reported_outcome": self.reported_outcome,
                "channel": self.channel, "generation": self.generation, "current": self.current,
                "behind": self.behind, "last_seen": self.last_seen, "age_seconds": self.age_seconds,
                "drift": dict(self.drift), "findings": [f.as_dict() for f in self.findings],
                "errors": list(self.errors), "report_auth": self.report_auth}


@dataclass(frozen=True, slots=True)
class FleetStatus:
    generated: str
    channel: str | None
    stale_after_seconds: int
    heads: Mapping[str, int]
    hosts: tuple[HostStatus, ...]
    replace_hardware: tuple[ReplaceHardware, ...]
    stuck: tuple[StuckHost, ...]
    drifting: tuple[DriftingPath, ...]
    drift_min_hosts: int = DEFAULT_DRIFT_MIN_HOSTS
    counted: Mapping[str, int] | None = None  # counts of the whole fleet, kept by `select` (None: count `hosts`)
    misconfigured: tuple[MisconfiguredHost, ...] = ()
    procedures: tuple[FailedProcedure, ...] = ()
    untrusted: tuple[UntrustedReport, ...] = ()

    def counts(self) -> dict[str, int]:
        if self.counted is not None:
            return dict(self.counted)
        out = dict.fromkeys(STATES, 0)
        for h in self.hosts:
            out[h.state] = out.get(h.state, 0) + 1
        return out

    def attention(self, state: str) -> tuple[HostStatus, ...]:
        """Hosts in `state` (one of ATTENTION_STATES): each is an action of its own."""
        return tuple(h for h in self.hosts if h.state == state)

    @property
    def needs_attention(self) -> bool:
        return bool(self.replace_hardware or self.stuck or self.drifting or self.misconfigured or self.procedures
                    or self.untrusted or any(h.state in ATTENTION_STATES for h in self.hosts))

    def action_count(self) -> int:
        """Distinct hosts that need a person, plus drifting paths (the --check figure)."""
        hosts = {h.host for h in self.hosts if h.state in ATTENTION_STATES}
        hosts.update(a.host for a in self.replace_hardware)
        hosts.update(s.host for s in self.stuck)
        hosts.update(m.host for m in self.misconfigured)
        hosts.update(p.host for p in self.procedures)
        hosts.update(u.host for u in self.untrusted)
        return len(hosts) + len(self.drifting)

    def as_dict(self) -> dict[str, Any]:
        return {"generated": self.generated, "channel": self.channel, "stale_after_seconds": self.stale_after_seconds,
                "heads": dict(self.heads), "counts": self.counts(), "hosts": [h.as_dict() for h in self.hosts],
                "actions": {"replace_hardware": [a.as_dict() for a in self.replace_hardware],
                            "stuck": [s.as_dict() for s in self.stuck],
                            "misconfigured": [m.as_dict() for m in self.misconfigured],
                            "drifting_paths": [d.as_dict() for d in self.drifting],
                            "failed_procedures": [p.as_dict() for p in self.procedures],
                            "untrusted_reports": [u.as_dict() for u in self.untrusted],
                            "drift_min_hosts": self.drift_min_hosts,
                            **{state: [_attention_dict(h) for h in self.attention(state)]
                               for state in ATTENTION_STATES}}}


def _attention_dict(h: HostStatus) -> dict[str, Any]:
    return {"host": h.host, "last_seen": h.last_seen, "age_seconds": h.age_seconds, "errors": list(h.errors)}


@dataclass(slots=True)
class _DriftTally:
    hosts: set[str] = field(default_factory=set)
    kinds: set[str] = field(default_factory=set)


def needs_replacing(f: HardwareFinding) -> bool:
    return f.severity == "fail" or not f.usable


def _host_status(item: HostInput, heads: Mapping[str, ChannelHead], now: datetime,
                 stale_after: timedelta) -> HostStatus:
    r = item.report
    if r is None:
        return HostStatus(item.host, "failing", None, None, None, None, None, None, {}, (),
                          (item.error or "no report",))
    errors = list(r.errors)
    try:
        seen = parse_time(r.finished, f"report of host {item.host}")
        last_seen: str | None = r.finished
        if item.stored is not None and item.stored < seen:  # a client clock ahead: the store's time counts
            seen, last_seen = item.stored, format_time(item.stored)
        age: int | None = int((now - seen).total_seconds())
    except RegenError as exc:
        age, last_seen = None, None
        errors.insert(0, exc.message)
    generation = r.generation_after if r.generation_after is not None else r.generation_before
    head = heads.get(r.channel) if r.channel else None
    v = item.verdict
    untrusted = v is not None and v.note is not None and (v.auth != UNSIGNED or v.enrolled)
    if v is not None and v.note is not None:
        errors.insert(0, f"{v.auth} report: {v.note}")
    elif v is not None and v.auth == UNSIGNED:
        errors.append("unsigned report (host not enrolled)")
    if item.error or last_seen is None or untrusted:
        state = "failing"
    elif r.outcome == "quarantined":
        state = "quarantined"
    elif age is not None and age > stale_after.total_seconds():
        state = "stale"
    else:
        state = r.outcome
    if item.error:
        errors.insert(0, item.error)
    counts, _paths = drift_of(r.drift)
    return HostStatus(item.host, state, r.outcome, r.channel, generation, head.number if head else None,
                      last_seen, age, counts, tuple(r.findings), tuple(errors), v.auth if v is not None else None)


def _is_stuck(h: HostStatus, head: ChannelHead | None) -> bool:
    if not h.behind or head is None:
        return False
    if h.state == "stale" or h.last_seen is None:
        return True
    try:
        return parse_time(h.last_seen, "report") >= parse_time(head.created, "generation")
    except RegenError:
        return True


def analyse(inputs: Iterable[HostInput], heads: Mapping[str, ChannelHead], *, now: datetime,
            stale_after: timedelta = DEFAULT_STALE, channel: str | None = None,
            drift_min_hosts: int = DEFAULT_DRIFT_MIN_HOSTS) -> FleetStatus:
    hosts: list[HostStatus] = []
    tallies: dict[str, _DriftTally] = {}
    misconfigured: list[MisconfiguredHost] = []
    failed: list[FailedProcedure] = []
    untrusted: list[UntrustedReport] = []
    for item in sorted(inputs, key=lambda i: i.host):
        if channel is not None and item.report is not None and item.report.channel not in (channel, None):
            continue
        h = _host_status(item, heads, now, stale_after)
        if item.report is not None and item.report.store_state == "misconfigured":
            misconfigured.append(MisconfiguredHost(item.host, item.report.store_error or "misconfigured"))
        hosts.append(h)
        v = item.verdict
        if v is not None and v.note is not None and (v.auth != UNSIGNED or v.enrolled):
            untrusted.append(UntrustedReport(item.host, v.auth, v.note))
        if item.report is not None:
            failed.extend(failed_procedures(item.host, item.report.steps))
            for kind, paths in drift_of(item.report.drift)[1].items():
                for p in paths:
                    t = tallies.setdefault(p, _DriftTally())
                    t.hosts.add(item.host)
                    t.kinds.add(kind)
    replace = tuple(ReplaceHardware(h.host, f.component, f.message, f.severity, f.usable)
                    for h in hosts for f in h.findings if needs_replacing(f))
    stuck = tuple(StuckHost(h.host, h.channel or "", h.generation or 0, h.current or 0, h.last_seen, h.state)
                  for h in hosts if _is_stuck(h, heads.get(h.channel) if h.channel else None))
    drifting = sorted((DriftingPath(p, tuple(sorted(t.hosts)), tuple(sorted(t.kinds, key=_kind_order)))
                       for p, t in tallies.items() if len(t.hosts) >= drift_min_hosts),
                      key=lambda d: (-len(d.hosts), d.path))
    shown_heads = {c: h.number for c, h in heads.items() if channel is None or c == channel}
    return FleetStatus(format_time(now), channel, int(stale_after.total_seconds()), shown_heads, tuple(hosts), replace,
                       stuck, tuple(drifting), drift_min_hosts, misconfigured=tuple(misconfigured),
                       procedures=tuple(failed), untrusted=tuple(untrusted))


def _kind_order(kind: str) -> tuple[int, str]:
    return (DRIFT_KINDS.index(kind) if kind in DRIFT_KINDS else len(DRIFT_KINDS), kind)


def match_hosts(hosts: Iterable[str], patterns: Sequence[str]) -> list[str]:
    """Hosts named by `patterns` (exact names or shell globs: pc-*, lab-0[1-3]); all of them without patterns."""
    if not patterns:
        return list(hosts)
    return [h for h in hosts if any(fnmatchcase(h, p) for p in patterns)]


def _sort_key(key: str) -> Any:
    def age(h: HostStatus) -> tuple[int, str]:
        return (-(h.age_seconds if h.age_seconds is not None else 1 << 62), h.host)  # oldest (or unknown) first

    keys: dict[str, Any] = {
        "host": lambda h: h.host,
        "state": lambda h: (SEVERITY.index(h.state) if h.state in SEVERITY else len(SEVERITY), h.host),
        "age": age,
        "generation": lambda h: (h.generation if h.generation is not None else -1, h.host),
        "channel": lambda h: (h.channel or "", h.host),
    }
    return keys[key]


def select(fleet: FleetStatus, *, states: Sequence[str] = (), sort: str = "host") -> FleetStatus:
    """Only the hosts in `states` (all without), ordered by `sort`; actions narrowed to those hosts.

    Counts keep describing the whole fleet that was read: a filtered view still says how big it is.
    """
    if sort not in SORT_KEYS:
        raise ValueError(f"unknown sort key {sort!r}")
    hosts = tuple(sorted((h for h in fleet.hosts if not states or h.state in states), key=_sort_key(sort)))
    if not states:
        return replace(fleet, hosts=hosts)
    names = {h.host for h in hosts}
    drifting = tuple(d for d in (replace(d, hosts=tuple(x for x in d.hosts if x in names)) for d in fleet.drifting)
                     if d.hosts)
    return replace(fleet, hosts=hosts, replace_hardware=tuple(a for a in fleet.replace_hardware if a.host in names),
                   stuck=tuple(s for s in fleet.stuck if s.host in names), drifting=drifting,
                   misconfigured=tuple(m for m in fleet.misconfigured if m.host in names),
                   procedures=tuple(p for p in fleet.procedures if p.host in names),
                   untrusted=tuple(u for u in fleet.untrusted if u.host in names),
                   counted=fleet.counted if fleet.counted is not None else fleet.counts())


def check_line(fleet: FleetStatus) -> tuple[int, str]:
    """(exit status, one line) for a monitoring check: 0 "REGEN OK", 1 "REGEN WARNING" with what needs a person.

    Performance data after "|" follows the Nagios plugin format (label=value), one per state.
    """
    counts = fleet.counts()
    perf = " ".join(f"{state}={counts.get(state, 0)}" for state in STATES)
    total = len(fleet.hosts)
    if not fleet.needs_attention:
        return 0, f"REGEN OK - {total} hosts, nothing to do | hosts={total} {perf}"
    parts = [f"{len(fleet.attention(s))} {s}" for s in ATTENTION_STATES if fleet.attention(s)]
    if fleet.replace_hardware:
        parts.append(f"{len({a.host for a in fleet.replace_hardware})} with hardware to replace")
    if fleet.stuck:
        parts.append(f"{len(fleet.stuck)} stuck")
    if fleet.drifting:
        parts.append(f"{len(fleet.drifting)} paths drifting")
    if fleet.procedures:
        parts.append(f"{len({p.host for p in fleet.procedures})} with failed procedures")
    if fleet.untrusted:
        parts.append(f"{len(fleet.untrusted)} untrusted reports")
    return 1, (f"REGEN WARNING - {fleet.action_count()} actions on {total} hosts: {', '.join(parts)} "
               f"| hosts={total} {perf}")
