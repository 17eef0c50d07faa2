"""Big files in packed stores: content-defined chunks shared across files, rebuilt and verified
(FORMAT.md §3.2)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regen.store import ObjectCorrupt, Store, fsck, object_id
from regen.store.chunks import CHUNK_ABOVE, decode_list, encode_list

_R = random.Random(4)
BIG = _R.randbytes(6 << 20)  # above the 4 MiB threshold: chunked


def _put_files(store: Store, tmp: Path, files: dict[str, bytes]) -> int:
    """Upload local files as a snapshot does (put_many while packing); the pack bytes written."""
    items = []
    for name, data in files.items():
        (tmp / name).write_bytes(data)
        items.append((object_id(data), str(tmp / name)))
    with store.packing(1 << 20) as packer:
        assert packer is not None
        result = store.put_many(items)
        assert not result.errors
    return packer.bytes_written


def test_chunk_list_round_trip_and_refusals() -> None:
    chunks = [(object_id(b"a"), 10), (object_id(b"b"), 5)]
    body = encode_list(15, chunks)
    assert decode_list(body, "x", "here") == chunks
    for bad in (encode_list(16, chunks), body[:-1], body.replace(b"regen-chunk-list", b"regen-chunk-lisp"),
                encode_list(10, [(object_id(b"a"), 10), (object_id(b"z"), 0)])):
        with pytest.raises(ObjectCorrupt):
            decode_list(bad, "x", "here")


def test_a_big_file_is_chunked_and_its_chunks_shared(file_url: str, tmp_path: Path) -> None:
    store = Store.init(file_url, packed=True, pack_size=1 << 20)
    first = _put_files(store, tmp_path, {"big": BIG})
    assert len(BIG) > CHUNK_ABOVE and first >= len(BIG)  # random content: stored raw, once
    edited = bytearray(BIG)
    edited[3 << 20: (3 << 20) + 1000] = _R.randbytes(1000)  # 1,000 bytes changed in the middle
    second = _put_files(store, tmp_path, {"edited": bytes(edited), "copy": BIG + b"tail"})
    assert second < 3 << 20  # the chunks around the change and the copy's tail, not 12 MiB
    client = Store.open(file_url)
    assert client.get(object_id(BIG)) == BIG
    assert client.get(object_id(bytes(edited))) == bytes(edited)
    out = tmp_path / "out"
    out.mkdir()
    result = client.fetch_many([object_id(bytes(edited))], lambda oid: str(out / oid))
    assert not result.errors and (out / object_id(bytes(edited))).read_bytes() == bytes(edited)


def test_fsck_finds_a_damaged_chunk(file_url: str, tmp_path: Path) -> None:
    store = Store.init(file_url, packed=True, pack_size=1 << 20)
    _put_files(store, tmp_path, {"big": BIG})
    assert not fsck(store, {}).damaged
    root = Path(file_url.removeprefix("file://"))
    pack = max((p for p in (root / "packs").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 0x01
    pack.write_bytes(bytes(data))
    result = fsck(Store.open(file_url), {})
    assert result.damaged
    assert {f.kind for f in result.findings} >= {"corrupt"}
    assert any(f.subject == object_id(BIG) for f in result.findings)  # the file whose chunk it is, too


@given(st.binary(max_size=400))
def test_any_bytes_are_a_chunk_list_or_refused(data: bytes) -> None:
    """A chunk list comes from an untrusted store: anything malformed is ObjectCorrupt, never a crash."""
    try:
        chunks = decode_list(data, "x", "here")
    except ObjectCorrupt:
        return
    assert all(n > 0 for _, n in chunks)
