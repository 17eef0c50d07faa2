"""regen serve: the read-only web dashboard of the fleet."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from .. import options, reports
from ..errors import BadOption
from ..render import Output
from . import common

app = typer.Typer()

EXIT_SERVE = ("Exit status: 0 success (it serves until stopped: 130 after Ctrl-C, 143 after SIGTERM); 1 the store "
              "could not be read or the address could not be bound; 2 usage error (no store at the URL, a "
              "non-loopback --bind without a token and without --no-auth, an unreadable --token-file).")


def _token(token_file: Path | None) -> str | None:
    if token_file is not None:
        try:
            token = token_file.read_text().strip()
        except OSError as exc:
            raise BadOption(f"cannot read --token-file {token_file}: {exc.strerror}") from None
        if not token:
            raise BadOption(f"--token-file {token_file} is empty")
        return token
    return os.environ.get("REGEN_SERVE_TOKEN") or None  # read at the edge (R12)


@app.command(epilog=EXIT_SERVE)
def serve(
    bind: Annotated[str, typer.Option("--bind", metavar="ADDRESS",
                                      help="Address to listen on. The default, 127.0.0.1, admits only this "
                                           "machine; any other address requires a token (or --no-auth).")
                    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", min=0, max=65535, metavar="PORT",
                                      help="TCP port (0: any free port; the URL is printed).")] = 8716,
    token_file: Annotated[Path | None, typer.Option(
        "--token-file", metavar="FILE",
        help="File holding the access token (env REGEN_SERVE_TOKEN). Programs send 'Authorization: Bearer "
             "TOKEN'; browsers log in with HTTP basic auth, any user name, the token as password. Put a TLS "
             "proxy in front for anything beyond a trusted network.")] = None,
    no_auth: Annotated[bool, typer.Option(
        "--no-auth", help="Serve a non-loopback address without a token (a trusted network only).")] = False,
    refresh: Annotated[str, typer.Option("--refresh", metavar="DURATION",
                                         help="Re-read the reports at most this often.")] = "30s",
    stale: Annotated[str, typer.Option(
        "--stale", metavar="DURATION", help="A host whose newest report is older than this is stale.")] = "1d",
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, max=256, metavar="N",
                                      help="Reports read at the same time.")] = reports.DEFAULT_JOBS,
    store: common.Store = None,
    storage_option: common.StorageOptions = None,
    quiet: common.Quiet = False,
) -> None:
    """Serve a read-only web view of the fleet: overview with counts, actions and a filterable host
    table; a page per host (timeline, drift, repaired paths, hardware findings, disk and temperature
    plots); a page per channel (generations, which hosts run which); the drifting paths; /metrics
    for Prometheus. It only reads the store (read-only credentials suffice) and has no write action.
    """
    from ..web.app import ServeOptions, make_app
    from ..web.app import serve as run
    from ..web.auth import is_loopback

    token = _token(token_file)
    if not is_loopback(bind) and token is None and not no_auth:
        raise BadOption(f"--bind {bind} would let any machine that reaches it read the fleet without a token",
                        hint="give --token-file FILE (or REGEN_SERVE_TOKEN), or --no-auth on a trusted network")
    conn = options.connect(store, storage_option)
    _ = conn.config  # no store at the URL: one line and exit 2 now, not an error page later
    opts = ServeOptions(refresh=options.parse_duration(refresh, "--refresh"),
                        stale_after=options.parse_duration(stale, "--stale"), jobs=jobs, token=token)
    out = Output(quiet=quiet)
    run(make_app(conn, opts), bind, port, out.serving)
