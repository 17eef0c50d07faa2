"""regen gc / fsck / unlock: store housekeeping."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from regen.store import DEFAULT_KEEP, MAX_HISTORY

from .. import maintenance, options
from ..render import Output
from . import common

app = typer.Typer()


@app.command(epilog=common.EXIT)
def gc(
    keep: Annotated[int, typer.Option(
        "--keep", min=1, metavar="N",
        help="Generations kept per channel (the published one always is).")] = DEFAULT_KEEP,
    grace: Annotated[str, typer.Option("--grace", metavar="DURATION",
                                       help="Unreferenced objects younger than this are kept.")] = "24h",
    keep_reports: Annotated[int, typer.Option(
        "--keep-reports", min=0, metavar="DAYS",
        help="Report history kept, in days (each host's last state change is always kept); 0 keeps all.")] = 90,
    max_reports: Annotated[int, typer.Option(
        "--max-reports", min=0, metavar="N",
        help="Report history entries kept per host at most, the newest by name (its last state change "
             "is always kept); 0: no limit.")] = MAX_HISTORY,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would be deleted.")] = False,
    store: common.Store = None,
    storage_option: common.StorageOptions = None,
    key: common.Key = None,
    trusted_key: common.TrustedKeys = None,
    trust_root: common.TrustRoot = None,
    json: common.Json = False,
    quiet: common.Quiet = False,
) -> None:
    """Delete old generations, the objects nothing refers to any more (under the store's lock) and
    report history older than --keep-reports days or beyond a host's newest --max-reports entries.

    Only generation records that verify with --key, --trusted-key or --trust-root (one is needed)
    count towards --keep and keep their objects; others are listed and left alone. A ref that
    does not verify stops gc before anything is deleted.
    """
    out = Output(json=json, quiet=quiet)
    conn = options.connect(store, storage_option)
    trust = options.trust(key, trusted_key, trust_root, conn).require("gc")
    out.gc(maintenance.gc(conn, trust, keep=keep, grace=options.parse_duration(grace, "--grace"), dry_run=dry_run,
                          progress=out.progress(),
                          keep_reports=timedelta(days=keep_reports) if keep_reports else None,
                          max_reports=max_reports or None))


@app.command(epilog=common.EXIT_FSCK)
def fsck(
    repair: Annotated[bool, typer.Option(
        "--repair",
        help="Move corrupt objects aside (under corrupt/) so the next snapshot uploads them again.")] = False,
    no_data: Annotated[bool, typer.Option(
        "--no-data", help="Check records and references only, not object content.")] = False,
    store: common.Store = None,
    storage_option: common.StorageOptions = None,
    key: common.Key = None,
    trusted_key: common.TrustedKeys = None,
    trust_root: common.TrustRoot = None,
    json: common.Json = False,
    quiet: common.Quiet = False,
) -> None:
    """Check every object's hash, every record's signature and every reference of the store.

    Signatures are checked with --key's public half and the --trusted-key files (one of them is
    needed), never with the store's keys/ folder; key files there that are not trusted are listed.
    """
    out = Output(json=json, quiet=quiet)
    conn = options.connect(store, storage_option)
    trust = options.trust(key, trusted_key, trust_root, conn).require("fsck")
    result = maintenance.check(conn, trust, repair=repair, read_data=not no_data, progress=out.progress())
    out.fsck(result)
    maintenance.raise_if_damaged(result)


@app.command(epilog=common.EXIT)
def migrate(
    pack_size: Annotated[int, typer.Option(
        "--pack-size", min=1 << 16, max=1 << 30, metavar="BYTES", help="Target size of a pack file.")] = 16 << 20,
    store: common.Store = None,
    storage_option: common.StorageOptions = None,
    json: common.Json = False,
    quiet: common.Quiet = False,
) -> None:
    """Convert a store of loose objects into a packed store (few requests per install; under the store's lock).

    Every client must run a regen that knows packs: an older one refuses the converted store
    (exit 2, "needs a newer regen") instead of misreading it. Safe to interrupt and run again.
    """
    out = Output(json=json, quiet=quiet)
    conn = options.connect(store, storage_option)
    out.migrate(maintenance.migrate(conn, pack_size=pack_size, progress=out.progress()))


@app.command(epilog=common.EXIT)
def unlock(
    store: common.Store = None,
    storage_option: common.StorageOptions = None,
    json: common.Json = False,
    quiet: common.Quiet = False,
) -> None:
    """Remove the store's writer lock left by a regen that died (check that none is running first)."""
    conn = options.connect(store, storage_option)
    Output(json=json, quiet=quiet).unlock(maintenance.unlock(conn))
