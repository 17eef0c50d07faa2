"""regen status: the fleet from its reports, and what needs a person."""

from __future__ import annotations

from typing import Annotated

import typer

from .. import options, reports
from ..fleet import DEFAULT_DRIFT_MIN_HOSTS, SORT_KEYS, STATES, check_line, select
from ..metrics import fleet_metrics
from ..render import Output
from . import common

app = typer.Typer()
FORMATS = ("table", "json", "prometheus")

EXIT_STATUS = (common.EXIT_STATUS.rstrip(".") + ". With --check (for Nagios, Icinga and the like): 0 nothing to "
               "do, 1 some host needs a person (or the store could not be read), 2 usage error; one summary line.")


def _states(values: list[str] | None) -> tuple[str, ...]:
    out: list[str] = []
    for v in values or []:
        for state in (s.strip() for s in v.split(",") if s.strip()):
            if state not in STATES:
                raise typer.BadParameter(f"unknown state {state!r} (one of {', '.join(STATES)})",
                                         param_hint="--state")
            out.append(state)
    return tuple(out)


@app.command(epilog=EXIT_STATUS)
def status(
    hosts: Annotated[list[str] | None, typer.Argument(
        metavar="[HOST]...", help="Only these hosts: names or shell globs ('kiosk-*'); others are not read.",
        show_default=False)] = None,
    channel: Annotated[str | None, typer.Option("--channel", "-c", metavar="NAME",
                                                help="Only hosts of this channel.")] = None,
    state: Annotated[list[str] | None, typer.Option(
        "--state", metavar="STATE", help=f"Only hosts in this state, repeatable or comma-separated: "
                                         f"{', '.join(STATES)}. Counts still cover every host read.")] = None,
    sort: Annotated[str, typer.Option("--sort", metavar="KEY",
                                      help=f"Order of the rows: {', '.join(SORT_KEYS)} (state: worst first; "
                                           f"age: longest silent first).")] = "host",
    stale: Annotated[str, typer.Option(
        "--stale", metavar="DURATION", help="A host whose newest report is older than this is stale.")] = "1d",
    drift_min_hosts: Annotated[int, typer.Option(
        "--drift-min-hosts", min=1, metavar="N",
        help="List a path as drifting when it drifts on at least N hosts.")] = DEFAULT_DRIFT_MIN_HOSTS,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, max=256, metavar="N",
                                      help="Reports read at the same time.")] = reports.DEFAULT_JOBS,
    check: Annotated[bool, typer.Option(
        "--check", help="Monitoring check: print one summary line; exit 1 if any host needs a person.")] = False,
    fmt: Annotated[str, typer.Option(
        "--format", metavar="FORMAT",
        help="table (default), json (as --json) or prometheus (text exposition format, e.g. for "
             "node_exporter's textfile collector or a push gateway).")] = "table",
    store: common.Store = None,
    storage_option: common.StorageOptions = None,
    key: common.Key = None,
    trusted_key: common.TrustedKeys = None,
    trust_root: common.TrustRoot = None,
    json: common.Json = False,
    quiet: common.Quiet = False,
) -> None:
    """Read every host's newest report: one row per host, then the actions a person must take.

    States: ok, repaired, updated, quarantined, failing (run failed or report unreadable), stale.
    Actions: hardware to replace (host and part), quarantined, failing and stale hosts, hosts
    stuck on an old generation, paths that drift on many hosts (candidates for 'preserve' or for
    fixing the reference). The host name is never cut: on a narrow screen other columns are left out.

    With --key or --trusted-key (the admin keys), each report is checked against its host's enrolled
    key ('regen host enroll'): forged, replayed and (from an enrolled host) unsigned reports make the
    host failing and are listed as untrusted reports; unsigned reports of hosts not enrolled are noted.
    """
    if fmt not in FORMATS:
        raise typer.BadParameter(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})", param_hint="--format")
    json = json or fmt == "json"
    if sort not in SORT_KEYS:
        raise typer.BadParameter(f"unknown sort key {sort!r} (one of {', '.join(SORT_KEYS)})", param_hint="--sort")
    states = _states(state)
    out = Output(json=json, quiet=quiet or check)
    conn = options.connect(store, storage_option)
    result = reports.fleet_status(conn, channel=channel, stale_after=options.parse_duration(stale, "--stale"),
                                  drift_min_hosts=drift_min_hosts, hosts=hosts or (), jobs=jobs,
                                  progress=out.progress(), trust=options.trust(key, trusted_key, trust_root, conn),
                                  cache_dir=common.cache_dir())
    view = select(result, states=states, sort=sort)
    if check:
        code, line = check_line(view)
        out.check(line)
        raise typer.Exit(code)
    if fmt == "prometheus":
        return out.text(fleet_metrics(view))
    out.status(view)
