"""regen snapshot: the reference tree becomes the channel's next signed generation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .. import options
from ..render import Output
from ..snapshot import snapshot as take_snapshot
from . import common

app = typer.Typer()


@app.command(epilog=common.EXIT_SNAPSHOT)
def snapshot(
    src: Annotated[Path, typer.Argument(metavar="SRC", help="The reference tree (a directory).")],
    channel: common.Channel,
    message: common.Message,
    policy: Annotated[Path | None, typer.Option(
        "--policy", metavar="FILE",
        help="TOML policy signed into the generation: preserve, base, exclude, junk (see contrib/policy.toml). "
             "Default: the channel's current policy.")] = None,
    publish: Annotated[bool, typer.Option("--publish", help="Also point the channel at the new generation.")] = False,
    expires: common.Expires = None,
    full: Annotated[bool, typer.Option(
        "--full", help="Check that the store holds every object of the tree, not only new ones "
                       "(after 'regen fsck' reported missing objects).")] = False,
    cross: Annotated[bool, typer.Option(
        "--cross-file-systems", help="Also take in what other file systems mounted below SRC hold (default: "
                                     "their mount points are kept empty, one warning line each).")] = False,
    limit_upload: Annotated[str | None, typer.Option(
        "--limit-upload", metavar="RATE",
        help="Upload at most RATE bytes per second, e.g. 2M (the storage option max_upload_rate).")] = None,
    store: common.Store = None,
    storage_option: common.StorageOptions = None,
    key: common.Key = None,
    trusted_key: common.TrustedKeys = None,
    trust_root: common.TrustRoot = None,
    json: common.Json = False,
    quiet: common.Quiet = False,
) -> None:
    """Snapshot SRC into the next generation of a channel, and print what changed.

    The channel's current ref (its policy, parent and number) is built on only if it verifies with
    --key or a --trusted-key; a ref that does not is refused (exit 2).

    Only files whose size, times, inode or mode changed since the last snapshot of SRC are read
    (each once); only content the store lacks is uploaded. Owners (ids and names), mtimes,
    extended attributes, ACLs, capabilities, hard links, FIFOs, device nodes and holes are kept;
    sockets are skipped with a warning. On a live / the content of proc, sys, dev and run is left
    out. Nothing is written if a file cannot be read or changes while it is read.
    """
    out = Output(json=json, quiet=quiet)
    limits = [f"max_upload_rate={limit_upload}"] if limit_upload else []
    conn = options.connect(store, [*(storage_option or []), *limits])
    signing = options.load_key(key, "snapshot")
    result = take_snapshot(
        conn, str(src), channel=channel, message=message, key=signing,
        trust=options.trust(signing, trusted_key, trust_root, conn),
        policy=options.load_policy(policy), publish=publish, cache_dir=common.cache_dir(),
        expires=options.parse_expires(expires), progress=out.progress(),
        full=full, one_file_system=not cross)
    out.snapshot(result)
