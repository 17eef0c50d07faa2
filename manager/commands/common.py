"""Options shared by the commands, and the exit statuses each command's help lists."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from ..options import default_cache_dir

Store = Annotated[str | None, typer.Option(
    "--store", envvar="REGEN_STORE", metavar="URL",
    help="The store: file:///srv/regen, s3://bucket/prefix, smb://host/share/path, sftp://host/path "
         "(env REGEN_STORE).")]
StorageOptions = Annotated[list[str] | None, typer.Option(
    "-o", "--storage-option", metavar="KEY=VALUE",
    help="A storage option passed to fsspec, repeatable: -o endpoint_url=http://minio:9000 -o anon=false "
         "(true/false, integers and JSON are parsed; anything else is a string).")]
Key = Annotated[str | None, typer.Option(
    "--key", envvar="REGEN_KEY", metavar="FILE",
    help="Secret key file that signs what this command writes (env REGEN_KEY; create one with 'regen keygen').")]
TrustedKeys = Annotated[list[str] | None, typer.Option(
    "--trusted-key", envvar="REGEN_TRUSTED_KEYS", metavar="FILE",
    help="A public key file whose signatures this command accepts, repeatable (env REGEN_TRUSTED_KEYS, "
         "space-separated). --key's public half is always trusted; the store's keys/ folder never is.")]
TrustRoot = Annotated[str | None, typer.Option(
    "--trust-root", envvar="REGEN_TRUST_ROOT", metavar="FILE",
    help="The pinned root of trust ('regen root init --out'): the publisher keys of its newest version are "
         "trusted (env REGEN_TRUST_ROOT).")]
Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON (shape documented in the README).")]
Quiet = Annotated[bool, typer.Option(
    "--quiet", "-q", help="No progress bar, no warnings; print only what a script needs.")]
Channel = Annotated[str, typer.Option("--channel", "-c", metavar="NAME", help="The channel (e.g. stable).")]
ChannelAuto = Annotated[str | None, typer.Option(
    "--channel", "-c", metavar="NAME", help="The channel; may be left out when the store has only one.")]
Message = Annotated[str, typer.Option("--message", "-m", metavar="MSG", help="What this generation is about.")]
Expires = Annotated[str | None, typer.Option(
    "--expires", metavar="DURATION",
    help="Clients refuse the record after this long, e.g. 30d (default: never). Re-snapshot to renew.")]

_USAGE = ("2 usage error or bad input (no store at the URL, bad or missing key, unknown generation, "
          "store locked by another regen, bad policy file, bad option value)")
EXIT = f"Exit status: 0 success; 1 the operation failed (store unreachable, damaged or refused data); {_USAGE}."
EXIT_SNAPSHOT = (f"Exit status: 0 success; 1 the snapshot failed (a file could not be read or changed while it was "
                 f"read, an upload failed) and no generation was written; {_USAGE}.")
EXIT_FSCK = f"Exit status: 0 no damage found; 1 damage found, or the check could not run; {_USAGE}."
EXIT_STATUS = (f"Exit status: 0 the status was shown (whatever the hosts report); 1 the store could not be read; "
               f"{_USAGE}.")


def cache_dir() -> Path:
    """Where snapshot stat caches live; the environment is read here, at the edge (R12)."""
    return default_cache_dir(os.environ)
