"""ed25519 keys and signed envelopes (pure; keys are passed in).

Envelope: ``{"signatures":[{"keyid":K,"sig":B64}],"signed":{...}}``. The signature covers
the canonical JSON bytes of ``signed`` (sorted keys, no spaces, UTF-8). A key id is the
first 16 hex digits of BLAKE3 of the raw 32-byte public key.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import blake3
import nacl.exceptions
import nacl.signing

from .errors import BadSignature, KeyInvalid, RecordInvalid, RecordTooLarge, UnknownKey

SECRET_PREFIX = "regen-ed25519-secret:"
PUBLIC_PREFIX = "regen-ed25519-public:"
MAX_RECORD_BYTES = 1 << 20


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def key_id(public: bytes) -> str:
    return blake3.blake3(public).hexdigest()[:16]


@dataclass(frozen=True)
class PublicKey:
    raw: bytes

    @property
    def keyid(self) -> str:
        return key_id(self.raw)

    def text(self) -> str:
        return PUBLIC_PREFIX + base64.b64encode(self.raw).decode() + "\n"

    def verify(self, message: bytes, sig: bytes) -> bool:
        try:
            nacl.signing.VerifyKey(self.raw).verify(message, sig)
            return True
        except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
            return False


@dataclass(frozen=True)
class SecretKey:
    seed: bytes

    def __repr__(self) -> str:  # never leak the seed into logs or tracebacks
        return f"SecretKey(keyid={self.public.keyid})"

    @property
    def public(self) -> PublicKey:
        return PublicKey(bytes(nacl.signing.SigningKey(self.seed).verify_key))

    def text(self) -> str:
        return SECRET_PREFIX + base64.b64encode(self.seed).decode() + "\n"

    def sign(self, message: bytes) -> bytes:
        return bytes(nacl.signing.SigningKey(self.seed).sign(message).signature)


def generate() -> SecretKey:
    return SecretKey(os.urandom(32))


def _decode_key_text(text: str, prefix: str, where: str) -> bytes:
    text = text.strip()
    if not text.startswith(prefix):
        kind = "secret" if prefix == SECRET_PREFIX else "public"
        raise KeyInvalid(f"{where} is not a regen {kind} key (expected a line starting with {prefix!r})")
    try:
        raw = base64.b64decode(text[len(prefix) :], validate=True)
    except (binascii.Error, ValueError):
        raise KeyInvalid(f"{where} has a malformed key (bad base64)") from None
    if len(raw) != 32:
        raise KeyInvalid(f"{where} has a malformed key ({len(raw)} bytes, expected 32)")
    return raw


def _read_key_file(path: str | os.PathLike[str]) -> str:
    try:
        with open(path, encoding="utf-8") as fp:
            return fp.read(4096)
    except FileNotFoundError:
        raise KeyInvalid(f"key file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyInvalid(f"key file {path} cannot be read: {getattr(exc, 'strerror', None) or exc}") from None
    except ValueError:  # a NUL in the name (from a config file): no such file can exist
        raise KeyInvalid(f"key file name {os.fsdecode(path)!r} contains a NUL byte") from None


def load_secret_key(path: str | os.PathLike[str]) -> SecretKey:
    return SecretKey(_decode_key_text(_read_key_file(path), SECRET_PREFIX, f"key file {path}"))


def load_public_key(path: str | os.PathLike[str]) -> PublicKey:
    text = _read_key_file(path)
    if text.strip().startswith(SECRET_PREFIX):
        return load_secret_key(path).public
    return PublicKey(_decode_key_text(text, PUBLIC_PREFIX, f"key file {path}"))


def parse_public_key(text: str, where: str = "public key") -> PublicKey:
    return PublicKey(_decode_key_text(text, PUBLIC_PREFIX, where))


def write_keypair(path: str | os.PathLike[str], key: SecretKey) -> None:
    """Write FILE (mode 0600) and FILE.pub (0644), both created exclusively: no key is ever overwritten."""
    path = os.fspath(path)
    for p in (path, path + ".pub"):
        if os.path.lexists(p):
            raise KeyInvalid(f"key file {p} already exists", hint="choose another name; regen never overwrites a key")
    _create_key_file(path, key.text(), 0o600)
    try:
        _create_key_file(path + ".pub", key.public.text(), 0o644)
    except KeyInvalid:
        os.unlink(path)  # no half pair: the secret alone would be easy to lose track of
        raise


def _create_key_file(path: str, text: str, mode: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
    except FileExistsError:
        raise KeyInvalid(f"key file {path} already exists",
                         hint="choose another name; regen never overwrites a key") from None
    except OSError as exc:
        raise KeyInvalid(f"key file {path} cannot be created: {exc.strerror}", hint="check the directory") from None
    try:
        with os.fdopen(fd, "w") as fp:
            fp.write(text)
            fp.flush()
            os.fsync(fp.fileno())
    except OSError as exc:
        os.unlink(path)
        raise KeyInvalid(f"key file {path} cannot be written: {exc.strerror}", hint="check the disk") from None


def sign_envelope(record: Mapping[str, Any], keys: list[SecretKey]) -> bytes:
    body = canonical(record)
    sigs = [{"keyid": k.public.keyid, "sig": base64.b64encode(k.sign(body)).decode()} for k in keys]
    return canonical({"signatures": sigs, "signed": record}) + b"\n"


def open_envelope(
    data: bytes, trusted: Mapping[str, PublicKey], *, where: str = "record", max_bytes: int = MAX_RECORD_BYTES
) -> dict[str, Any]:
    """Return the signed record if at least one signature from a trusted key verifies."""
    if len(data) > max_bytes:
        raise RecordTooLarge(f"{where} is {len(data)} bytes, over the limit of {max_bytes}", path=where)
    try:
        env = json.loads(data)
    except (ValueError, RecursionError):
        raise RecordInvalid(f"{where} is not valid JSON", path=where) from None
    if not isinstance(env, dict) or set(env) != {"signatures", "signed"}:
        raise RecordInvalid(f"{where} is not a signed envelope", path=where)
    signed, sigs = env["signed"], env["signatures"]
    if not isinstance(signed, dict) or not isinstance(sigs, list):
        raise RecordInvalid(f"{where} is not a signed envelope", path=where)
    if not sigs:
        raise BadSignature(f"{where} is not signed", path=where)
    try:
        body = canonical(signed)
    except (ValueError, UnicodeEncodeError):  # NaN/Infinity or a lone surrogate: nothing could have signed it
        raise RecordInvalid(f"{where} holds values that have no canonical form", path=where) from None
    known = False
    for s in sigs:
        if not isinstance(s, dict) or not isinstance(s.get("keyid"), str) or not isinstance(s.get("sig"), str):
            raise RecordInvalid(f"{where} has a malformed signature entry", path=where)
        key = trusted.get(s["keyid"])
        if key is None:
            continue
        known = True
        try:
            sig = base64.b64decode(s["sig"], validate=True)
        except (binascii.Error, ValueError):
            continue
        if key.verify(body, sig):
            return signed
    if not known:
        ids = ", ".join(str(s.get("keyid")) for s in sigs if isinstance(s, dict))
        raise UnknownKey(f"{where} is signed by unknown key(s) {ids}", path=where, keyids=ids)
    raise BadSignature(f"{where} has a signature that does not verify", path=where)


def peek_envelope(data: bytes, *, where: str = "record", max_bytes: int = MAX_RECORD_BYTES) -> dict[str, Any]:
    """The signed record without verification: for listings on the manager only, never for trust."""
    if len(data) > max_bytes:
        raise RecordTooLarge(f"{where} is {len(data)} bytes, over the limit of {max_bytes}", path=where)
    try:
        env = json.loads(data)
        signed = env["signed"]
    except (ValueError, KeyError, TypeError, RecursionError):
        raise RecordInvalid(f"{where} is not a signed envelope", path=where) from None
    if not isinstance(signed, dict):
        raise RecordInvalid(f"{where} is not a signed envelope", path=where)
    return signed


def trust_map(keys: list[PublicKey]) -> dict[str, PublicKey]:
    return {k.keyid: k for k in keys}
