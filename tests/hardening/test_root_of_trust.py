"""Root of trust with rotation (issue 12, step 3): clients pin a threshold-signed root that lists the
publisher keys and the store id; rotations and revocations are new root versions.

Real `regen root ...` commands, real `regend run --once` clients configured with `trust_root`
only. Scenarios: a lab store signed by the same publisher key is refused; a client offline
through two rotations (add the new key, revoke the old) walks both and updates, after which the
revoked key's signatures are refused; a 2-of-3 root threshold (one root key is not enough).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from regen.store import Policy, SecretKey, Store, generate

from ..conftest import run_cli
from .conftest import Client, publish


def keyfile(tmp: Path, name: str, key: SecretKey) -> tuple[str, str]:
    secret, public = tmp / f"{name}.key", tmp / f"{name}.key.pub"
    secret.write_text(key.text())
    secret.chmod(0o600)
    public.write_text(key.public.text())
    return str(secret), str(public)


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Any]:
    """A store with a 2-of-3 root (R1, R2, R3) naming publisher P1; generation 1 by P1; a client pinned to it."""
    store = Store.init(f"file://{tmp_path / 'store'}")
    keys = {n: generate() for n in ("r1", "r2", "r3", "p1", "p2")}
    files = {n: keyfile(tmp_path, n, k) for n, k in keys.items()}
    env = {"REGEN_STORE": store.url, "REGEN_TRUST_ROOT": str(tmp_path / "root.json")}
    res = run_cli("regen", "root", "init", "--root-key", files["r1"][0], "--root-key", files["r2"][0],
                  "--root-key", files["r3"][0], "--threshold", "2", "--publisher-key", files["p1"][1],
                  "--out", str(tmp_path / "root.json"), "--json", env={"REGEN_STORE": store.url})
    assert json.loads(res.stdout)["version"] == 1
    publish(store, keys["p1"], {"etc/app.conf": "v1\n"}, number=1, policy=Policy())
    client = Client(tmp_path / "client", store.url, Path(files["p1"][1]))
    client.root.mkdir(parents=True)
    pin_client(client, tmp_path / "root.json")
    return {"store": store, "keys": keys, "files": files, "env": env, "client": client, "tmp": tmp_path}


def pin_client(client: Client, root_file: Path, url: str | None = None) -> None:
    client.write_config()
    text = client.config.read_text()
    lines = [f"trust_root = {json.dumps(str(root_file))}" if line.startswith("trusted_keys") else line
             for line in text.splitlines()]
    if url:
        lines = [f"store = {json.dumps(url)}" if line.startswith("store ") else line for line in lines]
    client.config.write_text("\n".join(lines) + "\n")


def root_cmd(w: dict[str, Any], *args: str, signers: tuple[str, ...] = ("r1", "r2")) -> dict[str, Any]:
    keys = [a for s in signers for a in ("--root-key", w["files"][s][0])]
    return json.loads(run_cli("regen", "root", *args, *keys, "--json", env=w["env"]).stdout)


def content(c: Client) -> str:
    return (c.root / "etc/app.conf").read_text()


def test_lab_store_signed_with_the_same_key_is_refused(world: dict[str, Any]) -> None:
    """A fresh client pinned to production's root, pointed at a lab store the same key signs: refused."""
    lab = Store.init(f"file://{world['tmp'] / 'lab'}")
    publish(lab, world["keys"]["p1"], {"etc/app.conf": "lab build\n"}, number=7, policy=Policy())
    c = world["client"]
    pin_client(c, world["tmp"] / "root.json", url=lab.url)
    res = c.regend("run", "--once", exit_code=1)  # nothing installed yet: the run failed, the machine may not start
    assert "not store" in res.stdout + res.stderr and "root of trust" in res.stdout + res.stderr
    assert not (c.root / "etc/app.conf").exists()


def test_client_offline_through_two_rotations_then_revoked_key_refused(world: dict[str, Any]) -> None:
    c, store, keys = world["client"], world["store"], world["keys"]
    c.regend("run", "--once")
    assert content(c) == "v1\n"
    assert root_cmd(world, "add-key", world["files"]["p2"][1])["version"] == 2
    assert root_cmd(world, "revoke-key", keys["p1"].public.keyid)["version"] == 3
    publish(store, keys["p2"], {"etc/app.conf": "v2 by the new key\n"}, number=2, policy=Policy())
    c.regend("run", "--once")  # walks root versions 2 and 3, then accepts P2's generation
    assert content(c) == "v2 by the new key\n"
    publish(store, keys["p1"], {"etc/app.conf": "signed with the revoked key\n"}, number=3, policy=Policy())
    res = c.regend("run", "--once")  # the refused update fails; the installed generation 2 still serves (exit 0)
    assert "unknown key" in res.stdout + res.stderr, res.stdout
    assert content(c) == "v2 by the new key\n"
    # the manager, pinned to the same root, no longer trusts P1 either
    out = run_cli("regen", "show", "3", "-c", "stable", "--json", env=world["env"])
    assert json.loads(out.stdout)["verified"] is False


def test_threshold_two_of_three(world: dict[str, Any]) -> None:
    """A root version signed by one of three root keys is not accepted; a second signature completes it."""
    c, store, keys = world["client"], world["store"], world["keys"]
    c.regend("run", "--once")
    pending = root_cmd(world, "add-key", world["files"]["p2"][1], signers=("r1",))
    assert pending["missing_signatures"] == 1
    publish(store, keys["p2"], {"etc/app.conf": "v2\n"}, number=2, policy=Policy())
    res = c.regend("run", "--once")  # the refused update fails; generation 1 still serves (exit 0)
    assert "unknown key" in res.stdout + res.stderr and content(c) == "v1\n"
    assert root_cmd(world, "sign", "2", signers=("r3",))["missing_signatures"] == 0
    c.regend("run", "--once")
    assert content(c) == "v2\n"
