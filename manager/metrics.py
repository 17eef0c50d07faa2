"""The fleet as Prometheus metrics: `regen status --format prometheus` and the dashboard's /metrics (pure).

Per-host series carry `host` (and `channel`) labels; fleet-wide series count hosts per state
and actions, so an alert can be as simple as `regen_fleet_actions > 0`.
"""

from __future__ import annotations

from regen.store import MetricFamily, metrics_exposition

from .fleet import ATTENTION_STATES, STATES, FleetStatus, needs_replacing


def fleet_metrics(fleet: FleetStatus) -> str:
    counts = fleet.counts()
    hosts = fleet.hosts
    fams = [
        MetricFamily("regen_fleet_hosts", "Hosts per state, from their latest reports.",
                     samples=[({"state": s}, counts.get(s, 0)) for s in STATES]),
        MetricFamily("regen_fleet_actions", "Things a person must do: hosts quarantined, failing, stale, "
                                            "stuck or with hardware to replace, and drifting paths.",
                     samples=[({}, fleet.action_count())]),
        MetricFamily("regen_fleet_drifting_paths", "Paths drifting on at least drift_min_hosts hosts.",
                     samples=[({}, len(fleet.drifting))]),
        MetricFamily("regen_channel_generation", "The generation each channel's ref points at.",
                     samples=[({"channel": c}, n) for c, n in sorted(fleet.heads.items())]),
        MetricFamily("regen_host_state", "1 for the state the host is in (one sample per host and state).",
                     samples=[({"host": h.host, "state": s}, 1 if h.state == s else 0)
                              for h in hosts for s in STATES]),
        MetricFamily("regen_host_needs_action", "1 if the host is quarantined, failing or stale.",
                     samples=[({"host": h.host}, 1 if h.state in ATTENTION_STATES else 0) for h in hosts]),
        MetricFamily("regen_host_generation", "The generation the host runs.",
                     samples=[({"host": h.host, "channel": h.channel or ""}, h.generation)
                              for h in hosts if h.generation is not None]),
        MetricFamily("regen_host_behind", "1 if the host is on an older generation than its channel's.",
                     samples=[({"host": h.host}, 1 if h.behind else 0) for h in hosts]),
        MetricFamily("regen_host_last_report_age_seconds", "Seconds since the host's latest report.",
                     samples=[({"host": h.host}, h.age_seconds) for h in hosts if h.age_seconds is not None]),
        MetricFamily("regen_host_drift_paths", "Paths found drifted by the host's latest run, per kind.",
                     samples=[({"host": h.host, "kind": k}, n) for h in hosts for k, n in sorted(h.drift.items())]),
        MetricFamily("regen_host_hardware_findings", "Hardware findings of the host's latest run, per severity.",
                     samples=[({"host": h.host, "severity": sev}, sum(1 for f in h.findings if f.severity == sev))
                              for h in hosts if h.findings for sev in ("info", "warn", "fail")]),
        MetricFamily("regen_host_hardware_replace", "Parts of the host to replace (failed or not usable).",
                     samples=[({"host": h.host}, sum(1 for f in h.findings if needs_replacing(f))) for h in hosts]),
    ]
    return metrics_exposition(fams)
