"""regen host set / show / rm: a host's own files over its channel (overlays)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .. import hostkeys, options, overlays
from ..render import Output
from . import common

app = typer.Typer(help="A host's own files, applied over its channel's generation (its overlay).",
                  no_args_is_help=True)
Host = Annotated[str, typer.Argument(metavar="HOST", help="The host name its regend reports under.")]


@app.command("set", epilog=common.EXIT_SNAPSHOT)
def set_(
    host: Host,
    directory: Annotated[Path, typer.Argument(metavar="DIR", help="A tree of the host's own files.")],
    message: Annotated[str, typer.Option("--message", "-m", metavar="MSG", help="What this overlay is about.")] = "",
    expires: common.Expires = None,
    procedures: Annotated[Path | None, typer.Option(
        "--procedures", metavar="FILE",
        help="TOML file of [[procedure]] tables the overlay carries; clients run them only if the channel's "
             "policy has 'overlay_procedures = true'.")] = None,
    plaintext: Annotated[bool, typer.Option(
        "--plaintext",
        help="Store the files unencrypted, readable by every client of the store (for a host that is not "
             "enrolled). Without it the overlay is sealed to HOST's enrolled key.")] = False,
    store: common.Store = None,
    storage_option: common.StorageOptions = None,
    key: common.Key = None,
    trusted_key: common.TrustedKeys = None,
    trust_root: common.TrustRoot = None,
    json: common.Json = False,
    quiet: common.Quiet = False,
) -> None:
    """Snapshot DIR as HOST's overlay (its next version), signed with --key and sealed to HOST's key.

    The files, their manifest and the table naming them are encrypted to the key HOST enrolled
    ('regen host enroll'): other clients can list and read the store but learn nothing of them.
    """
    out = Output(json=json, quiet=quiet)
    procs = options.load_overlay_procedures(procedures)  # refused before anything is read or written
    conn = options.connect(store, storage_option)
    signing = options.load_key(key, "host set")
    result = overlays.set_overlay(
        conn, host, str(directory), signing, trust=options.trust(signing, trusted_key, trust_root, conn),
        message=message,
        cache_dir=common.cache_dir(), expires=options.parse_expires(expires),
        progress=out.progress(), procedures=procs, plaintext=plaintext)
    out.overlay(result)


@app.command(epilog=common.EXIT)
def show(
    host: Host,
    store: common.Store = None,
    storage_option: common.StorageOptions = None,
    key: common.Key = None,
    trusted_key: common.TrustedKeys = None,
    trust_root: common.TrustRoot = None,
    json: common.Json = False,
    quiet: common.Quiet = False,
) -> None:
    """Show HOST's overlay: version, signature (checked with --key / --trusted-key) and its entries."""
    conn = options.connect(store, storage_option)
    trust = options.trust(key, trusted_key, trust_root, conn)
    Output(json=json, quiet=quiet).overlay_info(overlays.show_overlay(conn, host, trust))


@app.command(epilog=common.EXIT)
def rm(
    host: Host,
    store: common.Store = None,
    storage_option: common.StorageOptions = None,
    key: common.Key = None,
    trusted_key: common.TrustedKeys = None,
    trust_root: common.TrustRoot = None,
    json: common.Json = False,
    quiet: common.Quiet = False,
) -> None:
    """Remove HOST's overlay (a signed tombstone with the next version, so it cannot be replayed)."""
    conn = options.connect(store, storage_option)
    signing = options.load_key(key, "host rm")
    Output(json=json, quiet=quiet).overlay(
        overlays.remove_overlay(conn, host, signing, trust=options.trust(signing, trusted_key, trust_root, conn)))


@app.command(epilog=common.EXIT)
def enroll(
    host: Host,
    public_key: Annotated[Path, typer.Argument(
        metavar="PUBKEYFILE", help="The host's public key, as 'regend host-key' prints it on the host.")],
    store: common.Store = None,
    storage_option: common.StorageOptions = None,
    key: common.Key = None,
    trusted_key: common.TrustedKeys = None,
    trust_root: common.TrustRoot = None,
    json: common.Json = False,
    quiet: common.Quiet = False,
) -> None:
    """Enroll HOST's own key: publish it signed with --key, so 'regen status' can check its reports.

    Re-enrolling (a re-imaged host) replaces the key; the store cannot swap it without the admin key.
    """
    out = Output(json=json, quiet=quiet)
    conn = options.connect(store, storage_option)
    signing = options.load_key(key, "host enroll")
    r = hostkeys.enroll(conn, host, str(public_key), signing, options.trust(signing, trusted_key, trust_root, conn))
    out.enrolled(r)
