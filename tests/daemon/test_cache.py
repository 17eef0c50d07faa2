"""The object cache costs a fraction of the tree (zstd frames), still repairs with the store gone,
keeps to its [cache] max_bytes budget after a run, and what it dropped comes from the store when a
repair needs it (real `regend run --once` runs; server-side request logs of a loopback HTTP store)."""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

from regen.store import Store, layout, object_id
from regen.store.signing import SecretKey
from tests.servers import Target

from .conftest import Client, expected, publish, publish_overlay

TEXT = "".join(f"line {i}: the quick brown fox jumps over the lazy dog\n" for i in range(4000)).encode()
NOISE = random.Random(14).randbytes(50_000)  # does not compress
GEN1 = {
    "etc/big.txt": TEXT,
    "etc/other.txt": TEXT + b"other\n",
    "lib/noise.bin": NOISE,
    "etc/hosts": "127.0.0.1 localhost\n",
}


def cached_in(objects: Path) -> dict[str, Path]:
    """oid -> its file in the cache `objects`."""
    return {p.parent.name + p.name.removesuffix(".z"): p for p in objects.rglob("*") if p.is_file()}


def cached(c: Client) -> dict[str, Path]:
    return cached_in(c.state / "objects")


def allocated(c: Client) -> int:
    return sum(p.stat().st_blocks * 512 for p in cached(c).values())


def test_cached_objects_are_compressed_and_repair_works_with_the_store_gone(
        client: Client, file_store: Store, signing_key: SecretKey) -> None:
    publish(file_store, signing_key, GEN1, number=1)
    client.regend("run", "--once")
    assert not cached(client)  # the install moved its objects into the tree (each written once)
    refill = json.loads(client.regend("run", "--once", "--json").stdout)["steps"]["refill"]
    assert refill == {"outcome": "done", "objects": len(GEN1)}  # the next run compresses them back
    files = cached(client)
    assert set(files) == {object_id(v if isinstance(v, bytes) else v.encode()) for v in GEN1.values()}
    assert all(p.name.endswith(".z") for p in files.values())
    assert files[object_id(TEXT)].stat().st_size < len(TEXT) // 10        # a zstd frame, not a copy
    assert files[object_id(NOISE)].stat().st_size < len(NOISE) + 64       # incompressible: ~raw blocks
    tree_bytes = sum(p.stat().st_size for p in client.root.rglob("*") if p.is_file())
    assert sum(p.stat().st_size for p in files.values()) < tree_bytes // 2

    # drift repaired from the compressed cache with the store gone (README: "repairs from the cache")
    (client.root / "etc/big.txt").write_bytes(b"tampered")
    (client.root / "lib/noise.bin").unlink()
    url = file_store.url.removeprefix("file://")
    os.rename(url, url + ".away")
    res = client.regend("run", "--once", "--json", exit_code=None)
    report = json.loads(res.stdout)
    assert res.returncode != 0 and report["store_state"] != "ok"
    assert report["steps"]["repair"]["from_store"] == 0 and report["steps"]["repair"]["written"] == 2
    assert client.tree() == expected(GEN1)


def test_a_cache_from_an_older_regend_stays_valid_and_a_verify_run_compresses_it(
        client: Client, file_store: Store, signing_key: SecretKey) -> None:
    import zstandard

    publish(file_store, signing_key, GEN1, number=1)
    client.regend("run", "--once")
    client.regend("run", "--once")  # (puts back the objects the install moved into the tree: refill.py)
    for p in cached(client).values():  # one file per object, the content itself: the old layout
        p.with_name(p.name.removesuffix(".z")).write_bytes(zstandard.ZstdDecompressor().decompressobj().decompress(
            p.read_bytes()))
        p.unlink()
    (client.root / "etc/big.txt").unlink()
    report = json.loads(client.regend("run", "--once", "--json").stdout)
    assert report["steps"]["repair"]["written"] == 1 and report["steps"]["repair"]["from_store"] == 0
    assert not any(p.name.endswith(".z") for p in cached(client).values())  # nothing fetched: left as it is
    report = json.loads(client.regend("run", "--once", "--verify", "--json").stdout)
    files = cached(client)
    assert len(files) == len(GEN1) and all(p.name.endswith(".z") for p in files.values())
    assert files[object_id(TEXT)].stat().st_size < len(TEXT) // 10
    (client.root / "etc/big.txt").unlink()
    client.regend("run", "--once")
    assert client.tree() == expected(GEN1)


def test_check_and_verify_never_read_the_cache(client: Client, file_store: Store, signing_key: SecretKey) -> None:
    publish(file_store, signing_key, GEN1, number=1)
    client.regend("run", "--once")
    client.regend("run", "--once")  # (puts back the objects the install moved into the tree: refill.py)
    before = {oid: (p.stat().st_mtime_ns, p.read_bytes()) for oid, p in cached(client).items()}
    assert len(before) == len(GEN1)
    (client.root / "etc/hosts").write_text("drift\n")
    for args in (["check"], ["check", "--verify"]):
        out = json.loads(client.regend(*args, "--json").stdout)
        assert out["drift"]["modified"]["paths"] == ["etc/hosts"]
    assert {oid: (p.stat().st_mtime_ns, p.read_bytes()) for oid, p in cached(client).items()} == before


def _small_files(n: int, size: int, seed: int) -> dict[str, bytes]:
    rng = random.Random(seed)
    return {f"data/f{i:02d}.bin": rng.randbytes(size) for i in range(n)}


def test_the_budget_is_kept_after_a_run_and_evicted_objects_come_from_the_store(
        make_client, http_target: Target, signing_key: SecretKey) -> None:
    store = Store.init(http_target.write_url)
    client: Client = make_client(http_target.url, cache={"max_bytes": "64K"})
    gen1 = _small_files(8, 14_000, seed=1)   # 8 incompressible objects: 16 KiB allocated each
    publish(store, signing_key, gen1, number=1)
    client.regend("run", "--once")
    assert client.tree() == expected(gen1) and not cached(client)  # the install moved them into the tree
    second = json.loads(client.regend("run", "--once", "--json").stdout)
    assert second["steps"]["refill"]["objects"] == 4  # the next run put back what the budget holds
    assert allocated(client) <= 64 << 10
    kept = set(cached(client))
    assert len(kept) == 4

    for p in (client.root / "data").iterdir():   # every file deleted: 4 from the cache, 4 from the store
        p.unlink()
    mark = http_target.log.mark() if http_target.log else 0
    report = json.loads(client.regend("run", "--once", "--json").stdout)
    assert client.tree() == expected(gen1)
    got = {path for method, path in http_target.requests(mark) if method == "GET" and "/objects/" in path}
    evicted = {object_id(v) for v in gen1.values()} - kept
    assert got == {f"/{http_target.prefix}/{layout.object_path(oid)}" for oid in evicted}, got
    assert report["steps"]["repair"]["from_store"] == 4 and report["steps"]["repair"]["written"] == 8
    assert allocated(client) <= 64 << 10   # within the budget again after the run

    # an update planned in full (a host overlay) fetches what it writes, not what the budget dropped
    gen2 = {**gen1, "etc/new.conf": b"new = 1\n"}
    gen = publish(store, signing_key, gen2, number=2)
    overlay = publish_overlay(store, signing_key, client.host, {"etc/host.conf": b"mine\n"}, number=1)
    pending = json.loads(client.regend("check", "--json").stdout)["update"]
    assert pending["objects_to_fetch"] == 2 and pending["bytes_to_fetch"] == len(b"new = 1\nmine\n"), pending
    mark = http_target.log.mark() if http_target.log else 0
    report = json.loads(client.regend("run", "--once", "--json").stdout)
    assert report["outcome"] == "updated" and report["steps"]["update"]["planned"] == "full"
    got = {path for method, path in http_target.requests(mark) if method == "GET" and "/objects/" in path}
    wanted = {object_id(b"new = 1\n"), object_id(b"mine\n"), gen.manifest, overlay.manifest}
    assert got == {f"/{http_target.prefix}/{layout.object_path(oid)}" for oid in wanted}, got
    assert client.tree() == expected({**gen2, "etc/host.conf": b"mine\n"})


def test_a_cache_lost_is_refilled_up_to_the_budget(mem_client: Client, mem_store: Store,
                                                  signing_key: SecretKey) -> None:
    mem_client.write_config(cache={"max_bytes": "1M"})
    gen1 = {"etc/a.txt": TEXT, "etc/b.txt": TEXT + b"b\n"}
    publish(mem_store, signing_key, gen1, number=1)
    assert mem_client.run().exit_code == 0
    shutil.rmtree(mem_client.state / "objects")
    publish(mem_store, signing_key, {**gen1, "etc/c.txt": "c\n"}, number=2)
    publish_overlay(mem_store, signing_key, mem_client.host, {"etc/host": "h\n"}, number=1)  # a full plan
    assert mem_client.run().report.outcome == "updated"
    assert set(cached(mem_client)) == {object_id(TEXT), object_id(TEXT + b"b\n"), object_id(b"c\n"),
                                       object_id(b"h\n")}


def test_the_budget_in_regend_toml(client: Client) -> None:
    from regen.daemon.config import load_config

    assert load_config(str(client.config_path), {}).cache_max_bytes == 2 << 30   # the default
    client.write_config(cache={"max_bytes": "512M"})
    assert load_config(str(client.config_path), {}).cache_max_bytes == 512 << 20
    client.extra.pop("cache")
    client.write_config(cache={"max_byte": "2G"})
    out = client.regend("check", exit_code=2)
    assert "max_byte" in out.stderr and "Traceback" not in out.stderr
    client.extra.pop("cache")
    client.write_config(cache={"max_bytes": "lots"})
    out = client.regend("check", exit_code=2)
    assert "cache.max_bytes" in out.stderr and "512M" in out.stderr


def test_eviction_order_is_least_recently_used_then_biggest() -> None:
    from regen.daemon.tree.cache import Cached, eviction_order

    hour = 3600 * 10**9
    old_small, old_big = Cached("a" * 64, "a", 4096, 5 * hour), Cached("b" * 64, "b", 65536, 5 * hour + 1)
    recent = Cached("c" * 64, "c", 1 << 20, 9 * hour)
    assert eviction_order([recent, old_small, old_big]) == [old_big, old_small, recent]


def test_a_conversion_cut_by_a_crash_keeps_the_old_file_authoritative(tmp_path: Path) -> None:
    """A crash after a frame was renamed but before it reached the disk (an empty .z beside the old
    file): the old file is read, and the next conversion writes the frame again."""
    from regen.daemon.tree.cache import ObjectCache

    cache = ObjectCache(str(tmp_path / "state"))
    oid = object_id(TEXT)
    old = Path(cache.path(oid))
    old.parent.mkdir(parents=True)
    old.write_bytes(TEXT)
    Path(cache.path(oid) + ".z").write_bytes(b"")
    got: list[bytes] = []
    cache.copy_to(oid, got.append)
    assert b"".join(got) == TEXT
    assert cache.compress_uncompressed() == len(TEXT)
    assert not old.exists() and set(cached_in(Path(cache.dir))) == {oid}
    got.clear()
    cache.copy_to(oid, got.append)
    assert b"".join(got) == TEXT
