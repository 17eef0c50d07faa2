"""Host identities (issue 12): the admin-signed record of a host's public key, and reports the
host signs with it (pure; keys are passed in).

Each client holds its own ed25519 key pair in its state_dir. `regen host enroll` publishes the
public half at hosts/<host>/key.json inside an envelope signed by the admin key, so whoever can
write the store cannot swap it. The client signs each report with that key over the report's
canonical JSON, which includes a counter that grows with every report: a forged report does not
verify, and an old signed report put back in place of a newer one carries a lower counter.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from .errors import RecordInvalid, RecordMismatch
from .report import Report
from .signing import PublicKey, SecretKey, canonical, open_envelope, parse_public_key
from .text import json_safe

HOST_KEY_TYPE = "regen-host-key"
FORMAT = 1
# What a report's signature says about it (REPORT_AUTH[0] is the only trusted one)
SIGNED, UNSIGNED, FORGED, REPLAYED = "signed", "unsigned", "forged", "replayed"
REPORT_AUTH = (SIGNED, UNSIGNED, FORGED, REPLAYED)


@dataclass(frozen=True, slots=True)
class HostKey:
    """hosts/<host>/key.json's signed part: which public key speaks for `host` in store `store_id`."""

    host: str
    store_id: str
    public: PublicKey
    enrolled: str

    def to_record(self) -> dict[str, Any]:
        return {"type": HOST_KEY_TYPE, "format": FORMAT, "host": self.host, "store_id": self.store_id,
                "public": self.public.text().strip(), "enrolled": self.enrolled}

    @classmethod
    def from_record(cls, d: Mapping[str, Any], where: str = "host key record") -> HostKey:
        if d.get("type") != HOST_KEY_TYPE or d.get("format") != FORMAT:
            raise RecordInvalid(f"{where} is not a regen host key record of format {FORMAT}", path=where)
        host, store_id, public, enrolled = (d.get(k) for k in ("host", "store_id", "public", "enrolled"))
        if not all(isinstance(v, str) for v in (host, store_id, public, enrolled)):
            raise RecordInvalid(f"{where} lacks a field or has one of the wrong type", path=where)
        assert isinstance(host, str) and isinstance(store_id, str) and isinstance(enrolled, str)
        return cls(host, store_id, parse_public_key(str(public), where), enrolled)


def verify_host_key(data: bytes, trusted: Mapping[str, PublicKey], *, store_id: str, host: str,
                    where: str = "host key record") -> HostKey:
    """The enrolled key of `host`, if the record is signed by a trusted (admin) key for this store and host."""
    hk = HostKey.from_record(open_envelope(data, trusted, where=where), where)
    if hk.store_id != store_id:
        raise RecordMismatch(f"{where} was signed for store {hk.store_id}, not {store_id}", path=where)
    if hk.host != host:
        raise RecordMismatch(f"{where} was signed for host {hk.host!r}, not {host!r}", path=where)
    return hk


def sign_report(report: Report, key: SecretKey, counter: int) -> Report:
    """`report` with `counter` and the host key's signature over its canonical JSON."""
    r = replace(report, counter=counter, signature=None, signed_body=None)
    body = canonical(json_safe(r.as_dict()))
    sig = {"keyid": key.public.keyid, "sig": base64.b64encode(key.sign(body)).decode()}
    return replace(r, signature=sig, signed_body=body)


def report_auth(report: Report, key: PublicKey) -> str:
    """SIGNED if `key` signed exactly this report (with a counter), else UNSIGNED or FORGED.

    Whether the counter is new is the reader's business (it alone remembers the last one seen).
    """
    if report.signature is None or report.signed_body is None:
        return UNSIGNED
    if report.signature.get("keyid") != key.keyid or report.counter is None:
        return FORGED
    try:
        sig = base64.b64decode(report.signature.get("sig", ""), validate=True)
    except (binascii.Error, ValueError):
        return FORGED
    return SIGNED if key.verify(report.signed_body, sig) else FORGED


__all__ = ["FORGED", "HOST_KEY_TYPE", "REPLAYED", "REPORT_AUTH", "SIGNED", "UNSIGNED", "HostKey", "report_auth",
           "sign_report", "verify_host_key"]
