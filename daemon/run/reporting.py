"""The run report: collected during a run, saved in state_dir, uploaded or queued (I/O at the end).

A report that cannot be uploaded waits in the index's outbox and goes, oldest first, before
the report of the next run that reaches the store; the newest is uploaded last, so
reports/<host>/latest.json is always the newest run.

latest.json is rewritten after every run; a history entry is added only when the run differs
from the last entry in state, generation, drift or hardware findings, or that entry is a day
old (regen.store.history_due; issue 16). What the last entry was is remembered in the index
(state "report_history"); without an index every report gets an entry.

With the host's key (hostid.py) each report is signed before it is sent or queued, with the
next value of the counter kept in the index (state "report_counter"): `regen status` refuses a
report whose counter is not above the last one it saw (issue 12: replayed reports).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from regen.daemon.tree.index import Index
from regen.store import (
    HardwareFinding,
    RegenError,
    Report,
    SecretKey,
    Store,
    StoreError,
    format_time,
    history_due,
    history_marker,
    save_atomic,
    sign_report,
    utcnow,
)

REPORTS_DIR = "reports"
STEP_NAMES = ("hardware", "start", "install", "scan", "repair", "update", "report")
HISTORY_STATE = "report_history"
COUNTER_STATE = "report_counter"


@dataclass(slots=True)
class RunLog:
    run_id: str
    started: str
    channel: str | None = None
    generation_before: int | None = None
    generation_after: int | None = None
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    findings: tuple[HardwareFinding, ...] = ()
    drift: dict[str, Any] = field(default_factory=dict)
    actions: dict[str, Any] = field(default_factory=dict)
    bytes_fetched: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    store_state: str | None = None
    store_error: str | None = None

    def step(self, name: str, outcome: str, **detail: Any) -> None:
        self.steps[name] = {"outcome": outcome, **detail}

    def fail(self, name: str, exc: BaseException | str, **detail: Any) -> None:
        msg = exc.one_line() if isinstance(exc, RegenError) else str(exc)
        self.errors.append(f"{name}: {msg}")
        self.step(name, "failed", error=msg, **detail)

    def action(self, name: str, n: int) -> None:
        if n:
            self.actions[name] = self.actions.get(name, 0) + n

    def build(self, *, host: str, outcome: str, exit_code: int, version: str) -> Report:
        return Report(host=host, run_id=self.run_id, started=self.started, finished=format_time(utcnow()),
                      outcome=outcome, exit_code=exit_code, channel=self.channel,
                      generation_before=self.generation_before, generation_after=self.generation_after,
                      steps=self.steps, findings=self.findings, drift=self.drift, actions=self.actions,
                      bytes_fetched=self.bytes_fetched, errors=tuple(self.errors), warnings=tuple(self.warnings),
                      version=version, store_state=self.store_state, store_error=self.store_error)


def save_report(state_dir: str, report: Report, keep: int) -> str:
    """state_dir/reports/<run id>.json (atomic), keeping the newest `keep`."""
    d = os.path.join(state_dir, REPORTS_DIR)
    os.makedirs(d, mode=0o700, exist_ok=True)
    path = os.path.join(d, f"{report.run_id}.json")
    save_atomic(path, report.to_json())
    names = sorted(n for n in os.listdir(d) if n.endswith(".json"))
    for old in names[:-keep] if keep > 0 else []:
        os.unlink(os.path.join(d, old))
    return path


def last_report(state_dir: str) -> Report | None:
    d = os.path.join(state_dir, REPORTS_DIR)
    try:
        names = sorted(n for n in os.listdir(d) if n.endswith(".json"))
    except FileNotFoundError:
        return None
    for name in reversed(names):
        try:
            with open(os.path.join(d, name), "rb") as fp:
                return Report.from_json(fp.read(), where=name)
        except (OSError, RegenError):
            continue
    return None


def _put(store: Store, index: Index | None, report: Report) -> None:
    """Upload one report, with a history entry when it is news (then remembered in the index)."""
    due = index is None or history_due(index.state(HISTORY_STATE), report)
    store.put_report(report, history=due)
    if due and index is not None:
        with index.atomic():
            index.set_state(HISTORY_STATE, history_marker(report))


def signed(index: Index | None, report: Report, key: SecretKey | None) -> Report:
    """`report` signed with the host key and the next counter (unsigned without a key or an index)."""
    if key is None or index is None:
        return report
    last = index.state(COUNTER_STATE, 0)
    counter = (last if isinstance(last, int) and not isinstance(last, bool) else 0) + 1
    with index.atomic():
        index.set_state(COUNTER_STATE, counter)
    return sign_report(report, key, counter)


def deliver(store: Store | None, index: Index | None, report: Report, key: SecretKey | None = None) -> str | None:
    """Upload queued reports, then this one (signed with `key`); on failure queue it.
    Returns the error, or None if sent."""
    report = signed(index, report, key)
    error: str | None = "the store cannot be reached" if store is None else None
    if store is not None and index is not None:
        for ident, _run, data in index.outbox():
            try:
                _put(store, index, Report.from_json(data, where="queued report"))
            except StoreError as exc:
                error = exc.one_line()
                break
            except RegenError:
                pass  # an unreadable queued report is dropped, not retried forever
            with index.atomic():
                index.drop_outbox(ident)
    if error is None and store is not None:
        try:
            _put(store, index, report)
            return None
        except StoreError as exc:
            error = exc.one_line()
    if index is not None:
        with index.atomic():
            index.queue_report(report.run_id, report.finished, report.to_json())
    return error


__all__ = ["REPORTS_DIR", "RunLog", "deliver", "last_report", "save_report", "signed"]
