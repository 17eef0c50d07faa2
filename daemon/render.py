"""Everything regend prints (the only module besides cli/__main__ that writes to stdout/stderr)."""

from __future__ import annotations

import json
import sys
import traceback
from typing import TYPE_CHECKING, Any

from regen.store import RegenError

if TYPE_CHECKING:
    from regen.store import Report

PROG = "regend"


def error(e: RegenError) -> None:
    if e.show_traceback:
        traceback.print_exception(e, file=sys.stderr)
    sys.stderr.write(f"{PROG}: error: {e.one_line()}\n")
    sys.stderr.flush()


def usage_error(message: str, command: str) -> None:
    sys.stderr.write(f"{PROG}: error: {message} (see '{command} --help')\n".replace("\n", " ").rstrip() + "\n")


def warning(message: str) -> None:
    sys.stderr.write(f"{PROG}: warning: {message}".replace("\n", "\\n") + "\n")
    sys.stderr.flush()


def interrupted() -> None:
    sys.stderr.write(f"{PROG}: interrupted\n")


def internal_error() -> None:
    traceback.print_exc(file=sys.stderr)
    sys.stderr.write(f"{PROG}: internal error: this is a bug in regen; please report it with the traceback above\n")


def as_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


def run_summary(report: Report, warnings: list[str], upload_error: str | None, *, json_out: bool) -> None:
    for w in warnings:
        warning(w)
    if upload_error:
        warning(f"the report waits in the outbox: {upload_error}")
    if json_out:
        sys.stdout.write(report.to_json().decode() + "\n")
        return
    gen = report.generation_after if report.generation_after is not None else report.generation_before
    drift = sum(int(v.get("count", 0)) for v in report.drift.values() if isinstance(v, dict))
    acts = ", ".join(f"{k} {v}" for k, v in sorted(report.actions.items()) if isinstance(v, int)) or "no changes"
    sys.stdout.write(f"{report.outcome}: channel {report.channel} generation {gen if gen is not None else '-'}; "
                     f"drift {drift}; {acts}; run {report.run_id}\n")
    for e in report.errors[:10]:
        sys.stdout.write(f"  error: {e}\n")


def check(data: dict[str, Any], *, json_out: bool) -> None:
    if json_out:
        as_json(data)
        return
    for w in data.get("warnings", []):
        warning(w)
    out = sys.stdout
    out.write(f"host {data['host']}, channel {data['channel']}, installed generation "
              f"{data.get('installed') if data.get('installed') is not None else '(none)'}\n")
    drift = data.get("drift")
    if drift:
        for kind in ("deleted", "created", "modified", "meta"):
            d = drift[kind]
            more = f" (+{d['count'] - len(d['paths'])} more)" if d["count"] > len(d["paths"]) else ""
            out.write(f"  {kind:9} {d['count']:6}  {' '.join(d['paths'][:5])}{more if d['count'] > 5 else ''}\n")
    rep = data.get("repair")
    if rep:
        ops = rep.get("operations", 0)
        out.write(f"repair: {ops} operations" + (f" ({_nonzero(rep)})" if ops else "") + "\n")
    up = data.get("update")
    if up is None:
        out.write("update: unknown (store not reachable)\n")
    elif up.get("available") is None:
        out.write("update: the channel has no published generation\n")
    elif not up.get("pending"):
        out.write(f"update: up to date (generation {up['available']})\n")
    else:
        out.write(f"update: pending from {up.get('from')} to {up['to']}: {up['objects_to_fetch']} objects, "
                  f"{up['bytes_to_fetch']} bytes to fetch; {_nonzero(up['changes'])}\n")
    for e in data.get("errors", []):
        out.write(f"  error: {e}\n")


def _nonzero(d: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in d.items() if isinstance(v, int) and v and k != "operations")


def status(data: dict[str, Any], *, json_out: bool) -> None:
    if json_out:
        as_json(data)
        return
    out = sys.stdout
    inst = data["installed"]
    out.write(f"host {data['host']}, channel {data['channel']}: generation {inst if inst is not None else '(none)'}"
              + (f", overlay {data['overlay']}" if data.get("overlay") is not None else "") + "\n")
    last = data.get("last_run")
    if last:
        out.write(f"last run {last['run_id']} at {last['finished']}: {last['outcome']} (exit {last['exit_code']})\n")
        for e in last["errors"]:
            out.write(f"  error: {e}\n")
    else:
        out.write("no run yet\n")
    q = data["quarantine"]
    out.write(f"outbox: {data['outbox']} reports waiting; quarantine: {q['items']} items in {q['runs']} runs, "
              f"{q['bytes']} bytes\n")
    if data.get("interrupted_run"):
        out.write(f"run {data['interrupted_run']} was interrupted; the next run finishes it\n")
    for step, f in data.get("failures", {}).items():
        out.write(f"step {step} failed {f['count']} runs in a row: {f['message']}\n")


def recover_list(runs: list[Any], items: dict[str, list[Any]] | None, *, json_out: bool) -> None:
    if json_out:
        as_json([{"run_id": r.run_id, "items": r.items, "bytes": r.bytes,
                  "paths": [i.as_dict() for i in (items or {}).get(r.run_id, [])]} for r in runs])
        return
    if not runs:
        sys.stdout.write("quarantine is empty\n")
    for r in runs:
        sys.stdout.write(f"{r.run_id}  {r.items} items  {r.bytes} bytes\n")
        for i in (items or {}).get(r.run_id, []):
            sys.stdout.write(f"  {i.path}  ({i.kind}, {i.size} bytes, {i.why})\n")


def recovered(done: list[Any]) -> None:
    """`done`: recover.Restored values (path, note)."""
    for r in done:
        sys.stdout.write(f"recovered {r.path}\n")
        if r.note:
            warning(f"{r.path}: {r.note}")
