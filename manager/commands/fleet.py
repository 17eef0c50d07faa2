"""regen status: the fleet from its reports, and what needs a person."""

from __future__ import annotations

from typing import Annotated

import typer

from .. import options, reports
from ..fleet import DEFAULT_DRIFT_MIN_HOSTS
from ..render import Output
from . import common

app = typer.Typer()


@app.command(epilog=common.EXIT_STATUS)
def status(
    channel: Annotated[str | None, typer.Option("--channel", "-c", metavar="NAME",
                                                help="Only hosts of this channel.")] = None,
    stale: Annotated[str, typer.Option(
        "--stale", metavar="DURATION", help="A host whose newest report is older than this is stale.")] = "1d",
    drift_min_hosts: Annotated[int, typer.Option(
        "--drift-min-hosts", min=1, metavar="N",
        help="List a path as drifting when it drifts on at least N hosts.")] = DEFAULT_DRIFT_MIN_HOSTS,
    store: common.Store = None,
    storage_option: common.StorageOptions = None,
    json: common.Json = False,
    quiet: common.Quiet = False,
) -> None:
    """Read every host's newest report: one row per host, then the actions a person must take.

    States: ok, repaired, updated, quarantined, failing (run failed or report unreadable), stale.
    Actions: hardware to replace (host and part), hosts stuck on an old generation, paths that
    drift on many hosts (candidates for 'preserve' or for fixing the reference).
    """
    conn = options.connect(store, storage_option)
    result = reports.fleet_status(conn, channel=channel, stale_after=options.parse_duration(stale, "--stale"),
                                  drift_min_hosts=drift_min_hosts)
    Output(json=json, quiet=quiet).status(result)
