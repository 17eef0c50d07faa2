"""Packed stores: the index format, coalesced ranged reads, fsck of damaged packs, and old clients
refusing a packed store (FORMAT.md §2, §3.1)."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regen.store import (
    Backend,
    Entry,
    Generation,
    ObjectCorrupt,
    SecretKey,
    Store,
    StoreConfig,
    UnsupportedFormat,
    build_manifest,
    execute_gc,
    format_time,
    fsck,
    layout,
    object_id,
    plan_gc,
    utcnow,
    xxh,
)
from regen.store.packindex import (
    Location,
    PackIndex,
    coalesce,
    decode_list,
    encode_index,
    encode_list,
)


def _packed(url: str, blobs: list[bytes], pack_size: int = 1 << 16) -> Store:
    """A packed store holding `blobs` (written through the snapshot's path: staged puts while packing)."""
    store = Store.init(url, packed=True, pack_size=pack_size)
    with store.packing(pack_size), store.staged() as batch:
        for data in blobs:
            store.put_bytes_staged(batch, data)
    return store


_R = random.Random(7)
BLOBS = [_R.randbytes(100 + 7 * i) for i in range(400)] + [b"compressible\n" * 1000]  # ~600 KB


def test_index_round_trip_and_lookup() -> None:
    packs = [object_id(b"p0"), object_id(b"p1")]
    ids = [object_id(bytes([i])) for i in range(50)]
    data = encode_index(packs, [(oid, i % 2, i * 100, 10 + i) for i, oid in enumerate(ids)])
    index = PackIndex(object_id(data), data)
    for i, oid in enumerate(ids):
        assert index.find(oid) == Location(oid, packs[i % 2], i * 100, 10 + i)
    assert index.find(object_id(b"absent")) is None
    assert sorted(loc.oid for loc in index) == sorted(ids)


@pytest.mark.parametrize("damage", ["header", "truncated", "unsorted", "pack number", "zero length"])
def test_a_malformed_index_is_refused(damage: str) -> None:
    packs = [object_id(b"p0")]
    a, b = sorted([object_id(b"a"), object_id(b"b")])
    rows = [(a, 0, 0, 10), (b, 0, 10, 10)]
    data = encode_index(packs, rows)
    head = data.index(b"\n") + 1 + 32
    if damage == "header":
        data = data.replace(b"regen-pack-index", b"regen-pack-indey")
    elif damage == "truncated":
        data = data[:-1]
    elif damage == "unsorted":
        data = data[:head] + data[head + 48:] + data[head:head + 48]
    elif damage == "pack number":
        data = encode_index(packs, [(a, 1, 0, 10)])
    else:
        data = encode_index(packs, [(a, 0, 0, 0)])
    with pytest.raises(ObjectCorrupt):
        PackIndex(object_id(data), data)


def test_index_list_round_trip_and_refusal() -> None:
    names = [object_id(b"x"), object_id(b"y")]
    assert decode_list(encode_list(names), "here") == sorted(names)
    for bad in (b"", b"[]", b'{"format":1,"indexes":["nothex"],"type":"regen-pack-indexes"}'):
        with pytest.raises(ObjectCorrupt):
            decode_list(bad, "here")


@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 1 << 20), st.integers(1, 1 << 20)), max_size=60,
                unique_by=lambda t: (t[0], t[1])))
def test_coalesce_covers_every_blob_once_within_bounds(rows: list[tuple[int, int, int]]) -> None:
    locs = [Location(object_id(f"{p}/{o}".encode()), f"{p:064x}", o, ln) for p, o, ln in rows]
    spans = coalesce(locs, gap=4096, max_span=1 << 20)
    seen = [loc for span in spans for loc in span.blobs]
    assert sorted(seen, key=lambda x: x.oid) == sorted(locs, key=lambda x: x.oid)
    for span in spans:
        assert all(loc.pack == span.pack and span.start <= loc.offset and loc.offset + loc.length <= span.end
                   for loc in span.blobs)
        assert len(span.blobs) == 1 or span.end - span.start <= 1 << 20


def test_neighbours_share_one_read() -> None:
    pack = object_id(b"pack")
    locs = [Location(object_id(bytes([i])), pack, i * 1000, 1000) for i in range(100)]
    [span] = coalesce(locs)
    assert (span.start, span.end, len(span.blobs)) == (0, 100_000, 100)
    far = coalesce([locs[0], Location(object_id(b"far"), pack, 10 << 20, 10)])
    assert len(far) == 2


def test_packed_store_fetches_by_few_ranged_reads(file_url: str, tmp_path: Path) -> None:
    pub = _packed(file_url, BLOBS)
    root = Path(file_url.removeprefix("file://"))
    assert not (root / "objects").exists()  # nothing loose: every object is in a pack
    packs = list((root / "packs").rglob("*"))
    assert len([p for p in packs if p.is_file()]) >= 5  # ~600 KB in 64 KiB packs
    client = Store.open(file_url)
    ids = [object_id(b) for b in BLOBS]
    assert client.missing(ids) == set() and client.counters.stats == 0  # known from the index: no request
    out = tmp_path / "out"
    out.mkdir()
    before = client.counters.reads
    result = client.fetch_many(ids, lambda oid: str(out / oid))
    assert not result.errors and len(result.done) == len(set(ids))
    assert all((out / object_id(b)).read_bytes() == b for b in BLOBS)
    assert client.counters.reads - before <= 12  # one read per pack or so, not 401
    assert client.get(ids[3]) == BLOBS[3]
    assert pub.has(ids[5]) and not pub.has(object_id(b"never stored"))


def test_fsck_finds_a_damaged_pack_and_a_missing_one(file_url: str) -> None:
    store = _packed(file_url, BLOBS)
    assert not fsck(store, {}).damaged
    root = Path(file_url.removeprefix("file://"))
    packs = sorted(p for p in (root / "packs").rglob("*") if p.is_file())
    data = bytearray(packs[0].read_bytes())
    data[5] ^= 0xFF
    packs[0].write_bytes(bytes(data))
    packs[1].unlink()
    result = fsck(Store.open(file_url), {})
    assert result.damaged
    kinds = {(f.kind, f.subject.startswith("packs/")) for f in result.findings}
    assert ("corrupt", True) in kinds  # the pack no longer hashes to its name
    assert ("corrupt", False) in kinds  # the blob the flipped byte lies in
    assert ("missing", True) in kinds


def test_an_old_client_refuses_a_packed_store() -> None:
    packed = StoreConfig("0" * 32, features=("packs",)).to_json()
    assert StoreConfig.from_json(packed, "here").packed
    newer = packed.replace(b'"packs"', b'"packs", "hologram"')
    with pytest.raises(UnsupportedFormat, match="hologram"):
        StoreConfig.from_json(newer, "here")
    plain = StoreConfig("0" * 32).to_json()
    assert b'"features": []' in plain and b"pack_size" not in plain  # a format-1 store's regen.json is unchanged
    assert not StoreConfig.from_json(plain, "here").packed


def test_a_loose_store_keeps_working_unpacked(file_url: str) -> None:
    store = Store.init(file_url)
    with store.packing() as packer:
        assert packer is None
        oid = store.put(b"loose as ever")
    assert (Path(file_url.removeprefix("file://")) / layout.object_path(oid)).is_file()
    assert Store.open(file_url).get(oid) == b"loose as ever"


# -- gc: repack, and kill -9 at every step of it --------------------------------------------------------
class _Killed(BaseException):
    """What the process dying at a kill point looks like to the code running: nothing after it runs."""


class _DyingBackend(Backend):
    """A real file:// backend whose process 'dies' (raises _Killed) at its `die_at`-th change to the store."""

    die_at = 0
    changes = 0

    def _step(self) -> None:
        type(self).changes += 1
        if type(self).changes == type(self).die_at:
            raise _Killed

    def write(self, path: str, data: bytes) -> None:
        self._step()
        super().write(path, data)

    def write_from(self, path: str, src: Any) -> None:
        self._step()
        super().write_from(path, src)

    def delete(self, path: str) -> None:
        self._step()
        super().delete(path)


def _generations(store: Store, key: SecretKey, trees: list[dict[str, bytes]]) -> list[str]:
    """Publish each tree as the next generation of channel stable (keep=1 makes the older ones garbage)."""
    manifests = []
    for n, files in enumerate(trees, 1):
        entries = [Entry("d", "dir", 0o755)]
        with store.packing(1 << 14), store.staged() as batch:
            for name, data in sorted(files.items()):
                store.put_bytes_staged(batch, data)
                entries.append(Entry(f"d/{name}", "file", 0o644, len(data), object_id(data), xxh(data)))
        manifest, moid, _ = build_manifest(entries)
        store.put(manifest)
        env = store.write_generation(Generation(store.store_id, "stable", n, moid, format_time(utcnow()),
                                                n - 1 or None), [key])
        store.set_ref("stable", env)
        manifests.append(moid)
    return manifests


_R2 = random.Random(9)
TREE1 = {f"f{i:03d}": _R2.randbytes(500 + i) for i in range(60)}
TREE2 = {**{k: v for k, v in TREE1.items() if int(k[1:]) % 4 == 0}, "new": _R2.randbytes(3000)}


def _assert_consistent(url: str, key: SecretKey) -> None:
    """fsck finds no damage and the published generation's every file reads back."""
    store = Store.open(url)
    result = fsck(store, {key.public.keyid: key.public})
    assert not result.damaged, [f for f in result.findings if f.severity == "error"]
    for name, data in TREE2.items():
        assert store.get(object_id(data)) == data, name


def test_gc_repacks_and_frees_the_garbage(file_url: str, signing_key: SecretKey) -> None:
    store = Store.init(file_url, packed=True, pack_size=1 << 14)
    _generations(store, signing_key, [TREE1, TREE2])
    root = Path(file_url.removeprefix("file://"))
    before = sum(p.stat().st_size for p in (root / "packs").rglob("*") if p.is_file())
    plan = plan_gc(store, keep=1, grace=timedelta(0))
    assert plan.repack is not None and plan.repack.stats()["packs_to_delete"] > 0
    execute_gc(store, plan)
    after = sum(p.stat().st_size for p in (root / "packs").rglob("*") if p.is_file())
    assert after < before / 2  # 3/4 of the first tree's files became garbage
    assert len([p for p in (root / "index").rglob("*") if p.is_file()]) == 2  # current.json and the one new index
    _assert_consistent(file_url, signing_key)
    again = plan_gc(Store.open(file_url), keep=1, grace=timedelta(0))
    assert again.repack is not None and not again.repack.changes  # nothing left to do


@pytest.mark.slow
def test_gc_killed_at_any_step_leaves_a_consistent_store(tmp_path: Path, signing_key: SecretKey) -> None:
    point = 0
    while True:
        point += 1
        url = f"file://{tmp_path}/store-{point}"
        _generations(Store.init(url, packed=True, pack_size=1 << 14), signing_key, [TREE1, TREE2])
        _DyingBackend.die_at, _DyingBackend.changes = point, 0
        dying = Store(_DyingBackend(url))
        try:
            execute_gc(dying, plan_gc(dying, keep=1, grace=timedelta(0)))
            finished = True
        except _Killed:
            finished = False
        _assert_consistent(url, signing_key)  # whatever step it died at
        store = Store.open(url)
        execute_gc(store, plan_gc(store, keep=1, grace=timedelta(0)))  # the next gc completes the work
        _assert_consistent(url, signing_key)
        if finished:
            break
    assert point > 5  # packs, index, list, deletions: every one was a kill point


def test_a_client_whose_index_list_went_stale_reads_it_again(file_url: str, signing_key: SecretKey,
                                                             tmp_path: Path) -> None:
    store = Store.init(file_url, packed=True, pack_size=1 << 14)
    _generations(store, signing_key, [TREE1, TREE2])
    client = Store.open(file_url)
    assert client.packs.names  # the client read the list before...
    execute_gc(store, plan_gc(store, keep=1, grace=timedelta(0)))  # ...a gc repacked and deleted old packs
    ids = [object_id(d) for d in TREE2.values()]
    out = tmp_path / "out"
    out.mkdir()
    result = client.fetch_many(ids, lambda oid: str(out / oid))
    assert not result.errors and sorted(result.done) == sorted(ids)
    assert all((out / object_id(d)).read_bytes() == d for d in TREE2.values())


_VALID = encode_index([object_id(b"p0"), object_id(b"p1")],
                      [(object_id(bytes([i])), i % 2, 100 * i, 10 + i) for i in range(8)])


@given(st.one_of(st.binary(max_size=600),
                 st.tuples(st.integers(0, len(_VALID) - 1), st.integers(1, 255)).map(
                     lambda t: _VALID[:t[0]] + bytes([_VALID[t[0]] ^ t[1]]) + _VALID[t[0] + 1:])))
def test_any_bytes_are_a_valid_index_or_refused_as_corrupt(data: bytes) -> None:
    """An index comes from an untrusted store: garbage or a flipped byte is refused, never a crash."""
    try:
        index = PackIndex("x" * 64, data)
    except ObjectCorrupt:
        return
    for loc in index:  # what was accepted is self-consistent
        assert index.find(loc.oid) == loc and 1 <= loc.length
