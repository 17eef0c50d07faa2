"""regen history HOST: one host's runs over time, from its report history.

(`regen log` is the history of a channel's generations; `regen history` is a host's.)
"""

from __future__ import annotations

from typing import Annotated

import typer

from .. import options, timeline
from ..render import Output
from . import common

app = typer.Typer()


@app.command(epilog=common.EXIT)
def history(
    host: Annotated[str, typer.Argument(metavar="HOST", help="The host, as named in 'regen status'.")],
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, max=256, metavar="N",
                                      help="History entries read at the same time.")] = timeline.DEFAULT_JOBS,
    store: common.Store = None,
    storage_option: common.StorageOptions = None,
    json: common.Json = False,
    quiet: common.Quiet = False,
) -> None:
    """A host's timeline, oldest first: state, generation, drift by kind, repaired paths, hardware.

    Clients add a history entry only when the state, generation, drift or hardware findings
    change, or once a day; the newest run (latest.json) is always the last row. 'regen gc
    --keep-reports DAYS' prunes entries older than that, keeping each host's last state change.
    """
    conn = options.connect(store, storage_option)
    Output(json=json, quiet=quiet).timeline(timeline.host_timeline(conn, host, jobs=jobs))
