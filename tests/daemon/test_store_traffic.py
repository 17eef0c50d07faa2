"""Light on the server: a client with nothing to do reads one small ref; an update reads only what it lacks."""

from __future__ import annotations

from regen.store import Store, object_id
from tests.conftest import Symlink

from .conftest import Client, expected, publish

GEN1 = {"a/one": "one", "a/two": "two", "b/big": b"x" * 100_000, "b/link": Symlink("../a/one"), "c": None}


def test_no_change_run_reads_exactly_the_ref(mem_client: Client, mem_store: Store, signing_key) -> None:
    publish(mem_store, signing_key, GEN1, number=1)
    assert mem_client.run().exit_code == 0
    for i in range(3):
        opened: list[Store] = []
        res = mem_client.run(opened=opened)
        assert res.report.outcome == "ok" and res.exit_code == 0
        counters = opened[0].counters.as_dict()
        assert counters["reads"] == 1, counters            # refs/stable; regen.json comes from the index
        assert counters["bytes_read"] < 4096
        assert counters["lists"] == 0 and counters["stats"] == 0
        # latest.json, and a history entry only when the state changed (updated -> ok; issue 16)
        assert counters["writes"] == (2 if i == 0 else 1), counters


def test_update_fetches_exactly_the_missing_objects(mem_client: Client, mem_store: Store, signing_key) -> None:
    publish(mem_store, signing_key, GEN1, number=1)
    mem_client.run()
    gen2 = {**GEN1, "a/two": "two, edited", "a/three": "three", "a/copy-of-one": "one", "d/new": "new"}
    del gen2["b/big"]
    publish(mem_store, signing_key, gen2, number=2)
    opened: list[Store] = []
    res = mem_client.run(opened=opened)
    assert res.report.outcome == "updated"
    new_contents = {"two, edited", "three", "new"}  # "one" is cached already, whatever its path
    assert res.report.actions["objects_fetched"] == 3
    assert res.report.bytes_fetched == sum(len(c) for c in new_contents)
    c = opened[0].counters.as_dict()
    # ref + overlay record (absent) + the new manifest + the three new objects
    assert c["reads"] == 6, c
    assert mem_client.tree() == expected(gen2)
    cached = {p.parent.name + p.name.removesuffix(".z") for p in (mem_client.state / "objects").rglob("*")
              if p.is_file()}
    assert object_id(b"x" * 100_000) not in cached  # the old generation's objects left the cache
    assert {object_id(c.encode()) for c in new_contents} <= cached  # the new ones are in it


def test_overlay_is_applied_over_the_channel(mem_client: Client, mem_store: Store, signing_key) -> None:
    from .conftest import publish_overlay

    publish(mem_store, signing_key, GEN1, number=1)
    publish_overlay(mem_store, signing_key, "client-01", {"a/one": "host's own one", "host/name": "client-01"},
                    number=1)
    publish_overlay(mem_store, signing_key, "client-02", {"a/one": "other host"}, number=1)
    assert mem_client.run().exit_code == 0
    tree = mem_client.tree()
    assert tree["a/one"] == ("file", 0o644, b"host's own one")
    assert tree["host/name"] == ("file", 0o644, b"client-01")
    # a new overlay version reaches the host with the next generation or the next --verify run
    publish_overlay(mem_store, signing_key, "client-01", None, number=2)  # removed: a tombstone
    mem_client.run()
    assert mem_client.tree()["a/one"] == ("file", 0o644, b"host's own one")
    mem_client.run(verify=True)
    assert mem_client.tree() == expected(GEN1)


def test_timestamped_ref_keeps_the_no_change_run_at_one_read(mem_client: Client, mem_store: Store,
                                                             signing_key) -> None:
    """Freeze protection (issue 12): the timestamp travels inside the ref, so still one small read."""
    from datetime import timedelta

    from regen.manager.publish import refresh
    from regen.manager.trust import Trust

    publish(mem_store, signing_key, GEN1, number=1)
    refresh(mem_store, "stable", signing_key, Trust({signing_key.public.keyid: signing_key.public}),
            timedelta(hours=1))
    assert mem_client.run().exit_code == 0
    for _ in range(2):
        opened: list[Store] = []
        res = mem_client.run(opened=opened)
        assert res.report.outcome == "ok" and res.exit_code == 0
        counters = opened[0].counters.as_dict()
        assert counters["reads"] == 1 and counters["bytes_read"] < 4096, counters
        assert counters["lists"] == 0 and counters["stats"] == 0
