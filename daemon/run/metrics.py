"""regend's Prometheus textfile: the last run as node_exporter's textfile collector reads it.

Off unless `[reports] metrics = "/var/lib/prometheus/node-exporter/regen.prom"` is set. The
file is rewritten after every run (the one in state_dir is not used, so an unset path costs
nothing) atomically -- a temporary file in the same folder, renamed -- since the collector may
read at any moment. `run_metrics` is pure; `write_metrics` is the only I/O.
"""

from __future__ import annotations

from regen.store import MetricFamily, Report, drift_of, metrics_exposition, parse_time, save_atomic
from regen.store.errors import RegenError

OUTCOMES = ("ok", "repaired", "updated", "quarantined", "failing")


def run_metrics(report: Report, *, quarantined_bytes: int) -> str:
    """The run's metrics (gauges; labels: channel, drift kind, finding severity, outcome)."""
    try:
        finished = parse_time(report.finished, "report").timestamp()
        duration = finished - parse_time(report.started, "report").timestamp()
    except RegenError:
        finished, duration = float("nan"), float("nan")
    generation = report.generation_after if report.generation_after is not None else report.generation_before
    counts, _ = drift_of(report.drift)
    repaired = sum(n for n in counts.values()) if report.outcome == "repaired" else 0
    channel = {"channel": report.channel or ""}
    fams = [
        MetricFamily("regen_last_run_timestamp_seconds", "When regend's last run finished (Unix time).",
                     samples=[({}, finished)]),
        MetricFamily("regen_last_run_duration_seconds", "How long regend's last run took.",
                     samples=[({}, duration)]),
        MetricFamily("regen_last_run_exit_code", "Exit status of the last run (0 ok, 1 failed, 3 quarantined).",
                     samples=[({}, report.exit_code)]),
        MetricFamily("regen_last_run_success", "1 if the last run did not fail (ok, repaired or updated).",
                     samples=[({}, 1 if report.outcome in ("ok", "repaired", "updated") else 0)]),
        MetricFamily("regen_state", "1 for the outcome of the last run (one sample per possible outcome).",
                     samples=[({"state": o}, 1 if report.outcome == o else 0) for o in OUTCOMES]),
        MetricFamily("regen_generation", "The generation installed after the last run.",
                     samples=[(channel, generation)] if generation is not None else []),
        MetricFamily("regen_drift_paths", "Paths found drifted by the last run, per kind.",
                     samples=[({"kind": k}, n) for k, n in sorted(counts.items())]),
        MetricFamily("regen_repaired_paths", "Paths the last run put back.", samples=[({}, repaired)]),
        MetricFamily("regen_quarantined_bytes", "Bytes held in the client's quarantine.",
                     samples=[({}, quarantined_bytes)]),
        MetricFamily("regen_hardware_findings", "Hardware findings of the last run, per severity.",
                     samples=[({"severity": s}, sum(1 for f in report.findings if f.severity == s))
                              for s in ("info", "warn", "fail")]),
        MetricFamily("regen_hardware_unusable", "Parts the last run found not usable.",
                     samples=[({}, sum(1 for f in report.findings if not f.usable))]),
    ]
    return metrics_exposition(fams)


def write_metrics(path: str, text: str) -> None:
    """Replace `path` atomically (node_exporter may read it at any moment); mode 0644."""
    save_atomic(path, text.encode("utf-8"), mode=0o644)
