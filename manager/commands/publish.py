"""regen publish / rollback: move a channel's ref."""

from __future__ import annotations

from typing import Annotated

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
    trusted_key: common.TrustedKeys = None,
    trust_root: common.TrustRoot = None,
    json: common.Json = False,
    quiet: common.Quiet = False,
) -> None:
    """Point the channel at generation N: clients update to it on their next run.

    N must exist and its signature must verify with --key or a --trusted-key (never with the store's
    keys/ folder). A number lower than the current one is refused, since clients refuse to go back:
    use 'regen rollback' for that. A ref that does not verify is replaced (this repairs a tampered ref).
    """
    conn = options.connect(store, storage_option)
    trust = options.trust(key, trusted_key, trust_root, conn)
    result = publishing.publish(conn, channel, number, trust.require("publish"), key=options.optional_key(key))
    Output(json=json, quiet=quiet).publish(result)


@app.command(epilog=common.EXIT)
def rollback(
    channel: common.Channel,
    to: Annotated[int | None, typer.Option(
        "--to", metavar="N", min=1,
        help="The generation whose content to go back to (default: the current one's parent).")] = None,
    message: Annotated[str | None, typer.Option(
        "--message", "-m", metavar="MSG", help="Message of the new generation.")] = None,
    expires: common.Expires = None,
    store: common.Store = None,
    storage_option: common.StorageOptions = None,
    key: common.Key = None,
    trusted_key: common.TrustedKeys = None,
    trust_root: common.TrustRoot = None,
    json: common.Json = False,
    quiet: common.Quiet = False,
) -> None:
    """Publish the content of an older generation as a new, higher generation.

    Clients refuse generations lower than one they accepted, so going back means re-signing the old
    content under the next number; the channel is pointed at it at once. The current ref and the
    target must verify with --key or a --trusted-key; anything else is refused (exit 2).
    """
    conn = options.connect(store, storage_option)
    signing = options.load_key(key, "rollback")
    result = publishing.rollback(
        conn, channel, signing, options.trust(signing, trusted_key, trust_root, conn), to=to, message=message,
        expires=options.parse_expires(expires))
    Output(json=json, quiet=quiet).publish(result)


@app.command(epilog=common.EXIT)
def renumber(
    channel: common.Channel,
    message: Annotated[str | None, typer.Option(
        "--message", "-m", metavar="MSG", help="Message of the new generation.")] = None,
    expires: common.Expires = None,
    store: common.Store = None,
    storage_option: common.StorageOptions = None,
    key: common.Key = None,
    trusted_key: common.TrustedKeys = None,
    trust_root: common.TrustRoot = None,
    json: common.Json = False,
    quiet: common.Quiet = False,
) -> None:
    """Start a new numbering epoch: republish the newest verified generation under epoch+1.

    The way out of a burned number space: clients that accepted a huge generation number refuse
    every lower one, but accept any generation of a higher (signed) epoch. Records that do not
    verify are ignored. Clients older than this feature refuse the new record as needing a newer regen.
    """
    conn = options.connect(store, storage_option)
    signing = options.load_key(key, "renumber")
    trust = options.trust(signing, trusted_key, trust_root, conn)
    result = publishing.renumber(conn, channel, signing, trust, message=message,
                                 expires=options.parse_expires(expires))
    Output(json=json, quiet=quiet).publish(result)


@app.command(epilog=common.EXIT)
def refresh(
    channel: common.Channel,
    expires: Annotated[str, typer.Option(
        "--expires", metavar="DURATION", help="How long the timestamp is valid (run refresh well within it).")] = "1d",
    store: common.Store = None,
    storage_option: common.StorageOptions = None,
    key: common.Key = None,
    trusted_key: common.TrustedKeys = None,
    trust_root: common.TrustRoot = None,
    json: common.Json = False,
    quiet: common.Quiet = False,
) -> None:
    """Renew the signed timestamp in the channel's ref (freeze protection; run it from a timer).

    The first refresh turns freeze protection on for the channel: from then on its clients refuse a
    ref whose timestamp expired (a store withholding an update), and every publish keeps one. See
    contrib/systemd/regen-refresh.timer.
    """
    conn = options.connect(store, storage_option)
    signing = options.load_key(key, "refresh")
    result = publishing.refresh(conn, channel, signing, options.trust(signing, trusted_key, trust_root, conn),
                                options.parse_duration(expires, "--expires"))
    Output(json=json, quiet=quiet).publish(result)
