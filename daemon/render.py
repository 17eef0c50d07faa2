"""Everything regend prints (the only module besides cli/__main__ that writes to stdout/stderr)."""

from __future__ import annotations

import json
import sys
import traceback
from typing import TYPE_CHECKING, Any, TextIO

from regen.store import RegenError, json_safe, printable

if TYPE_CHECKING:
    from regen.store import Report

PROG = "regend"


def _line(text: str, stream: TextIO | None = None) -> None:
    """Write one line: every string from a report, a manifest or a file name in it is escaped
    (regen.store.printable, as `ls -b` does) so it cannot drive the terminal."""
    (stream or sys.stdout).write(printable(text) + "\n")


def error(e: RegenError) -> None:
    if e.show_traceback:
        traceback.print_exception(e, file=sys.stderr)
    _line(f"{PROG}: error: {e.one_line()}", sys.stderr)
    sys.stderr.flush()


def usage_error(message: str, command: str) -> None:
    _line(f"{PROG}: error: {message} (see '{command} --help')".replace("\n", " ").rstrip(), sys.stderr)


def warning(message: str) -> None:
    _line(f"{PROG}: warning: {message}", sys.stderr)
    sys.stderr.flush()


def interrupted() -> None:
    sys.stderr.write(f"{PROG}: interrupted\n")


def internal_error() -> None:
    traceback.print_exc(file=sys.stderr)
    sys.stderr.write(f"{PROG}: internal error: this is a bug in regen; please report it with the traceback above\n")


def as_json(data: Any) -> None:
    sys.stdout.write(json.dumps(json_safe(data), indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n")


def run_summary(report: Report, warnings: list[str], upload_error: str | None, *, json_out: bool,
                quiet: bool = False) -> None:
    """Warnings on stderr, then the report (--json) or one summary line; -q: only the errors."""
    if not quiet:
        for w in warnings:
            warning(w)
        if upload_error:
            warning(f"the report waits in the outbox: {upload_error}")
    if json_out:
        sys.stdout.write(report.to_json().decode() + "\n")
        return
    if quiet:
        for e in report.errors[:10]:
            sys.stderr.write(f"{PROG}: error: {e}\n")
        return
    gen = report.generation_after if report.generation_after is not None else report.generation_before
    drift = sum(int(v.get("count", 0)) for v in report.drift.values() if isinstance(v, dict))
    acts = ", ".join(f"{k} {v}" for k, v in sorted(report.actions.items()) if isinstance(v, int)) or "no changes"
    store = f" (store {report.store_state})" if report.store_state not in (None, "ok") else ""
    _line(f"{report.outcome}{store}: channel {report.channel} generation {gen if gen is not None else '-'}; "
          f"drift {drift}; {acts}; run {report.run_id}")
    for e in report.errors[:10]:
        _line(f"  error: {e}")


def check(data: dict[str, Any], *, json_out: bool, quiet: bool = False) -> None:
    if json_out:
        as_json(data)
        return
    for w in [] if quiet else data.get("warnings", []):
        warning(w)
    _line(f"host {data['host']}, channel {data['channel']}, installed generation "
          f"{data.get('installed') if data.get('installed') is not None else '(none)'}")
    drift = data.get("drift")
    if drift:
        for kind, d in drift.items():  # deleted created modified meta, then owner xattr link time if any
            more = f" (+{d['count'] - len(d['paths'])} more)" if d["count"] > len(d["paths"]) else ""
            _line(f"  {kind:9} {d['count']:6}  {' '.join(d['paths'][:5])}{more if d['count'] > 5 else ''}")
    rep = data.get("repair")
    if rep:
        ops = rep.get("operations", 0)
        _line(f"repair: {ops} operations" + (f" ({_nonzero(rep)})" if ops else ""))
    up = data.get("update")
    if up is None:
        _line("update: unknown (store not reachable)")
    elif up.get("available") is None:
        _line("update: the channel has no published generation")
    elif not up.get("pending"):
        _line(f"update: up to date (generation {up['available']})")
    else:
        _line(f"update: pending from {up.get('from')} to {up['to']}: {up['objects_to_fetch']} objects, "
          f"{up['bytes_to_fetch']} bytes to fetch; {_nonzero(up['changes'])}")
    for f in data.get("procedures", []):
        more = f" (+{f['count'] - 5} more)" if f["count"] > 5 else ""
        why = " ".join(f["paths"][:5]) + more if f["why"] == "changed paths" else f["why"]
        _line(f"procedure {f['name']!r} would run ({f['stage']} the {f['phase']}): {why}")
    for e in data.get("errors", []):
        _line(f"  error: {e}")


def _nonzero(d: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in d.items() if isinstance(v, int) and v and k != "operations")


def status(data: dict[str, Any], *, json_out: bool) -> None:
    if json_out:
        as_json(data)
        return
    inst = data["installed"]
    _line(f"host {data['host']}, channel {data['channel']}: generation {inst if inst is not None else '(none)'}"
          + (f", overlay {data['overlay']}" if data.get("overlay") is not None else ""))
    last = data.get("last_run")
    if last:
        _line(f"last run {last['run_id']} at {last['finished']}: {last['outcome']} (exit {last['exit_code']})")
        if last.get("store_state"):
            _line(f"store: {last['store_state']}" + (f": {last['store_error']}" if last.get("store_error") else ""))
        for e in last["errors"]:
            _line(f"  error: {e}")
    else:
        _line("no run yet")
    q = data["quarantine"]
    _line(f"outbox: {data['outbox']} reports waiting; quarantine: {q['items']} items in {q['runs']} runs, "
          f"{q['bytes']} bytes")
    if data.get("interrupted_run"):
        _line(f"run {data['interrupted_run']} was interrupted; the next run finishes it")
    for step, f in data.get("failures", {}).items():
        _line(f"step {step} failed {f['count']} runs in a row: {f['message']}")
    if data.get("host_key"):
        _line(f"host key (enroll with 'regen host enroll'): {data['host_key']}")


def recover_list(runs: list[Any], items: dict[str, list[Any]] | None, *, json_out: bool) -> None:
    if json_out:
        as_json([{"run_id": r.run_id, "items": r.items, "bytes": r.bytes,
                  "paths": [i.as_dict() for i in (items or {}).get(r.run_id, [])]} for r in runs])
        return
    if not runs:
        _line("quarantine is empty")
    for r in runs:
        _line(f"{r.run_id}  {r.items} items  {r.bytes} bytes")
        for i in (items or {}).get(r.run_id, []):
            _line(f"  {i.path}  ({i.kind}, {i.size} bytes, {i.why})")


def recovered(done: list[Any]) -> None:
    """`done`: recover.Restored values (path, note)."""
    for r in done:
        _line(f"recovered {r.path}")
        if r.note:
            warning(f"{r.path}: {r.note}")
