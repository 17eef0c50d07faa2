"""regen init: create an empty store."""

from __future__ import annotations

from typing import Annotated

import typer

from .. import maintenance
from ..render import Output
from . import common

app = typer.Typer()


@app.command(epilog=common.EXIT)
def init(
    url: Annotated[str, typer.Argument(metavar="URL", help="Where to create the store, e.g. file:///srv/regen.")],
    compression: Annotated[str, typer.Option(
        "--compression", help="How objects are stored: zstd or none.", metavar="zstd|none")] = "zstd",
    packs: Annotated[bool, typer.Option(
        "--packs", help="Pack small objects and chunks into pack files (few requests per install; needs a "
                        "regen that knows the packs feature on every client).")] = False,
    pack_size: Annotated[int, typer.Option(
        "--pack-size", min=1 << 16, max=1 << 30, metavar="BYTES",
        help="Target size of a pack file (with --packs).")] = 16 << 20,
    storage_option: common.StorageOptions = None,
    json: common.Json = False,
    quiet: common.Quiet = False,
) -> None:
    """Create an empty store at URL.

    Refuses a location that already holds a regen store, or other data.
    """
    Output(json=json, quiet=quiet).init(maintenance.init_store(url, storage_option, compression,
                                                                       packed=packs, pack_size=pack_size))
