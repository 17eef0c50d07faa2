"""regen publish / rollback: move a channel's ref."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from .. import options
from .. import publish as publishing
from ..render import Output
from . import common

app = typer.Typer()


@app.command(epilog=common.EXIT)
def publish(
    number: Annotated[int, typer.Argument(metavar="N", help="The generation to publish.", min=1)],
    channel: common.Channel,
    store: common.Store = None,
    storage_option: common.StorageOptions = None,
    key: common.Key = None,
    json: common.Json = False,
    quiet: common.Quiet = False,
) -> None:
    """Point the channel at generation N: clients update to it on their next run.

    N must exist and its signature must verify against the publisher keys recorded in the store
    (and --key, if given). A number lower than the current one is refused, since clients refuse to
    go back: use 'regen rollback' for that.
    """
    conn = options.connect(store, storage_option)
    result = publishing.publish(conn, channel, number, options.optional_key(key))
    Output(json=json, quiet=quiet).publish(result)


@app.command(epilog=common.EXIT)
def rollback(
    channel: common.Channel,
    to: Annotated[Optional[int], typer.Option(
        "--to", metavar="N", min=1, help="The generation whose content to go back to (default: the current one's parent).")] = None,
    message: Annotated[Optional[str], typer.Option("--message", "-m", metavar="MSG", help="Message of the new generation.")] = None,
    expires: common.Expires = None,
    store: common.Store = None,
    storage_option: common.StorageOptions = None,
    key: common.Key = None,
    json: common.Json = False,
    quiet: common.Quiet = False,
) -> None:
    """Publish the content of an older generation as a new, higher generation.

    Clients refuse generations lower than one they accepted, so going back means re-signing the old
    content under the next number; the channel is pointed at it at once.
    """
    conn = options.connect(store, storage_option)
    result = publishing.rollback(
        conn, channel, options.load_key(key, "rollback"), to=to, message=message,
        expires=options.parse_expires(expires))
    Output(json=json, quiet=quiet).publish(result)
