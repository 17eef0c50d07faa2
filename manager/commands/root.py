"""regen root init / add-key / revoke-key / sign: the store's root of trust and key rotation."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from regen.store import SecretKey, load_public_key, load_secret_key

from .. import options, roots
from ..errors import BadOption
from ..render import Output
from . import common

app = typer.Typer(help="The store's root of trust: which keys may publish, rotated by offline root keys.",
                  no_args_is_help=True)
RootKeys = Annotated[list[str], typer.Option(
    "--root-key", metavar="FILE", help="A root secret key file that signs the root version, repeatable.")]


def _secrets(files: list[str]) -> list[SecretKey]:
    return [load_secret_key(os.path.expanduser(f)) for f in files]


@app.command("init", epilog=common.EXIT)
def init_(
    root_key: RootKeys,
    publisher_key: Annotated[list[str], typer.Option(
        "--publisher-key", metavar="FILE.pub", help="A publisher's public key (signs generations), repeatable.")],
    threshold: Annotated[int, typer.Option(
        "--threshold", min=1, help="Root keys that must sign each new version.")] = 1,
    out: Annotated[str | None, typer.Option(
        "--out", metavar="FILE", help="Write the pin file for clients (their trust_root) and publishers.")] = None,
    store: common.Store = None,
    storage_option: common.StorageOptions = None,
    json: common.Json = False,
    quiet: common.Quiet = False,
) -> None:
    """Create root version 1: root keys, publisher keys, threshold; bound to this store's id."""
    conn = options.connect(store, storage_option)
    result = roots.init_root(conn, _secrets(root_key), threshold,
                             [load_public_key(os.path.expanduser(p)) for p in publisher_key], out)
    Output(json=json, quiet=quiet).root(result)


@app.command("add-key", epilog=common.EXIT)
def add_key(
    public: Annotated[str, typer.Argument(metavar="FILE.pub", help="The public key to add.")],
    root_key: RootKeys,
    role: Annotated[str, typer.Option("--role", help="publisher or root.")] = "publisher",
    trust_root: common.TrustRoot = None,
    store: common.Store = None,
    storage_option: common.StorageOptions = None,
    json: common.Json = False,
    quiet: common.Quiet = False,
) -> None:
    """Write the next root version with a key added to a role (a rotation: add the new key, then revoke the old)."""
    if role not in ("publisher", "root"):
        raise BadOption(f"--role {role!r} is not publisher or root")
    conn = options.connect(store, storage_option)
    result = roots.change_root(conn, trust_root, _secrets(root_key),
                               roots.add_key(role, load_public_key(os.path.expanduser(public))), "regen root add-key")
    Output(json=json, quiet=quiet).root(result)


@app.command("revoke-key", epilog=common.EXIT)
def revoke_key(
    keyid: Annotated[str, typer.Argument(metavar="KEYID", help="The key id to remove from every role.")],
    root_key: RootKeys,
    threshold: Annotated[int | None, typer.Option(
        "--threshold", min=1, help="New root threshold (default: unchanged, or lowered to the keys left).")] = None,
    trust_root: common.TrustRoot = None,
    store: common.Store = None,
    storage_option: common.StorageOptions = None,
    json: common.Json = False,
    quiet: common.Quiet = False,
) -> None:
    """Write the next root version without a key: clients refuse its signatures from then on."""
    conn = options.connect(store, storage_option)
    result = roots.change_root(conn, trust_root, _secrets(root_key), roots.revoke_key(keyid, threshold),
                               "regen root revoke-key")
    Output(json=json, quiet=quiet).root(result)


@app.command("sign", epilog=common.EXIT)
def sign(
    version: Annotated[int, typer.Argument(metavar="N", min=2, help="The root version to sign.")],
    root_key: RootKeys,
    trust_root: common.TrustRoot = None,
    store: common.Store = None,
    storage_option: common.StorageOptions = None,
    json: common.Json = False,
    quiet: common.Quiet = False,
) -> None:
    """Add your root key's signature to root version N (until the thresholds are met, clients ignore it)."""
    conn = options.connect(store, storage_option)
    Output(json=json, quiet=quiet).root(roots.sign_root(conn, trust_root, version, _secrets(root_key)))
