"""reports/<host>/: where hosts' reports lie in a store, and how they are written, listed and read.

Each host writes latest.json (what `regen status` reads) and, when something changed, a history
entry named by time and outcome (history.py). The history entry is written first, so latest.json
is never newer than the newest entry it summarises. A history is found from one listing: nothing
is read to order it. These functions take the Backend only (the Store facade calls them).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from . import layout
from .errors import NotFound
from .generation import utcnow
from .history import HistoryEntry, parse_entry
from .report import MAX_REPORT_BYTES, Report

if TYPE_CHECKING:
    from .backend import Backend


def put_report(backend: Backend, report: Report, *, history: bool = True, now: datetime | None = None) -> str | None:
    """latest.json always; a history entry only with `history`. Returns the entry's path, or None."""
    data = report.to_json()
    path = layout.report_path(report.host, now or utcnow(), report.outcome) if history else None
    if path is not None:
        backend.write(path, data)
    backend.write(layout.report_latest_path(report.host), data)
    return path


def read_latest(backend: Backend, host: str) -> Report | None:
    try:
        data = backend.read(layout.report_latest_path(host), max_bytes=MAX_REPORT_BYTES)
    except NotFound:
        return None
    return Report.from_json(data, where=f"report of host {host}")


def latest_mtime(backend: Backend, host: str) -> datetime | None:
    """When the store last wrote the host's latest.json (its clock, not the client's); None if unknown."""
    try:
        mtime = backend.stat(layout.report_latest_path(host)).mtime
    except NotFound:
        return None
    return None if mtime is None else datetime.fromtimestamp(mtime, UTC)


def history(backend: Backend, host: str) -> list[HistoryEntry]:
    """A host's history entries in time order, from one listing."""
    prefix = f"{layout.REPORTS}/{layout.check_name(host, 'host')}"
    found = (parse_entry(p) for p in backend.list(prefix))
    return sorted((e for e in found if e is not None), key=lambda e: (e.when, e.path))


def all_history(backend: Backend) -> dict[str, list[HistoryEntry]]:
    """Every host's history entries, from one listing of reports/ (for gc)."""
    out: dict[str, list[HistoryEntry]] = {}
    for p in backend.list(layout.REPORTS):
        parts = p.split("/")
        e = parse_entry(p) if len(parts) == 3 else None
        if e is not None:
            out.setdefault(parts[1], []).append(e)
    for entries in out.values():
        entries.sort(key=lambda e: (e.when, e.path))
    return out


def read_report(backend: Backend, path: str) -> Report:
    return Report.from_json(backend.read(path, max_bytes=MAX_REPORT_BYTES), where=path)


__all__ = ["all_history", "history", "latest_mtime", "put_report", "read_latest", "read_report"]
