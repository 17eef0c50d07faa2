"""Objects: the stored encoding, and verification that never lets bad bytes through."""

from __future__ import annotations

import io
import os
from pathlib import Path

import blake3
import pytest
import xxhash
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from regen.store import (
    EMPTY_ID,
    ObjectCorrupt,
    ObjectMissing,
    RecordTooLarge,
    Store,
    VerifyingWriter,
    hash_file,
    is_object_id,
    layout,
    object_id,
    xxh,
)
from regen.store.errors import StoreError
from regen.store.objects import decode, encode, encode_stream
from tests.store.conftest import object_file

DATA = b"the quick brown fox " * 5000  # compressible, 100 kB


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4096), st.sampled_from(["zstd", "none"]))
def test_encode_decode_round_trip(data: bytes, compression: str) -> None:
    oid = object_id(data)
    stored = encode(data, compression)
    assert stored[:1] == (b"z" if compression == "zstd" else b"r")
    assert decode(stored, oid) == data
    streamed = io.BytesIO()
    digest = encode_stream(io.BytesIO(data), streamed, compression)
    assert (digest.oid, digest.xxh, digest.size) == (oid, xxh(data), len(data))
    assert decode(streamed.getvalue(), oid) == data


def test_object_id_is_blake3_of_uncompressed_content() -> None:
    assert object_id(DATA) == blake3.blake3(DATA).hexdigest()
    assert object_id(b"") == EMPTY_ID
    assert xxh(DATA) == xxhash.xxh3_128_hexdigest(DATA)
    assert is_object_id(object_id(DATA)) and not is_object_id(object_id(DATA).upper()) and not is_object_id(None)


def test_streamed_encoding_is_exactly_one_zstd_frame() -> None:
    """A second, empty frame would be harmless to regen but trip stricter readers."""
    out = io.BytesIO()
    encode_stream(io.BytesIO(DATA), out)
    dobj = zstandard.ZstdDecompressor().decompressobj()
    assert dobj.decompress(out.getvalue()[1:]) == DATA
    assert dobj.eof and dobj.unused_data == b""


def test_concatenated_frames_decode_as_one_stream() -> None:
    """Objects written by older regen (frame + empty frame) and other zstd writers still read."""
    c = zstandard.ZstdCompressor()
    stored = b"z" + c.compress(DATA[:1000]) + c.compress(DATA[1000:]) + c.compress(b"")
    assert decode(stored, object_id(DATA)) == DATA
    out = io.BytesIO()
    assert VerifyingWriter(object_id(DATA), out).copy_from(io.BytesIO(stored)).oid == object_id(DATA)
    assert out.getvalue() == DATA


CORRUPTIONS = {
    "empty": lambda s: b"",
    "unknown tag": lambda s: b"x" + s[1:],
    "flipped byte": lambda s: s[:-10] + bytes([s[-10] ^ 0xFF]) + s[-9:],
    "truncated": lambda s: s[: len(s) // 2],
    "trailing garbage": lambda s: s + b"garbage",
    "other content": lambda s: encode(b"other content"),
}


@pytest.mark.parametrize("how", CORRUPTIONS)
@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_corrupt_encodings_are_refused_by_both_readers(how: str, compression: str) -> None:
    oid = object_id(DATA)
    bad = CORRUPTIONS[how](encode(DATA, compression))  # (raw + garbage: other content, caught by the hash)
    with pytest.raises(ObjectCorrupt) as err:
        decode(bad, oid, where="memory://s/objects/xx")
    assert oid in str(err.value) and "memory://s/objects/xx" in str(err.value)
    out = io.BytesIO()
    with pytest.raises(ObjectCorrupt):
        VerifyingWriter(oid, out, where="w").copy_from(io.BytesIO(bad))


def test_size_limit_is_enforced_while_streaming() -> None:
    oid = object_id(DATA)
    with pytest.raises(RecordTooLarge):
        decode(encode(DATA), oid, limit=1000)
    out = io.BytesIO()
    with pytest.raises(RecordTooLarge):
        VerifyingWriter(oid, out, limit=1000).copy_from(io.BytesIO(encode(DATA)))
    assert len(out.getvalue()) <= 1 << 20  # stopped at the first chunk past the limit


class Trickle(io.RawIOBase):
    """A source that hands out at most 7 bytes per read, as a slow network does."""

    def __init__(self, data: bytes) -> None:
        self._src = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        chunk = self._src.read(min(7, len(b)))
        b[: len(chunk)] = chunk
        return len(chunk)


@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_verifying_writer_streams_small_reads(compression: str) -> None:
    out = io.BytesIO()
    digest = VerifyingWriter(object_id(DATA), out).copy_from(Trickle(encode(DATA, compression)))  # type: ignore[arg-type]
    assert out.getvalue() == DATA
    assert (digest.xxh, digest.size) == (xxh(DATA), len(DATA))


def test_hash_file_gives_both_digests_and_refuses_symlinks(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(DATA)
    d = hash_file(f)
    assert (d.oid, d.xxh, d.size) == (object_id(DATA), xxh(DATA), len(DATA))
    (tmp_path / "link").symlink_to(f)
    with pytest.raises(OSError):
        hash_file(tmp_path / "link")


def test_object_paths_fan_out_and_parse_back() -> None:
    oid = object_id(DATA)
    assert layout.object_path(oid) == f"objects/{oid[:2]}/{oid[2:]}"
    assert layout.parse_object_path(layout.object_path(oid)) == oid
    for bad in ("objects/ab/cd", f"objects/{oid}", f"refs/{oid[:2]}/{oid[2:]}", f"objects/{oid[:2]}/.tmp-123"):
        with pytest.raises(StoreError):
            layout.parse_object_path(bad)
    with pytest.raises(StoreError):
        layout.object_path("../../etc/passwd")


# -- through a store -----------------------------------------------------------------------------------

def corrupt_in_place(store: Store, oid: str) -> None:
    p = object_file(store, oid)
    stored = bytearray(p.read_bytes())
    stored[-5] ^= 0xFF
    p.write_bytes(bytes(stored))


def test_corrupt_object_error_names_id_and_backend_path(file_store: Store) -> None:
    oid = file_store.put(DATA)
    corrupt_in_place(file_store, oid)
    expected = f"{file_store.url}/objects/{oid[:2]}/{oid[2:]}"
    with pytest.raises(ObjectCorrupt) as err:
        file_store.get(oid)
    assert oid in str(err.value) and expected in str(err.value)
    assert err.value.oid == oid and err.value.path == expected and err.value.exit_code == 1
    with pytest.raises(ObjectCorrupt) as err2:
        file_store.get_to(oid, io.BytesIO())
    assert expected in str(err2.value)


def test_fetch_to_file_leaves_nothing_on_corruption(file_store: Store, tmp_path: Path) -> None:
    oid = file_store.put(DATA)
    corrupt_in_place(file_store, oid)
    dest_dir = tmp_path / "dest"
    dest_dir.mkdir()
    dest = dest_dir / "file"
    with pytest.raises(ObjectCorrupt):
        file_store.fetch_to_file(oid, str(dest))
    assert os.listdir(dest_dir) == []  # no destination, no temp file
    dest.write_bytes(b"previous content")
    with pytest.raises(ObjectCorrupt):
        file_store.fetch_to_file(oid, str(dest))
    assert os.listdir(dest_dir) == ["file"] and dest.read_bytes() == b"previous content"


def test_fetch_to_file_of_missing_object_leaves_nothing(file_store: Store, tmp_path: Path) -> None:
    oid = object_id(b"never stored")
    with pytest.raises(ObjectMissing) as err:
        file_store.fetch_to_file(oid, str(tmp_path / "file"))
    assert oid in str(err.value)
    assert [p.name for p in tmp_path.iterdir()] == ["store"]


def test_fetch_to_file_writes_verified_content(file_store: Store, tmp_path: Path) -> None:
    oid = file_store.put(DATA)
    digest = file_store.fetch_to_file(oid, str(tmp_path / "file"))
    assert (tmp_path / "file").read_bytes() == DATA and digest.xxh == xxh(DATA)


@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_store_compression_setting(tmp_path: Path, compression: str) -> None:
    store = Store.init(f"file://{tmp_path / 's'}", compression=compression)
    oid = store.put(DATA)
    raw = object_file(store, oid).read_bytes()
    assert raw[:1] == (b"z" if compression == "zstd" else b"r")
    assert (len(raw) < len(DATA) // 10) == (compression == "zstd")
    assert Store.open(store.url).get(oid) == DATA
