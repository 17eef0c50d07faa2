"""Packed stores: the index format, coalesced ranged reads, fsck of damaged packs, and old clients
refusing a packed store (FORMAT.md §2, §3.1)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from regen.store import (
    ObjectCorrupt,
    Store,
    StoreConfig,
    UnsupportedFormat,
    fsck,
    layout,
    object_id,
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
    with store.packing(pack_size), store.backend.staged() as batch:
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
