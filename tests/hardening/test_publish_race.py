"""Two publishers and long snapshots (issue 12, step 2).

A snapshot (publisher A, run in-process so the scenario can act at a precise moment of it) is
interrupted after its uploads by a second actor: another `regen` (a real subprocess), a gc that
found A's lease expired, or a writer that ignores the lock. In every case A must stop with one
clear error and overwrite nothing; the store stays complete (fsck clean) and the ref names the
winner's generation.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from regen.manager.errors import RefMoved
from regen.manager.snapshot import snapshot
from regen.store import (
    Generation,
    LockHeld,
    Policy,
    SecretKey,
    Store,
    format_time,
    fsck,
    layout,
    object_id,
    trust_map,
    utcnow,
)

from ..conftest import make_tree, run_cli
from .conftest import publish


class AfterUploads:
    """A Progress that runs `action` once, when the snapshot has uploaded its file contents (its
    first `finish()`: the end of the scan with its inline uploads, or of the upload phase)."""

    def __init__(self, action: Callable[[], None]) -> None:
        self.action, self.done = action, False

    def start(self, label: str, total_items: int | None = None, total_bytes: int | None = None) -> None:
        pass

    def advance(self, items: int = 1, nbytes: int = 0) -> None:
        pass

    def finish(self) -> None:
        if not self.done:
            self.done = True
            self.action()


@pytest.fixture
def world(tmp_path: Path, signing_key: SecretKey, key_files: tuple[Path, Path]) -> dict[str, Any]:
    store = Store.init(f"file://{tmp_path / 'store'}")
    publish(store, signing_key, {"etc/app.conf": "v1\n"}, number=1, policy=Policy())
    src = make_tree(tmp_path / "a", {f"etc/a{i}.conf": f"publisher A {i}\n" for i in range(20)})
    env = {"REGEN_STORE": store.url, "REGEN_KEY": str(key_files[0])}
    return {"store": store, "src": src, "env": env, "tmp": tmp_path, "key": signing_key}


def snapshot_a(w: dict[str, Any], action: Callable[[], None]) -> Any:
    return snapshot(w["store"], str(w["src"]), channel="stable", message="A", key=w["key"], policy=None,
                    publish=True, cache_dir=w["tmp"] / "cache-a", progress=AfterUploads(action))


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("regen: error: "), stderr
    return lines[0]


def ref_number(store: Store) -> int:
    return store.peek_generation(store.read_ref("stable") or b"").number


def assert_complete(w: dict[str, Any]) -> None:
    result = fsck(Store.open(w["store"].url), trust_map([w["key"].public]))
    assert not result.damaged, result.findings


def test_second_publisher_is_refused_while_the_first_holds_the_lock(world: dict[str, Any]) -> None:
    """B (a real `regen snapshot --publish`) started during A's snapshot: exit 2, one line, nothing written."""
    src_b = make_tree(world["tmp"] / "b", {"etc/b.conf": "publisher B\n"})
    seen: dict[str, Any] = {}

    def b_races() -> None:
        seen["b"] = run_cli("regen", "snapshot", str(src_b), "-c", "stable", "-m", "B", "--publish",
                            env=world["env"], exit_code=2)

    result = snapshot_a(world, b_races)
    line = one_line(seen["b"].stderr)
    assert "is locked by regen snapshot" in line, line
    assert result.number == 2 and ref_number(world["store"]) == 2
    assert world["store"].generation_numbers("stable") == [1, 2]
    assert_complete(world)


def test_publisher_that_lost_its_lock_writes_nothing(world: dict[str, Any]) -> None:
    """B breaks A's lock (`regen unlock`) and publishes: A, resuming, stops before its record."""
    src_b = make_tree(world["tmp"] / "b", {"etc/b.conf": "publisher B\n"})

    def b_breaks_in() -> None:
        run_cli("regen", "unlock", env=world["env"])
        run_cli("regen", "snapshot", str(src_b), "-c", "stable", "-m", "B", "--publish", env=world["env"])

    with pytest.raises(LockHeld, match="was lost"):
        snapshot_a(world, b_breaks_in)
    store = world["store"]
    assert ref_number(store) == 2 and store.generation_numbers("stable") == [1, 2]
    assert store.peek_generation(store.read_generation("stable", 2)).message == "B"
    assert_complete(world)


def test_ref_moved_by_a_writer_ignoring_the_lock_is_not_overwritten(world: dict[str, Any]) -> None:
    """Compare-and-swap on the parent: a ref moved meanwhile (by a script that takes no lock) stays."""
    store, key = world["store"], world["key"]

    def rogue_publish() -> None:
        data = store.read_generation("stable", 1)
        old = store.peek_generation(data)
        gen = Generation(store.store_id, "stable", 2, old.manifest, format_time(utcnow()), 1, "rogue")
        store.set_ref("stable", store.write_generation(gen, [key]))

    with pytest.raises(RefMoved, match=r"refs/stable changed while this operation ran \(it now names generation 2\)"):
        snapshot_a(world, rogue_publish)
    assert ref_number(store) == 2  # the other publisher's release stands
    assert store.generation_numbers("stable") == [1, 2, 3]  # A's record is written, not published
    assert_complete(world)


def test_snapshot_outliving_its_lease_with_a_gc_in_between(world: dict[str, Any]) -> None:
    """A is stopped past its lease (simulated: its lease file expires); a real `regen gc` breaks the
    lease and sweeps A's fresh uploads; A, resuming, must not publish a generation with holes."""
    store = world["store"]

    def stopped_past_lease_then_gc() -> None:
        lease = json.loads(store.backend.read(layout.LOCK))
        lease["expires"] = format_time(utcnow().replace(year=2000))
        store.backend.write(layout.LOCK, json.dumps(lease).encode())
        time.sleep(1.2)  # A's uploads are now older than gc's 1 s grace period
        res = run_cli("regen", "gc", "--grace", "1s", "--json", env=world["env"])
        assert json.loads(res.stdout)["stats"]["objects_to_delete"] > 0, res.stdout

    with pytest.raises(LockHeld, match="was lost"):
        snapshot_a(world, stopped_past_lease_then_gc)
    assert not store.has(object_id(b"publisher A 0\n"))  # gc really swept what A uploaded
    assert ref_number(store) == 1 and store.generation_numbers("stable") == [1]
    assert_complete(world)
