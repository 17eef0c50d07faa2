"""The root of trust: a versioned, threshold-signed list of the keys allowed to sign, per role (pure).

TUF's root role, cut to what regen needs (issue 12). `root/<version>.json` is a signed envelope
(FORMAT.md §5) of a `regen-root` record that names the store id, the keys, and per role the key
ids and how many of them must sign: `root` (who may sign the next root version) and `publisher`
(who signs generations and overlays). A client pins one version (its `trust_root` file) and
moves from version N to N+1 only if N+1 is signed by a threshold of N's root keys AND of its own:
a stolen publisher key is revoked by the next version, a lost root key replaced, and a client
offline during several rotations walks the versions one by one. The store id is bound in the
signed root, so nothing of the unsigned regen.json is trusted on first use.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import (
    BadSignature,
    IntegrityError,
    InvalidInput,
    RecordInvalid,
    RecordMismatch,
    RecordTooLarge,
    RollbackRefused,
    TrustError,
    UnsupportedFormat,
)
from .generation import MAX_NUMBER, parse_time
from .signing import MAX_RECORD_BYTES, PublicKey, canonical, parse_public_key

ROOT_TYPE = "regen-root"
ROLES = ("root", "publisher")
MAX_WALK = 1000  # root versions read in one update; a store cannot make a client read forever


@dataclass(frozen=True, slots=True)
class Role:
    keys: tuple[str, ...]
    threshold: int


@dataclass(frozen=True, slots=True)
class Root:
    store_id: str
    version: int
    created: str
    keys: Mapping[str, PublicKey]
    roles: Mapping[str, Role]
    expires: str | None = None

    def role_keys(self, role: str) -> dict[str, PublicKey]:
        return {k: self.keys[k] for k in self.roles[role].keys}

    def to_record(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "expires": self.expires,
            "features": [],
            "format": 1,
            "keys": {k: v.text().strip() for k, v in sorted(self.keys.items())},
            "roles": {name: {"keys": sorted(r.keys), "threshold": r.threshold}
                      for name, r in sorted(self.roles.items())},
            "store_id": self.store_id,
            "type": ROOT_TYPE,
            "version": self.version,
        }

    @classmethod
    def from_record(cls, rec: Mapping[str, Any], where: str = "root record") -> Root:
        if not isinstance(rec, Mapping) or rec.get("type") != ROOT_TYPE:
            raise RecordInvalid(f"{where} is not a {ROOT_TYPE} record", path=where)
        if rec.get("format") != 1 or rec.get("features", []) != []:
            raise UnsupportedFormat(f"{where} needs a newer regen (format {rec.get('format')!r}, "
                                    f"features {rec.get('features')!r})")
        try:
            version, store_id, created, keys, roles = (rec["version"], rec["store_id"], rec["created"], rec["keys"],
                                                       rec["roles"])
        except KeyError as exc:
            raise RecordInvalid(f"{where} lacks field {exc.args[0]!r}", path=where) from None
        if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= MAX_NUMBER:
            raise RecordInvalid(f"{where} has an invalid version {version!r}", path=where)
        if not isinstance(store_id, str) or not isinstance(keys, dict) or not isinstance(roles, dict):
            raise RecordInvalid(f"{where} has a malformed store id, keys or roles", path=where)
        parse_time(created, where)
        if rec.get("expires") is not None:
            parse_time(rec["expires"], where)
        parsed: dict[str, PublicKey] = {}
        for keyid, text in keys.items():
            try:
                key = parse_public_key(text if isinstance(text, str) else "", f"{where} key {keyid}")
            except InvalidInput as exc:
                raise RecordInvalid(exc.message, path=where) from None
            if key.keyid != keyid:
                raise RecordInvalid(f"{where} lists key {key.keyid} under id {keyid}", path=where)
            parsed[keyid] = key
        out: dict[str, Role] = {}
        for name in ROLES:
            r = roles.get(name)
            if not isinstance(r, dict) or not isinstance(r.get("keys"), list) \
                    or not isinstance(r.get("threshold"), int):
                raise RecordInvalid(f"{where} has no valid {name!r} role", path=where)
            ids = tuple(str(k) for k in r["keys"])
            if not set(ids) <= set(parsed) or not 1 <= r["threshold"] <= len(ids):
                raise RecordInvalid(f"{where}: role {name!r} names unknown keys or a threshold outside 1..{len(ids)}",
                                    path=where)
            out[name] = Role(ids, r["threshold"])
        return cls(store_id, version, created, parsed, out, rec.get("expires"))


def _signers(data: bytes, where: str) -> tuple[dict[str, Any], dict[str, bytes], bytes]:
    """The signed record, its signatures by key id (undecodable ones dropped), and the signed bytes."""
    if len(data) > MAX_RECORD_BYTES:
        raise RecordTooLarge(f"{where} is {len(data)} bytes, over the limit of {MAX_RECORD_BYTES}", path=where)
    try:
        env = json.loads(data)
        signed, sigs = env["signed"], env["signatures"]
        body = canonical(signed)
    except (ValueError, KeyError, TypeError, RecursionError, UnicodeEncodeError):
        raise RecordInvalid(f"{where} is not a signed envelope", path=where) from None
    if not isinstance(signed, dict) or not isinstance(sigs, list):
        raise RecordInvalid(f"{where} is not a signed envelope", path=where)
    out: dict[str, bytes] = {}
    for s in sigs:
        if isinstance(s, dict) and isinstance(s.get("keyid"), str) and isinstance(s.get("sig"), str):
            try:
                out[s["keyid"]] = base64.b64decode(s["sig"], validate=True)
            except (binascii.Error, ValueError):
                continue
    return signed, out, body


def _count(sigs: Mapping[str, bytes], body: bytes, keys: Mapping[str, PublicKey]) -> int:
    return sum(1 for k, key in keys.items() if k in sigs and key.verify(body, sigs[k]))


def signatures_missing(data: bytes, root: Root, previous: Root | None) -> int:
    """How many more root signatures `data` needs to be accepted after `previous` (0: complete)."""
    _, sigs, body = _signers(data, "root")
    need = root.roles["root"].threshold - _count(sigs, body, root.role_keys("root"))
    if previous is not None:
        need = max(need, previous.roles["root"].threshold - _count(sigs, body, previous.role_keys("root")))
    return max(need, 0)


def verify_root(data: bytes, previous: Root | None, *, where: str = "root record") -> Root:
    """Accept a root version: signed by a threshold of its own root keys and, after `previous`, by a
    threshold of the previous version's root keys too, for the same store, exactly one version on."""
    signed, sigs, body = _signers(data, where)
    root = Root.from_record(signed, where)
    if previous is not None:
        if root.store_id != previous.store_id:
            raise RecordMismatch(f"{where} is for store {root.store_id}, not {previous.store_id}", path=where)
        if root.version != previous.version + 1:
            raise RollbackRefused(f"{where} is version {root.version}, expected {previous.version + 1}",
                                  path=where, number=root.version, seen=previous.version)
        if _count(sigs, body, previous.role_keys("root")) < previous.roles["root"].threshold:
            raise BadSignature(f"{where} is not signed by {previous.roles['root'].threshold} of the root keys of "
                               f"version {previous.version}", path=where)
    if _count(sigs, body, root.role_keys("root")) < root.roles["root"].threshold:
        raise BadSignature(f"{where} is not signed by {root.roles['root'].threshold} of its own root keys",
                           path=where)
    return root


def update_root(pinned: Root, read: Callable[[int], bytes | None]) -> tuple[Root, str | None]:
    """Walk root versions pinned+1, pinned+2, ... while they exist and verify; the newest reached.

    A version that does not verify (yet: still being signed, or forged) stops the walk there;
    the caller keeps what it had and gets the reason, so a forged version can withhold a rotation
    (as withholding the file could) but never grant trust.
    """
    current = pinned
    for _ in range(MAX_WALK):
        data = read(current.version + 1)
        if data is None:
            break
        try:
            current = verify_root(data, current, where=f"root/{current.version + 1:010d}.json")
        except (TrustError, IntegrityError, UnsupportedFormat) as exc:
            return current, exc.message
    return current, None


__all__ = ["ROLES", "ROOT_TYPE", "Role", "Root", "signatures_missing", "update_root", "verify_root"]
