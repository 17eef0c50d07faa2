"""Garbage collection: what is kept, what goes, and never an object a snapshot may still need."""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta

import pytest

from regen.store import (
    LockHeld,
    SecretKey,
    Store,
    StoreLock,
    execute_gc,
    fsck,
    kept_numbers,
    layout,
    object_id,
    plan_gc,
    trust_map,
    utcnow,
)
from tests.store.conftest import Publisher, object_file

GRACE = timedelta(hours=24)


def later() -> datetime:
    return utcnow() + timedelta(days=2)  # every object is older than the grace period by then


@pytest.fixture
def history(publisher: Publisher) -> dict[str, list[str]]:
    """stable: 1, 2, 3 (ref), 4 (newest, not published); lab: 1 (ref); overlay of pc-01; a stray object.

    Returns the object ids that must survive (`kept`) and that must go (`gone`).
    """
    p = publisher
    g1 = p.generation({"a": b"one"}, number=1)
    g2 = p.generation({"a": b"two"}, number=2)
    g3 = p.generation({"a": b"three", "shared": b"common"}, number=3)
    g4 = p.generation({"a": b"four", "shared": b"common"}, number=4, ref=False)
    lab = p.generation({"x": b"lab"}, channel="lab", number=1)
    ov = p.overlay("pc-01", {"etc/hostname": b"pc-01\n"})
    stray = p.store.put(b"uploaded by a snapshot that failed long ago")
    kept = [g3.manifest, g4.manifest, lab.manifest, ov.manifest] + [object_id(d) for d in (
        b"three", b"four", b"common", b"lab", b"pc-01\n")]
    gone = [g1.manifest, g2.manifest, object_id(b"one"), object_id(b"two"), stray]
    return {"kept": kept, "gone": gone}


def test_plan_keeps_referenced_newest_and_overlays(store: Store, history: dict[str, list[str]]) -> None:
    plan = plan_gc(store, keep=1, grace=GRACE, now=later())
    assert sorted(oid for oid, _ in plan.delete_objects) == sorted(history["gone"])
    assert sorted(plan.delete_generations) == [("stable", 1), ("stable", 2)]
    assert sorted(plan.kept_generations) == [("lab", 1), ("stable", 3), ("stable", 4)]


def test_dry_run_plan_lists_bytes_and_changes_nothing(store: Store, history: dict[str, list[str]]) -> None:
    before = (store.list_objects(), store.generation_numbers("stable"))
    plan = plan_gc(store, keep=1, grace=GRACE, now=later())
    sizes = {oid: store.backend.stat(layout.object_path(oid)).size for oid in history["gone"]}
    assert dict(plan.delete_objects) == sizes
    stats = plan.stats()
    assert stats["bytes_to_free"] == sum(sizes.values()) > 0
    assert (stats["objects_to_delete"], stats["generations_to_delete"], stats["generations_kept"]) == (5, 2, 3)
    assert (store.list_objects(), store.generation_numbers("stable")) == before


def test_execute_deletes_records_before_objects_and_leaves_a_clean_store(
        store: Store, history: dict[str, list[str]], signing_key: SecretKey) -> None:
    plan = plan_gc(store, keep=1, grace=GRACE, now=later())
    seen_when_objects_went: list[list[int]] = []
    freed: list[int] = []

    def progress(n: int, nbytes: int) -> None:
        seen_when_objects_went.append(store.generation_numbers("stable"))
        freed.append(nbytes)

    execute_gc(store, plan, progress=progress)
    assert seen_when_objects_went and all(nums == [3, 4] for nums in seen_when_objects_went)
    assert sum(freed) == plan.stats()["bytes_to_free"]
    assert store.missing(history["gone"]) == set(history["gone"])
    assert store.missing(history["kept"]) == set()
    result = fsck(store, trust_map([signing_key.public]))
    assert result.findings == () and not result.damaged
    assert plan_gc(store, keep=1, grace=GRACE, now=later()).delete_objects == ()


def test_keep_zero_keeps_only_what_the_refs_point_at(store: Store, history: dict[str, list[str]]) -> None:
    plan = plan_gc(store, keep=0, grace=GRACE, now=later())
    assert sorted(plan.kept_generations) == [("lab", 1), ("stable", 3)]
    assert ("stable", 4) in plan.delete_generations


def test_a_removed_overlay_frees_its_objects(publisher: Publisher) -> None:
    ov = publisher.overlay("pc-01", {"etc/hostname": b"pc-01\n"})
    publisher.overlay("pc-01", None, number=2)  # tombstone
    plan = plan_gc(publisher.store, keep=1, grace=GRACE, now=later())
    assert {oid for oid, _ in plan.delete_objects} == {ov.manifest, object_id(b"pc-01\n")}


def test_grace_period_protects_fresh_uploads(file_store: Store, signing_key: SecretKey) -> None:
    """A snapshot in progress has uploaded objects no record names yet: gc must not take them."""
    p = Publisher(file_store, signing_key)
    p.generation({"a": b"old content"}, number=1)
    g2 = p.generation({"a": b"new content"}, number=2)
    old = time.time() - 3 * 86400
    for oid in file_store.list_objects():
        os.utime(object_file(file_store, oid), (old, old))
    in_progress = [file_store.put(f"snapshot upload {i}".encode()) for i in range(3)]  # just now
    plan = plan_gc(file_store, keep=1, grace=GRACE)
    doomed = {oid for oid, _ in plan.delete_objects}
    assert doomed and not doomed & set(in_progress)
    assert plan.stats()["young_unreferenced_kept"] == 3
    assert g2.manifest not in doomed
    execute_gc(file_store, plan)
    assert file_store.missing(in_progress) == set()


def test_nothing_is_collected_inside_the_grace_period(store: Store, history: dict[str, list[str]]) -> None:
    plan = plan_gc(store, keep=1, grace=GRACE)  # everything was uploaded moments ago
    assert plan.delete_objects == ()
    assert plan.stats()["young_unreferenced_kept"] == len(history["gone"])


def test_kept_numbers() -> None:
    assert kept_numbers([1, 2, 3, 4, 5], 2, 2) == {2, 4, 5}
    assert kept_numbers([5, 1, 3], None, 1) == {5}
    assert kept_numbers([1, 2], 2, 0) == {2}
    assert kept_numbers([], None, 10) == set()


def test_sweep_refuses_when_the_lock_was_lost(store: Store, history: dict[str, list[str]]) -> None:
    """gc overran its lease, another writer took the lock: the plan may be stale, so nothing is swept."""
    gc_lock = StoreLock(store, "regen gc", ttl=timedelta(seconds=1))
    gc_lock.acquire()
    plan = plan_gc(store, keep=1, grace=GRACE, now=later())
    StoreLock(store, "regen snapshot", now=utcnow() + timedelta(minutes=5)).acquire()
    with pytest.raises(LockHeld):
        execute_gc(store, plan, lock=gc_lock)
    assert store.missing(history["gone"]) == set() and store.generation_numbers("stable") == [1, 2, 3, 4]


def test_sweep_under_a_held_lock(store: Store, history: dict[str, list[str]]) -> None:
    with StoreLock(store, "regen gc") as lock:
        execute_gc(store, plan_gc(store, keep=1, grace=GRACE, now=later()), lock=lock)
    assert store.missing(history["gone"]) == set(history["gone"])


def test_gc_deletes_the_patches_of_manifests_no_longer_kept(store: Store, history: dict[str, list[str]]) -> None:
    kept, gone = history["kept"][0], history["gone"][0]
    for target in (kept, gone):
        store.backend.write(layout.patch_path(target), b"r")
    plan = plan_gc(store, keep=1, grace=GRACE, now=later())
    assert plan.delete_patches == (gone,) and plan.stats()["patches_to_delete"] == 1
    assert plan_gc(store, keep=1, grace=GRACE).delete_patches == ()  # young: kept (a snapshot in progress)
    execute_gc(store, plan)
    assert store.backend.absent([layout.patch_path(gone), layout.patch_path(kept)]) == [True, False]
