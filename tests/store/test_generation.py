"""Accepting generation and overlay records: the one door, and each reason it stays shut."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regen.store import (
    MAX_NUMBER,
    BadSignature,
    Generation,
    Overlay,
    Policy,
    RecordExpired,
    RecordInvalid,
    RecordMismatch,
    RollbackRefused,
    SecretKey,
    UnknownKey,
    UnsupportedFormat,
    format_time,
    parse_time,
    sign_envelope,
    trust_map,
    verify_generation,
    verify_overlay,
)

STORE = "0123456789abcdef0123456789abcdef"
MANIFEST = "ab" * 32
NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=timezone.utc)


def gen(**kw: Any) -> Generation:
    base: dict[str, Any] = dict(store_id=STORE, channel="stable", number=5, manifest=MANIFEST,
                                created=format_time(NOW - timedelta(days=1)), parent=4, message="m",
                                policy=Policy(preserve=("home",), junk="keep"), stats={"files": 3, "bytes": 10})
    base.update(kw)
    return Generation(**base)


def signed(record: dict[str, Any], key: SecretKey) -> bytes:
    return sign_envelope(record, [key])


def verify(data: bytes, key: SecretKey, **kw: Any) -> Generation:
    kw.setdefault("store_id", STORE)
    kw.setdefault("channel", "stable")
    kw.setdefault("now", NOW)
    return verify_generation(data, trust_map([key.public]), **kw)


def test_a_good_record_is_accepted_as_written(signing_key: SecretKey) -> None:
    g = gen(expires=format_time(NOW + timedelta(days=1)))
    assert verify(signed(g.to_record(), signing_key), signing_key, min_number=5) == g


@settings(max_examples=200, deadline=None)
@given(number=st.integers(0, MAX_NUMBER), parent=st.none() | st.integers(0, MAX_NUMBER), message=st.text(),
       stats=st.dictionaries(st.text(min_size=1), st.integers()), epoch=st.integers(0, MAX_NUMBER))
def test_record_round_trip(number: int, parent: int | None, message: str, stats: dict[str, int], epoch: int) -> None:
    g = replace(gen(number=number, parent=parent, message=message, stats=stats), epoch=epoch)
    assert Generation.from_record(json.loads(json.dumps(g.to_record()))) == g


@given(field=st.sampled_from(["number", "parent", "epoch"]), value=st.integers(MAX_NUMBER + 1, 2**70))
def test_numbers_above_the_bound_are_malformed(field: str, value: int) -> None:
    """FORMAT.md §6: numbers are at most 2**53-1, so no signer can be steered into burning them."""
    rec = {**gen().to_record(), field: value, "features": ["epoch"]}
    with pytest.raises(RecordInvalid, match="above the limit"):
        Generation.from_record(rec)


def test_bad_signature_on_tampered_record(signing_key: SecretKey) -> None:
    env = json.loads(signed(gen().to_record(), signing_key))
    env["signed"]["manifest"] = "cd" * 32  # point the channel at other content
    with pytest.raises(BadSignature):
        verify(json.dumps(env).encode(), signing_key)


def test_unknown_key(signing_key: SecretKey, other_key: SecretKey) -> None:
    with pytest.raises(UnknownKey):
        verify(signed(gen().to_record(), other_key), signing_key)


def test_replay_into_another_channel_is_a_mismatch(signing_key: SecretKey) -> None:
    lab = signed(gen(channel="lab-a", number=99).to_record(), signing_key)
    with pytest.raises(RecordMismatch, match="channel 'lab-a'") as err:
        verify(lab, signing_key, channel="stable")
    assert "replay" in err.value.hint


def test_replay_into_another_store_is_a_mismatch(signing_key: SecretKey) -> None:
    other = signed(gen(store_id="f" * 32).to_record(), signing_key)
    with pytest.raises(RecordMismatch, match="store"):
        verify(other, signing_key)


def test_rollback_is_refused_and_the_same_number_is_not(signing_key: SecretKey) -> None:
    data = signed(gen(number=5).to_record(), signing_key)
    assert verify(data, signing_key, min_number=5).number == 5
    with pytest.raises(RollbackRefused) as err:
        verify(data, signing_key, min_number=6)
    assert "5" in str(err.value) and "6" in str(err.value) and "regen rollback" in err.value.hint


def test_expired_record_is_refused(signing_key: SecretKey) -> None:
    data = signed(gen(expires=format_time(NOW)).to_record(), signing_key)
    with pytest.raises(RecordExpired, match="2025-06-01T12:00:00Z"):
        verify(data, signing_key)
    assert verify(data, signing_key, now=NOW - timedelta(seconds=1)).expires == "2025-06-01T12:00:00Z"


def test_checks_binding_before_age(signing_key: SecretKey) -> None:
    """A replayed record is reported as a replay even when it is also old."""
    data = signed(gen(channel="lab", number=1, expires=format_time(NOW - timedelta(days=9))).to_record(), signing_key)
    with pytest.raises(RecordMismatch):
        verify(data, signing_key, min_number=5)


def _without(key: str) -> dict[str, Any]:
    rec = gen().to_record()
    del rec[key]
    return rec


def _with(**kw: Any) -> dict[str, Any]:
    rec = gen().to_record()
    rec.update(kw)
    return rec


@pytest.mark.parametrize("record", [
    _without("manifest"),
    _without("number"),
    _without("store_id"),
    _without("created"),
    _with(type="regen-overlay"),
    _with(number=-1),
    _with(number=True),
    _with(number="5"),
    _with(parent="4"),
    _with(manifest="not-an-id"),
    _with(created="yesterday"),
    _with(expires="2025-06-01 12:00:00"),
    _with(stats={"files": "3"}),
    _with(message=7),
    _with(channel=None),
    _with(policy={"preserve": "home"}),
    _with(policy={"presrve": ["home"]}),
    _with(policy={"junk": "delete"}),
    _with(policy={"base": ["../etc"]}),
    _with(features="none"),
], ids=lambda r: ",".join(sorted(set(gen().to_record()) ^ set(r))) or "field")
def test_malformed_records_are_record_invalid(record: dict[str, Any], signing_key: SecretKey) -> None:
    with pytest.raises(RecordInvalid):
        verify(signed(record, signing_key), signing_key)


@pytest.mark.parametrize("record", [_with(format=2), _with(features=["delta-manifests"])])
def test_newer_records_need_a_newer_regen(record: dict[str, Any], signing_key: SecretKey) -> None:
    with pytest.raises(UnsupportedFormat) as err:
        verify(signed(record, signing_key), signing_key)
    assert err.value.exit_code == 2 and "upgrade" in err.value.hint


def test_times_are_utc_seconds() -> None:
    t = datetime(2025, 1, 2, 3, 4, 5, 999, tzinfo=timezone(timedelta(hours=2)))
    assert format_time(t) == "2025-01-02T01:04:05Z"
    assert parse_time("2025-01-02T01:04:05Z", "x") == datetime(2025, 1, 2, 1, 4, 5, tzinfo=timezone.utc)
    with pytest.raises(RecordInvalid):
        parse_time("2025-01-02T01:04:05+02:00", "x")


# -- overlays ---------------------------------------------------------------------------------------

def overlay(**kw: Any) -> Overlay:
    base: dict[str, Any] = dict(store_id=STORE, host="pc-01", number=3, manifest=MANIFEST,
                                created=format_time(NOW), message="host files")
    base.update(kw)
    return Overlay(**base)


def verify_ov(data: bytes, key: SecretKey, **kw: Any) -> Overlay:
    kw.setdefault("store_id", STORE)
    kw.setdefault("host", "pc-01")
    kw.setdefault("now", NOW)
    return verify_overlay(data, trust_map([key.public]), **kw)


def test_overlay_and_tombstone_are_accepted(signing_key: SecretKey) -> None:
    assert verify_ov(signed(overlay().to_record(), signing_key), signing_key) == overlay()
    tomb = overlay(number=4, manifest=None)
    assert verify_ov(signed(tomb.to_record(), signing_key), signing_key, min_number=3).manifest is None


def test_overlay_of_another_host_is_a_mismatch(signing_key: SecretKey) -> None:
    with pytest.raises(RecordMismatch, match="host 'pc-02'"):
        verify_ov(signed(overlay(host="pc-02").to_record(), signing_key), signing_key)
    with pytest.raises(RecordMismatch, match="store"):
        verify_ov(signed(overlay(store_id="e" * 32).to_record(), signing_key), signing_key)


def test_old_overlay_is_a_rollback_and_expired_overlay_is_refused(signing_key: SecretKey) -> None:
    """A client that saw the tombstone (4) cannot be fed the removed overlay (3) again."""
    with pytest.raises(RollbackRefused):
        verify_ov(signed(overlay(number=3).to_record(), signing_key), signing_key, min_number=4)
    with pytest.raises(RecordExpired):
        verify_ov(signed(overlay(expires=format_time(NOW - timedelta(hours=1))).to_record(), signing_key),
                  signing_key)


def test_overlay_record_is_not_a_generation(signing_key: SecretKey, other_key: SecretKey) -> None:
    with pytest.raises(RecordInvalid):
        verify(signed(overlay().to_record(), signing_key), signing_key)
    with pytest.raises(UnknownKey):
        verify_ov(signed(overlay().to_record(), other_key), signing_key)
    bad = overlay().to_record()
    bad["manifest"] = "xyz"
    with pytest.raises(RecordInvalid):
        verify_ov(signed(bad, signing_key), signing_key)
