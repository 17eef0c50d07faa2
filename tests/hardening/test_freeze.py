"""Freeze protection (issue 12, step 4): a store that keeps serving an old ref -- withholding an
update -- is noticed once the ref's signed timestamp expires, and a run with nothing to do still
reads one object.

Real `regen refresh`/`regen snapshot` and real `regend run --once`; the attacker restores the old
ref bytes (a valid, signed, but stale ref).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from regen.store import Policy, SecretKey, Store, layout

from ..conftest import make_tree, run_cli
from .conftest import Client, publish


@pytest.fixture
def world(tmp_path: Path, signing_key: SecretKey, key_files: tuple[Path, Path]) -> dict[str, Any]:
    store = Store.init(f"file://{tmp_path / 'store'}")
    publish(store, signing_key, {"etc/app.conf": "v1\n"}, number=1, policy=Policy())
    client = Client(tmp_path / "client", store.url, key_files[1])
    client.root.mkdir(parents=True)
    client.write_config()
    env = {"REGEN_STORE": store.url, "REGEN_KEY": str(key_files[0])}
    return {"store": store, "client": client, "env": env, "tmp": tmp_path}


@pytest.mark.slow
def test_withheld_update_is_refused_once_the_timestamp_expires(world: dict[str, Any]) -> None:
    store, c, env = world["store"], world["client"], world["env"]
    run_cli("regen", "refresh", "-c", "stable", "--expires", "3s", env=env)
    c.regend("run", "--once")
    assert (c.root / "etc/app.conf").read_text() == "v1\n"
    withheld = store.read_ref("stable")
    src = make_tree(world["tmp"] / "src", {"etc/app.conf": "v2: the security fix\n"})
    run_cli("regen", "snapshot", str(src), "-c", "stable", "-m", "fix", "--publish", env=env)
    ref = json.loads(store.read_ref("stable") or b"")
    assert any("timestamp" in s for s in ref["signatures"])  # a publish keeps the channel timestamped
    store.backend.write(layout.ref_path("stable"), withheld or b"")  # the attacker serves the old ref
    c.regend("run", "--once")  # still fresh: nothing to notice yet
    time.sleep(3.5)
    res = c.regend("run", "--once", exit_code=None)
    out = res.stdout + res.stderr
    assert res.returncode in (0, 1) and "expired" in out and "withholding" in out, out
    assert (c.root / "etc/app.conf").read_text() == "v1\n"  # kept running from what it has
    # stripping the timestamp does not help: the channel was timestamped
    store.backend.write(layout.ref_path("stable"), store.read_generation("stable", 1))
    res = c.regend("run", "--once", exit_code=None)
    assert "carries no valid timestamp" in res.stdout + res.stderr


def test_refresh_keeps_clients_updating_and_the_ref_a_copy_of_its_record(world: dict[str, Any]) -> None:
    """Old readers skip the timestamp entry: the ref still verifies as the generation's record."""
    from regen.store import fsck, load_secret_key, strip_timestamp, trust_map, verify_generation

    store, c, env = world["store"], world["client"], world["env"]
    run_cli("regen", "refresh", "-c", "stable", env=env)
    key = load_secret_key(env["REGEN_KEY"])
    ref = store.read_ref("stable") or b""
    assert strip_timestamp(ref) == store.read_generation("stable", 1) != ref
    assert verify_generation(ref, trust_map([key.public]), store_id=store.store_id, channel="stable").number == 1
    assert not fsck(store, trust_map([key.public]), read_data=False).damaged
    c.regend("run", "--once")
    assert (c.root / "etc/app.conf").read_text() == "v1\n"


def test_replayed_removed_overlay_is_refused_by_a_fresh_client(world: dict[str, Any]) -> None:
    """A host's overlay was removed (tombstone); the store serves the old overlay again to a fresh
    (re-imaged) client that never saw the removal: the timestamp's overlay versions refuse it."""
    store, c, env = world["store"], world["client"], world["env"]
    files = make_tree(world["tmp"] / "host-files", {"etc/wifi.psk": "old secret\n"})
    run_cli("regen", "refresh", "-c", "stable", env=env)
    run_cli("regen", "host", "set", c.host, str(files), "--plaintext", env=env)
    old = store.read_overlay(c.host)
    run_cli("regen", "host", "rm", c.host, env=env)  # a tombstone, and the timestamp lists version 2
    tombstone = store.read_overlay(c.host)
    store.backend.write(layout.overlay_path(c.host), old or b"")  # the replay
    res = c.regend("run", "--once", exit_code=None)
    out = res.stdout + res.stderr
    assert "replayed or withheld overlay" in out, out
    assert not (c.root / "etc/wifi.psk").exists()
    store.backend.write(layout.overlay_path(c.host), tombstone or b"")  # the administrator repairs it
    run_cli("regen", "host", "set", c.host, str(files), "--plaintext", env=env)  # version 3, listed by a fresh stamp
    c.regend("run", "--once")
    assert (c.root / "etc/wifi.psk").read_text() == "old secret\n"
