"""Sealed overlay objects (FORMAT.md §8.1): boxes only the host opens, verified by plaintext id,
the record's `sealed` member and the seal table parsed strictly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regen.store import (
    MAX_SEALED_FILE,
    MAX_SEALED_OBJECTS,
    ObjectCorrupt,
    Overlay,
    RecordInvalid,
    RecordTooLarge,
    SealedRef,
    Store,
    encode_seal_table,
    format_time,
    generate,
    object_id,
    parse_seal_table,
    seal,
    utcnow,
)
from regen.store.sealed import BOX_OVERHEAD, unseal

FORMAT = (Path(__file__).resolve().parents[2] / "store" / "FORMAT.md").read_text(encoding="utf-8")
ids = st.binary(min_size=1, max_size=8).map(object_id)


def _ref(n: int = 2) -> SealedRef:
    objs = tuple(sorted(object_id(bytes([i])) for i in range(n)))
    return SealedRef(generate().public.keyid, object_id(b"t"), object_id(b"b"), objs)


def test_only_the_host_opens_its_box_and_only_to_the_named_content() -> None:
    host, other = generate(), generate()
    box = seal(b"psk=secret\n", host.public)
    assert len(box) == len(b"psk=secret\n") + BOX_OVERHEAD and b"secret" not in box
    assert seal(b"psk=secret\n", host.public) != box  # randomised
    sid = object_id(box)
    assert unseal(box, host, oid=object_id(b"psk=secret\n"), sealed_id=sid, where="w") == b"psk=secret\n"
    with pytest.raises(ObjectCorrupt, match="does not open with this host's key"):
        unseal(box, other, oid=object_id(b"psk=secret\n"), sealed_id=sid, where="w")
    with pytest.raises(ObjectCorrupt, match="does not hash to"):  # sealed by anyone to the host's public key
        unseal(seal(b"psk=attacker\n", host.public), host, oid=object_id(b"psk=secret\n"), sealed_id=sid, where="w")
    with pytest.raises(ObjectCorrupt):
        unseal(box[:-1] + bytes([box[-1] ^ 1]), host, oid=object_id(b"psk=secret\n"), sealed_id=sid, where="w")


def test_a_store_reads_a_sealed_plaintext_id_through_its_box(tmp_path: Path) -> None:
    host = generate()
    store = Store.init(f"file://{tmp_path / 's'}")
    plain = b"wifi key\n" * 100
    box_id = store.put(seal(plain, host.public), compression="none")
    assert store.get(box_id) != plain and not store.has(object_id(plain))
    store.add_sealed({object_id(plain): box_id}, host)
    assert store.get(object_id(plain)) == plain
    out = tmp_path / "out"
    assert store.fetch_to_file(object_id(plain), str(out)).oid == object_id(plain)
    assert out.read_bytes() == plain
    with pytest.raises(RecordTooLarge):  # the size its manifest entry gives bounds the box read
        store.get(object_id(plain), max_bytes=10)


@given(st.dictionaries(ids, ids, max_size=20))
def test_seal_table_round_trips_canonically(table: dict[str, str]) -> None:
    data = encode_seal_table(table)
    assert parse_seal_table(data, "t") == table
    assert encode_seal_table(parse_seal_table(data, "t")) == data


@pytest.mark.parametrize("bad", [b"", b"[]", b'{"format":1,"objects":{},"type":"x"}',
                                 b'{"format":2,"objects":{},"type":"regen-seal-table"}',
                                 b'{"format":1,"objects":{"a":"b"},"type":"regen-seal-table"}',
                                 b'{"extra":1,"format":1,"objects":{},"type":"regen-seal-table"}'])
def test_malformed_seal_tables_are_refused(bad: bytes) -> None:
    with pytest.raises(RecordInvalid):
        parse_seal_table(bad, "table")


def test_overlay_record_carries_sealed_with_its_feature_only() -> None:
    ref = _ref()
    ov = Overlay("0" * 32, "h", 1, object_id(b"m"), format_time(utcnow()), sealed=ref)
    rec = ov.to_record()
    assert rec["features"] == ["sealed"] and Overlay.from_record(rec) == ov
    for broken in ({**rec, "features": []}, {k: v for k, v in rec.items() if k != "sealed"},
                   {**rec, "manifest": None},
                   {**rec, "sealed": {**rec["sealed"], "objects": list(reversed(rec["sealed"]["objects"]))}},
                   {**rec, "sealed": {**rec["sealed"], "key": "ZZ"}},
                   {**rec, "sealed": {**rec["sealed"], "more": 1}}):
        with pytest.raises(RecordInvalid):
            Overlay.from_record(broken)
    plain = Overlay("0" * 32, "h", 1, object_id(b"m"), format_time(utcnow()))
    assert "sealed" not in plain.to_record() and plain.to_record()["features"] == []  # older records unchanged
    assert ref.all_objects() == (ref.box, *ref.objects)


def test_format_doc_states_the_limits() -> None:
    assert MAX_SEALED_FILE == 16 << 20 and "16 MiB (16777216 bytes" in FORMAT
    assert re.search(rf"at most {MAX_SEALED_OBJECTS}\b", FORMAT)
    assert f"at most {MAX_SEALED_OBJECTS - 1} distinct file contents" in FORMAT
