"""Host identities on the manager (issue 12): enrolling a host's key, and judging each report by it.

`enroll` publishes hosts/<host>/key.json signed by the admin key (I/O). `judge` (pure) says
whether a report is signed by the enrolled key and whether its counter is above the last one
this manager saw; `Seen` keeps those counters in the manager's cache dir, one file per store, so a
signed report put back after a newer one ("replayed") is caught from the second `regen status` on.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from regen.store import (
    HostKey,
    PublicKey,
    Report,
    SecretKey,
    Store,
    StoreLock,
    format_time,
    load_public_key,
    report_auth,
    save_atomic,
    utcnow,
    verify_host_key,
)
from regen.store.errors import IntegrityError, TrustError, UnsupportedFormat

from .trust import Trust, verified_overlay

FORGED, REPLAYED, SIGNED, UNSIGNED = "forged", "replayed", "signed", "unsigned"
_REFUSED = (TrustError, IntegrityError, UnsupportedFormat)


@dataclass(frozen=True, slots=True)
class EnrollResult:
    host: str
    keyid: str
    enrolled: str
    replaced: str | None  # the key id enrolled before, when re-enrolling
    sealed_to_old: bool = False  # the host's overlay is sealed to another key: set it again

    def as_dict(self) -> dict[str, Any]:
        return {"host": self.host, "keyid": self.keyid, "enrolled": self.enrolled, "replaced": self.replaced,
                "sealed_to_old": self.sealed_to_old}


def enroll(store: Store, host: str, public_file: str, key: SecretKey, trust: Trust) -> EnrollResult:
    """Publish HOST's public key (from `regend host-key`) signed by the admin key."""
    public = load_public_key(os.path.expanduser(public_file))
    old, _problem = enrolled_key(store, host, trust)
    hk = HostKey(host, store.store_id, public, format_time(utcnow()))
    with StoreLock(store, "regen host enroll"):
        store.write_host_key(hk, [key])
    found = verified_overlay(store, host, trust)
    stale = found is not None and found[0].sealed is not None and found[0].sealed.key != public.keyid
    return EnrollResult(host, public.keyid, hk.enrolled, old.keyid if old is not None and old != public else None,
                        stale)


def enrolled_key(store: Store, host: str, trust: Trust) -> tuple[PublicKey | None, str | None]:
    """(the host's enrolled key, None), (None, None) if not enrolled, (None, why) if its record does not verify."""
    data = store.read_host_key(host)
    if data is None:
        return None, None
    where = f"hosts/{host}/key.json"
    try:
        return verify_host_key(data, trust.keys, store_id=store.store_id, host=host, where=where).public, None
    except _REFUSED as exc:
        return None, f"its key record does not verify with the trusted keys: {exc.message}"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a report's signature says: `auth` (signed/unsigned/forged/replayed), why, the counter to remember."""

    auth: str
    note: str | None
    enrolled: bool
    seen: tuple[int, str] | None = None  # (counter, digest) of a good signed report


def judge(report: Report, key: PublicKey | None, key_problem: str | None,
          last: tuple[int, str] | None) -> Verdict:
    """The verdict on `report` given the host's enrolled key and the last (counter, digest) seen from it."""
    if key_problem is not None:
        return Verdict(FORGED, key_problem, True)
    if key is None:
        if last is not None:
            return Verdict(FORGED, "a signed report was seen from this host before, but it has no key record now",
                           True)
        return Verdict(UNSIGNED, None, False)
    auth = report_auth(report, key)
    if auth == UNSIGNED:
        return Verdict(UNSIGNED, "unsigned report from an enrolled host", True)
    if auth != SIGNED or report.counter is None or report.signed_body is None:
        return Verdict(FORGED, "report signature does not verify with the enrolled key", True)
    digest = hashlib.sha256(report.signed_body).hexdigest()[:32]
    if last is not None and (report.counter < last[0] or (report.counter == last[0] and digest != last[1])):
        return Verdict(REPLAYED, f"report counter {report.counter} is not above the last one seen ({last[0]})", True)
    return Verdict(SIGNED, None, True, (report.counter, digest))


class Seen:
    """The last report counter seen per host of one store, in the manager's cache dir (JSON)."""

    def __init__(self, cache_dir: Path, store_id: str) -> None:
        self.path = cache_dir / "report-counters" / f"{store_id}.json"

    def load(self) -> dict[str, tuple[int, str]]:
        try:
            raw = json.loads(self.path.read_bytes())
        except (OSError, ValueError):
            return {}
        out: dict[str, tuple[int, str]] = {}
        for host, v in raw.items() if isinstance(raw, dict) else ():
            if (isinstance(v, list) and len(v) == 2 and isinstance(v[0], int) and not isinstance(v[0], bool)
                    and isinstance(v[1], str)):
                out[str(host)] = (v[0], v[1])
        return out

    def save(self, before: Mapping[str, tuple[int, str]], updates: Mapping[str, tuple[int, str]]) -> None:
        """Remember the newer counters; nothing is written when nothing changed."""
        merged = dict(before)
        merged.update({h: v for h, v in updates.items() if h not in before or v[0] >= before[h][0]})
        if merged == dict(before):
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            save_atomic(str(self.path), json.dumps({h: list(v) for h, v in sorted(merged.items())}).encode())
        except OSError:
            pass  # a read-only cache: replays are then caught only against what the store shows


__all__ = ["EnrollResult", "Seen", "Verdict", "enroll", "enrolled_key", "judge"]
