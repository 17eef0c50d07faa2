"""Freeze protection: a short-lived signed timestamp carried inside the ref (pure).

TUF's timestamp role, shaped so a client still reads ONE object per run: the timestamp is an
extra entry of the ref envelope's `signatures` list, `{"keyid", "sig", "timestamp": RECORD}`,
whose `sig` covers the canonical bytes of RECORD (not of `signed`). Readers that do not know it
skip it as a signature that does not verify, so old clients keep working; the ref minus these
entries is still byte for byte the generation record. RECORD binds store, channel, generation
and a version that only grows, and expires soon (`regen refresh` renews it from a timer): a
store that keeps serving an old ref -- withholding an update -- is noticed once it expires.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .errors import RecordExpired, RecordInvalid, RollbackRefused
from .generation import MAX_NUMBER, Generation, parse_time
from .objects import is_object_id
from .signing import PublicKey, SecretKey, canonical

TIMESTAMP_TYPE = "regen-timestamp"


@dataclass(frozen=True, slots=True)
class Timestamp:
    store_id: str
    channel: str
    number: int
    epoch: int
    version: int
    created: str
    expires: str
    overlays: str | None = None  # object id of the overlay versions list (`overlay_versions`), or None

    def to_record(self) -> dict[str, Any]:
        rec = {"channel": self.channel, "created": self.created, "epoch": self.epoch, "expires": self.expires,
               "number": self.number, "store_id": self.store_id, "type": TIMESTAMP_TYPE, "version": self.version}
        if self.overlays is not None:
            rec["overlays"] = self.overlays
        return rec

    @classmethod
    def from_record(cls, rec: Mapping[str, Any], where: str) -> Timestamp:
        try:
            ts = cls(rec["store_id"], rec["channel"], rec["number"], rec["epoch"], rec["version"], rec["created"],
                     rec["expires"], rec.get("overlays"))
        except (KeyError, TypeError):
            raise RecordInvalid(f"{where}: malformed timestamp", path=where) from None
        if ts.overlays is not None and not is_object_id(ts.overlays):
            raise RecordInvalid(f"{where}: malformed timestamp", path=where)
        if rec.get("type") != TIMESTAMP_TYPE or not all(
                isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_NUMBER
                for v in (ts.number, ts.epoch, ts.version)):
            raise RecordInvalid(f"{where}: malformed timestamp", path=where)
        parse_time(ts.created, where)
        parse_time(ts.expires, where)
        return ts


def _entries(envelope: bytes) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    env = json.loads(envelope)
    if not isinstance(env, dict) or not isinstance(env.get("signatures"), list):
        raise RecordInvalid("ref is not a signed envelope")
    return env, [s for s in env["signatures"] if isinstance(s, dict) and "timestamp" in s]


def strip_timestamp(envelope: bytes) -> bytes:
    """The envelope without timestamp entries, as regen writes records (canonical JSON + newline)."""
    try:
        env, stamps = _entries(envelope)
    except (ValueError, RecursionError):
        return envelope
    if not stamps:
        return envelope
    env["signatures"] = [s for s in env["signatures"] if not (isinstance(s, dict) and "timestamp" in s)]
    return canonical(env) + b"\n"


def stamp(envelope: bytes, ts: Timestamp, key: SecretKey) -> bytes:
    """The envelope with `ts` (signed by `key`) as its only timestamp entry."""
    env = json.loads(strip_timestamp(envelope))
    rec = ts.to_record()
    env["signatures"].append({"keyid": key.public.keyid, "sig": base64.b64encode(key.sign(canonical(rec))).decode(),
                              "timestamp": rec})
    return canonical(env) + b"\n"


def read_timestamp(envelope: bytes, trusted: Mapping[str, PublicKey], gen: Generation, *,
                   where: str) -> Timestamp | None:
    """The ref's timestamp if one is signed by a trusted key and names exactly `gen`; else None."""
    try:
        _, stamps = _entries(envelope)
    except (ValueError, RecursionError):
        return None
    for s in stamps:
        key, rec = trusted.get(str(s.get("keyid"))), s.get("timestamp")
        if key is None or not isinstance(rec, dict) or not isinstance(s.get("sig"), str):
            continue
        try:
            ok = key.verify(canonical(rec), base64.b64decode(s["sig"], validate=True))
            ts = Timestamp.from_record(rec, where) if ok else None
        except (binascii.Error, ValueError, RecordInvalid):
            continue
        if ts is not None and (ts.store_id, ts.channel, ts.number, ts.epoch) == (
                gen.store_id, gen.channel, gen.number, gen.epoch):
            return ts
    return None


OVERLAYS_TYPE = "regen-overlay-versions"


def overlay_versions_bytes(versions: Mapping[str, int]) -> bytes:
    """The object a timestamp names in `overlays`: every host's current overlay version (tombstones too)."""
    return canonical({"type": OVERLAYS_TYPE, "versions": dict(sorted(versions.items()))})


def parse_overlay_versions(data: bytes, where: str) -> dict[str, int]:
    try:
        rec = json.loads(data)
        versions = rec["versions"]
        ok = rec.get("type") == OVERLAYS_TYPE and isinstance(versions, dict) and all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) for k, v in versions.items())
    except (ValueError, KeyError, TypeError, RecursionError):
        ok = False
    if not ok:
        raise RecordInvalid(f"{where} is not a list of overlay versions", path=where)
    return dict(versions)


def check_timestamp(ts: Timestamp | None, *, seen: int | None, now: datetime, where: str) -> None:
    """Refuse a ref whose timestamp is missing (once the channel had one), replayed or expired."""
    if seen is None and ts is None:
        return  # this channel never used timestamps: nothing to hold it to (backward compatible)
    if ts is None:
        raise RecordExpired(f"{where} carries no valid timestamp, but this channel's refs were timestamped "
                            f"(version {seen} accepted): the store may be withholding updates", path=where,
                            expires=None)
    if seen is not None and ts.version < seen:
        raise RollbackRefused(f"{where} has timestamp version {ts.version}, older than version {seen} already "
                              f"accepted (a replayed ref)", path=where, number=ts.version, seen=seen)
    if parse_time(ts.expires, where) <= now:
        raise RecordExpired(f"{where} has a timestamp that expired at {ts.expires}: the store has not been refreshed "
                            f"since, and may be withholding updates", path=where, expires=ts.expires)


__all__ = ["OVERLAYS_TYPE", "TIMESTAMP_TYPE", "Timestamp", "check_timestamp", "overlay_versions_bytes",
           "parse_overlay_versions", "read_timestamp", "stamp", "strip_timestamp"]
