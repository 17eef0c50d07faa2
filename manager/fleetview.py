"""How `regen status` lays the fleet out for people: the host table and the action lines (pure).

Nothing here prints: render.py prints what these build. The host name is what a person
acts on, so it is never cut: at any width the host column is as wide as the longest name
(folded onto a second line only when a name alone is wider than the screen), and the other
columns are dropped, least useful first, until the row fits (issue 16: at 80 columns every
name was cut to `kiosk-...`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from rich import box
from rich.table import Table

from .fleet import ATTENTION_STATES, FleetStatus, HostStatus, needs_replacing
from .timeline import Timeline

ACTIONS_SHOWN = 50  # per kind in the text view; --json has them all
STATE_STYLE: dict[str, str | None] = {"ok": None, "repaired": "cyan", "updated": "blue", "quarantined": "bold red",
                                      "failing": "red", "stale": "yellow"}
_GAP = 3  # between columns: padding, divider, padding


def human_age(seconds: int | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 0:
        return "in the future"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def _gen(h: HostStatus) -> str:
    gen = "?" if h.generation is None else str(h.generation)
    return gen + (f" (< {h.current})" if h.behind else "")


def _drift(h: HostStatus) -> str:
    return ", ".join(f"{n} {k}" for k, n in h.drift.items() if n) or "-"


def _hardware(h: HostStatus) -> str:
    fails = sum(1 for f in h.findings if needs_replacing(f))
    warns = sum(1 for f in h.findings if f.severity == "warn" and f.usable)
    return ", ".join(p for p in (f"{fails} fail" if fails else "", f"{warns} warn" if warns else "") if p) or "ok"


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    cell: Callable[[HostStatus], str]
    priority: int  # lower is kept longer when the screen is narrow
    max_width: int = 0  # 0: as wide as its content; otherwise folded to at most this


def columns(shown: Callable[[str], str]) -> tuple[Column, ...]:
    """The host table's columns in display order; `shown` makes untrusted text printable."""
    return (
        Column("host", lambda h: shown(h.host), 0),
        Column("state", lambda h: h.state, 1),
        Column("channel", lambda h: h.channel or "?", 4),
        Column("gen", _gen, 2),
        Column("last seen", lambda h: human_age(h.age_seconds), 3),
        Column("drift", _drift, 6, 30),
        Column("hardware", _hardware, 5),
        Column("notes", lambda h: shown("; ".join(h.errors))[:120], 7, 60),
    )


def fit(cols: Sequence[Column], rows: Sequence[Sequence[str]], width: int) -> list[int]:
    """Indexes of the columns kept at `width`: the host always, then by priority while the row fits."""
    need = [max([len(c.name)] + [len(r[i]) for r in rows]) for i, c in enumerate(cols)]
    need = [min(n, c.max_width) if c.max_width else n for n, c in zip(need, cols)]
    kept = [0]
    used = need[0]
    for i in sorted(range(1, len(cols)), key=lambda i: cols[i].priority):
        wanted = need[i] if not cols[i].max_width else min(need[i], 12)  # foldable columns may shrink to 12
        if used + _GAP + wanted <= width:
            kept.append(i)
            used += _GAP + wanted
    return sorted(kept)


def _fold(text: str, width: int) -> list[str]:
    """`text` cut into lines of at most `width` characters (never with an ellipsis: nothing is lost)."""
    if width <= 0 or len(text) <= width:
        return [text]
    return [text[k:k + width] for k in range(0, len(text), width)]


def hosts_lines(hosts: Sequence[HostStatus], width: int, shown: Callable[[str], str]
                ) -> Iterator[tuple[str, str | None]]:
    """The host table as (line, style) pairs: plain text, aligned by hand.

    rich's Table takes ~3 ms a row (31 s for 10,000 hosts); this is linear and cheap. Cells of
    foldable columns (drift, notes) and over-long host names continue on the next lines.
    """
    cols = columns(shown)
    rows = [[c.cell(h) for c in cols] for h in hosts]
    kept = fit(cols, rows, width)
    need = [max([len(cols[i].name)] + [len(r[i]) for r in rows]) for i in kept]
    widths = [min(n, cols[i].max_width) if cols[i].max_width else n for n, i in zip(need, kept)]
    widths[0] = min(widths[0], width)
    used = sum(widths) + _GAP * (len(widths) - 1)
    if used > width and cols[kept[-1]].max_width:  # the last foldable column takes what is left
        widths[-1] = max(12, widths[-1] - (used - width))
    gap = " " * _GAP
    right = {k for k, i in enumerate(kept) if cols[i].name == "gen"}

    def lines_of(cells: list[str]) -> Iterator[str]:
        parts = [_fold(c, w) for c, w in zip(cells, widths)]
        for n in range(max(len(p) for p in parts)):
            line = gap.join((p[n] if n < len(p) else "").rjust(w) if k in right else
                            (p[n] if n < len(p) else "").ljust(w) for k, (p, w) in enumerate(zip(parts, widths)))
            yield line.rstrip()

    yield from ((line, "bold") for line in lines_of([cols[i].name for i in kept]))
    yield "-" * min(used, width), None
    for h, r in zip(hosts, rows):
        for line in lines_of([r[i] for i in kept]):
            yield line, STATE_STYLE.get(h.state)


def _more(n: int, what: str) -> Iterator[str]:
    if n > ACTIONS_SHOWN:
        yield f"  ... and {n - ACTIONS_SHOWN} more {what} (see --json)"


def action_lines(fleet: FleetStatus, shown: Callable[[str], str]) -> Iterator[str]:
    """One line per action, worst kinds first; at most ACTIONS_SHOWN of each kind."""
    for a in fleet.replace_hardware[:ACTIONS_SHOWN]:
        state = "unusable" if not a.usable else a.severity
        yield f"  replace hardware  {a.host}: {a.component} ({state}): {shown(a.message)}"
    yield from _more(len(fleet.replace_hardware), "hardware replacements")
    for state in ATTENTION_STATES:
        hosts = fleet.attention(state)
        for h in hosts[:ACTIONS_SHOWN]:
            yield f"  {state:<17} {shown(h.host)}: {_why(h, shown)}"
        yield from _more(len(hosts), f"{state} hosts")
    for s in fleet.stuck[:ACTIONS_SHOWN]:
        seen = f", last seen {s.last_seen}" if s.last_seen else ""
        yield (f"  stuck             {s.host}: generation {s.generation} of {s.channel}, current is "
               f"{s.current} ({s.state}{seen})")
    yield from _more(len(fleet.stuck), "stuck hosts")
    for m in fleet.misconfigured[:ACTIONS_SHOWN]:
        yield f"  fix configuration {shown(m.host)}: {shown(m.message)}"
    yield from _more(len(fleet.misconfigured), "misconfigured hosts")
    for d in fleet.drifting[:ACTIONS_SHOWN]:
        yield (f"  drifting path     {shown(d.path)}: {'/'.join(d.kinds)} on {len(d.hosts)} hosts "
               f"({', '.join(d.hosts[:5])}{', ...' if len(d.hosts) > 5 else ''}); preserve it or fix the reference")
    yield from _more(len(fleet.drifting), "drifting paths")
    for p in fleet.procedures[:ACTIONS_SHOWN]:
        why = "timed out" if p.timed_out else f"exit status {p.exit_status}"
        tail = f": {shown(p.last_line)}" if p.last_line else ""
        yield f"  failed procedure  {shown(p.host)}: {shown(p.name)!r} ({why}, on failure {p.failure}){tail}"
    yield from _more(len(fleet.procedures), "failed procedures")
    for u in fleet.untrusted[:ACTIONS_SHOWN]:
        yield f"  untrusted report  {shown(u.host)}: {u.auth}: {shown(u.message)}"
    yield from _more(len(fleet.untrusted), "untrusted reports")


def _why(h: HostStatus, shown: Callable[[str], str]) -> str:
    if h.state == "stale":
        return f"no report since {h.last_seen} ({human_age(h.age_seconds)}); is regend running?"
    if h.state == "quarantined":
        return "must not start its software; " + (_hardware(h) + " hardware finding(s)" if h.findings
                                                  else "see 'regen status --json' for its errors")
    return shown("; ".join(h.errors))[:200] or "its last run failed"


def timeline_table(t: Timeline, width: int, shown: Callable[[str], str]) -> Table:
    """`regen history HOST`: one row per entry, the newest run marked with '*'."""
    table = Table(title=f"host {shown(t.host)}", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False,
                  pad_edge=False)
    table.add_column("", no_wrap=True)
    table.add_column("finished", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("gen", no_wrap=True)
    table.add_column("drift", overflow="fold")
    if width >= 100:
        table.add_column("hardware", overflow="fold")
    table.add_column("notes", overflow="fold")
    for e in t.entries:
        drift = ", ".join(f"{n} {k}" for k, n in e.drift.items() if n) or "-"
        repaired = f"repaired {', '.join(shown(p) for p in e.repaired[:3])}" + (" ..." if len(e.repaired) > 3 else "")
        hw = "; ".join(f"{shown(f.component)}: {f.severity}" for f in e.findings) or "-"
        notes = "; ".join(x for x in (repaired if e.repaired else "", shown("; ".join(e.errors))[:120]) if x) or ""
        cells = ["*" if e.latest else "", e.when, e.state, "?" if e.generation is None else str(e.generation), drift]
        if width >= 100:
            cells.append(hw)
        table.add_row(*cells, notes, style=STATE_STYLE.get(e.state))
    return table
