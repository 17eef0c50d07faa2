"""regen log / show / diff: a channel's generations."""

from __future__ import annotations

from typing import Annotated

import typer

from .. import history, options
from ..render import Output
from . import common

app = typer.Typer()


@app.command(epilog=common.EXIT)
def log(
    channel: Annotated[str | None, typer.Option("--channel", "-c", metavar="NAME",
                                                help="Only this channel (default: every channel).")] = None,
    store: common.Store = None,
    storage_option: common.StorageOptions = None,
    json: common.Json = False,
    quiet: common.Quiet = False,
) -> None:
    """List the generations of each channel, newest first; '*' marks the published one."""
    conn = options.connect(store, storage_option)
    Output(json=json, quiet=quiet).log(history.log(conn, options.check_channel(channel) if channel else None))


@app.command(epilog=common.EXIT)
def show(
    number: Annotated[int, typer.Argument(metavar="N", help="The generation.")],
    channel: common.ChannelAuto = None,
    store: common.Store = None,
    storage_option: common.StorageOptions = None,
    key: common.Key = None,
    trusted_key: common.TrustedKeys = None,
    trust_root: common.TrustRoot = None,
    json: common.Json = False,
    quiet: common.Quiet = False,
) -> None:
    """Show one generation: its record, signature, tree stats and policy.

    The signature is checked with --key's public half and the --trusted-key files, never with the
    store's keys/ folder.
    """
    conn = options.connect(store, storage_option)
    trust = options.trust(key, trusted_key, trust_root, conn)
    Output(json=json, quiet=quiet).show(history.show(conn, options.resolve_channel(conn, channel), number, trust))


@app.command(epilog=common.EXIT)
def diff(
    a: Annotated[int, typer.Argument(metavar="A", help="The older generation.")],
    b: Annotated[int, typer.Argument(metavar="B", help="The newer generation.")],
    channel: common.ChannelAuto = None,
    store: common.Store = None,
    storage_option: common.StorageOptions = None,
    json: common.Json = False,
    quiet: common.Quiet = False,
) -> None:
    """List the paths that differ from generation A to B: + added, - removed, M modified, m mode.

    --quiet prints only the summary line.
    """
    conn = options.connect(store, storage_option)
    with history.diff_generations(conn, options.resolve_channel(conn, channel), a, b) as (spec, changes):
        Output(json=json, quiet=quiet).diff(spec, changes)
