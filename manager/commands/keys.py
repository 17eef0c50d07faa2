"""regen keygen: an ed25519 key pair for signing generations."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .. import maintenance
from ..render import Output
from . import common

app = typer.Typer()


@app.command(epilog=common.EXIT)
def keygen(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="The secret key file to create (FILE.pub too).")],
    json: common.Json = False,
    quiet: common.Quiet = False,
) -> None:
    """Create a signing key pair: FILE (secret, mode 0600) and FILE.pub (public).

    Copy FILE.pub to every client and list it in its trusted_keys. An existing file is never overwritten.
    """
    Output(json=json, quiet=quiet).keygen(maintenance.keygen(str(file)))
