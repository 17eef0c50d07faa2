"""Sealed overlay objects (issue 12): a host's overlay files encrypted to that host's key (pure).

Why: clients may list and read `objects/` (S3 ListBucket, SMB/SFTP read on the whole store), so
a host's private files (TLS keys, Wi-Fi PSKs) must not lie there in plaintext. `regen host set`
seals each overlay file, the overlay manifest and a *seal table* (plaintext id -> sealed id) to
the host's enrolled ed25519 key, converted to X25519 (libsodium sealed boxes: an ephemeral key
pair per box, XSalsa20-Poly1305). Only the host can open them; no new key has to be enrolled.

A sealed object is a normal object (FORMAT.md §3) whose content is the box, so it is
content-addressed by the box's bytes: gc, fsck, packs and migrate handle it as an opaque blob.
Trust does not come from the box (anyone can seal to a public key): after opening, the
plaintext MUST hash to the plaintext id that a signed record or a verified manifest names.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import nacl.exceptions
import nacl.public
import nacl.signing

from .errors import ObjectCorrupt, RecordInvalid
from .objects import ObjectId, is_object_id, object_id
from .signing import PublicKey, SecretKey, canonical

SEALED = "sealed"  # the overlay record's feature (FORMAT.md §8.1)
TABLE_TYPE = "regen-seal-table"
BOX_OVERHEAD = 48  # ephemeral X25519 public key (32) + Poly1305 tag (16)
# Each box is sealed and opened whole in memory: overlay files are configuration and secrets.
MAX_SEALED_FILE = 16 << 20
# Every sealed id is listed in the signed overlay record (gc and fsck cannot open the table):
# 4096 ids of 67 bytes stay well inside the 1 MiB envelope limit.
MAX_SEALED_OBJECTS = 4096


@dataclass(frozen=True, slots=True)
class SealedRef:
    """The `sealed` member of an overlay record: which host key the overlay is sealed to, the seal
    table (plaintext id `table`, stored in the box `box`) and every other sealed object it uses."""

    key: str
    table: ObjectId
    box: ObjectId
    objects: tuple[ObjectId, ...]

    def to_record(self) -> dict[str, Any]:
        return {"box": self.box, "key": self.key, "objects": list(self.objects), "table": self.table}

    def all_objects(self) -> tuple[ObjectId, ...]:
        """Every object of the store this overlay keeps alive (gc, fsck)."""
        return (self.box, *self.objects)

    @classmethod
    def from_record(cls, d: object, where: str) -> SealedRef:
        if not isinstance(d, dict) or set(d) != {"box", "key", "objects", "table"}:
            raise RecordInvalid(f"{where} has a malformed 'sealed' member", path=where)
        key, table, box, objects = d["key"], d["table"], d["box"], d["objects"]
        if not isinstance(key, str) or len(key) != 16 or not all(c in "0123456789abcdef" for c in key):
            raise RecordInvalid(f"{where} names an invalid host key id {key!r}", path=where)
        if not is_object_id(table) or not is_object_id(box):
            raise RecordInvalid(f"{where} has an invalid seal table id", path=where)
        if (not isinstance(objects, list) or len(objects) > MAX_SEALED_OBJECTS
                or not all(is_object_id(o) for o in objects) or objects != sorted(set(objects))):
            raise RecordInvalid(f"{where} has a malformed list of sealed objects (sorted, distinct ids, at most "
                                f"{MAX_SEALED_OBJECTS})", path=where)
        return cls(key, table, box, tuple(objects))


def seal(data: bytes, to: PublicKey) -> bytes:
    """A sealed box of `data` that only the holder of `to`'s secret key can open."""
    recipient = nacl.signing.VerifyKey(to.raw).to_curve25519_public_key()
    return bytes(nacl.public.SealedBox(recipient).encrypt(data))


def unseal(box: bytes, key: SecretKey, *, oid: ObjectId, sealed_id: ObjectId, where: str) -> bytes:
    """The plaintext of `box`, refused unless it opens with `key` and hashes to `oid`."""
    private = nacl.signing.SigningKey(key.seed).to_curve25519_private_key()
    try:
        plain = bytes(nacl.public.SealedBox(private).decrypt(box))
    except nacl.exceptions.CryptoError:
        raise ObjectCorrupt(f"sealed object {sealed_id} at {where} does not open with this host's key "
                            f"{key.public.keyid} (altered, or sealed to another key)", oid=sealed_id,
                            path=where) from None
    if object_id(plain) != oid:
        raise ObjectCorrupt(f"sealed object {sealed_id} at {where} opens to content that does not hash to "
                            f"{oid}, the id its signed overlay names: refused", oid=sealed_id, path=where)
    return plain


def encode_table(table: Mapping[ObjectId, ObjectId]) -> bytes:
    """The seal table's canonical bytes (FORMAT.md §8.1): plaintext id -> sealed id."""
    return canonical({"format": 1, "objects": dict(sorted(table.items())), "type": TABLE_TYPE})


def parse_table(data: bytes, where: str) -> dict[ObjectId, ObjectId]:
    """A seal table, already verified against its plaintext id; malformed ones are refused."""
    try:
        d = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise RecordInvalid(f"{where} is not a seal table (not JSON)", path=where) from None
    if not isinstance(d, dict) or d.get("type") != TABLE_TYPE or d.get("format") != 1 or set(d) != {
            "format", "objects", "type"}:
        raise RecordInvalid(f"{where} is not a regen seal table of format 1", path=where)
    objects = d["objects"]
    if not isinstance(objects, dict) or len(objects) > MAX_SEALED_OBJECTS or not all(
            is_object_id(k) and is_object_id(v) for k, v in objects.items()):
        raise RecordInvalid(f"{where} has a malformed object map", path=where)
    return dict(objects)


__all__ = ["BOX_OVERHEAD", "MAX_SEALED_FILE", "MAX_SEALED_OBJECTS", "SEALED", "SealedRef", "encode_table",
           "parse_table", "seal", "unseal"]
