"""Publishing signed records: generations, the refs that point at them, host overlays, and the
publisher keys that signed them.

The publish order is what keeps readers safe: a record is written only once its manifest is
stored, the keys that sign it before the record itself, and a ref only at a record already
stored byte for byte -- so a reader who follows a ref finds everything it needs. Records that
every client would refuse (unsigned, bound to another store, malformed) are refused here,
before anything is written. The functions take the `Store` they publish to and go through its
methods, so they behave exactly as those do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import layout
from .errors import InvalidInput, ObjectMissing, RecordInvalid, StoreError, StoreExists
from .generation import Generation, Overlay
from .signing import PublicKey, SecretKey, parse_public_key, sign_envelope
from .timestamp import strip_timestamp

if TYPE_CHECKING:
    from .objectstore import ObjectStore


def write_generation(store: ObjectStore, gen: Generation, keys: list[SecretKey]) -> bytes:
    """Write generations/<channel>/<n>.json exclusively; the manifest must already be stored.

    Returns the signed envelope, for `set_ref`. StoreExists if that number is taken.
    """
    check_signable(store, f"generation {gen.number} of channel {gen.channel!r}", gen.store_id, keys)
    check_record(Generation.from_record, gen.to_record())
    if not store.has(gen.manifest):
        raise ObjectMissing(f"manifest {gen.manifest} is not in the store; refusing to publish", oid=gen.manifest)
    env = sign_envelope(gen.to_record(), keys)
    path = layout.generation_path(gen.channel, gen.number)
    for k in keys:  # first: a kill after the record must not leave it signed by a key fsck cannot find
        store.put_public_key(k.public)
    try:
        store.backend.create_exclusive(path, env)
    except StoreExists:
        raise StoreExists(f"generation {gen.number} of channel {gen.channel!r} already exists",
                          hint="another publisher was faster; retry") from None
    return env


def set_ref(store: ObjectStore, channel: str, envelope: bytes) -> None:
    """Point the channel at a record, which must already be stored byte for byte (publish order).

    One extra read per publish buys the guarantee that no ref ever names a record that is
    not in generations/: a reader who follows the ref finds everything it needs.
    """
    gen = store.peek_generation(envelope, where="record for the ref")
    if gen.channel != channel:
        raise InvalidInput(f"refs/{channel} cannot point at a record of channel {gen.channel!r}",
                           hint="publish the record on its own channel")
    if store.read_generation(channel, gen.number) != strip_timestamp(envelope):  # a ref may carry a timestamp
        raise InvalidInput(f"refs/{channel} can only point at the stored record of generation {gen.number}",
                           hint="write the generation with write_generation first, then set the ref")
    store.backend.write(layout.ref_path(channel), envelope)


def write_overlay(store: ObjectStore, overlay: Overlay, keys: list[SecretKey]) -> bytes:
    """Sign and (re)place hosts/<host>/overlay.json; its manifest must already be stored.

    A record with manifest None is a tombstone: the host's overlay was removed (a client
    that saw a higher number refuses an older overlay instead of dropping back to none).
    """
    check_signable(store, f"overlay {overlay.number} of host {overlay.host!r}", overlay.store_id, keys)
    check_record(Overlay.from_record, overlay.to_record())
    # (a sealed overlay's manifest lies in a box: every box it lists must be stored)
    needed = overlay.sealed.all_objects() if overlay.sealed else (overlay.manifest,) if overlay.manifest else ()
    for oid in needed:
        if not store.has(oid):
            raise ObjectMissing(f"overlay object {oid} is not in the store", oid=oid)
    env = sign_envelope(overlay.to_record(), keys)
    for k in keys:  # first, as for generations
        store.put_public_key(k.public)
    store.backend.write(layout.overlay_path(overlay.host), env)
    return env


def check_signable(store: ObjectStore, what: str, store_id: str, keys: list[SecretKey]) -> None:
    """Refuse records every client would refuse: unsigned, or bound to another store."""
    if not keys:
        raise InvalidInput(f"{what} needs at least one signing key", hint="pass the publisher's secret key")
    if store_id != store.store_id:
        raise InvalidInput(f"{what} is for store {store_id}, but {store.url} is store {store.store_id}",
                           hint="build the record with store.store_id")


def check_record(parse: Callable[[dict[str, Any]], object], record: dict[str, Any]) -> None:
    """Refuse to sign a record that clients would refuse as malformed (bad time, id, number...)."""
    try:
        parse(record)
    except RecordInvalid as exc:
        raise InvalidInput(f"cannot publish a malformed record: {exc.message}",
                           hint="times are YYYY-MM-DDTHH:MM:SSZ (format_time), ids 64 hex digits, "
                                "numbers >= 0") from None


# -- publisher keys (informational: clients trust only their configured keys) -------------------
def put_public_key(store: ObjectStore, key: PublicKey) -> None:
    """Store keys/<keyid>.pub unless it is there: a key file is written once and never replaced."""
    path = layout.key_path(key.keyid)
    try:
        store.backend.create_exclusive(path, key.text().encode())
    except StoreExists:
        pass


def public_keys(store: ObjectStore) -> dict[str, PublicKey]:
    """The publisher keys stored under keys/, by key id; a damaged or misnamed key file is skipped."""
    keys: dict[str, PublicKey] = {}
    for p in store.backend.list(layout.KEYS):
        try:
            k = parse_public_key(store.backend.read(p, max_bytes=4096).decode("utf-8", "replace"), p)
        except (StoreError, RecordInvalid):
            continue
        if p.endswith(f"/{k.keyid}.pub"):
            keys[k.keyid] = k
    return keys


__all__ = ["check_record", "check_signable", "public_keys", "put_public_key", "set_ref", "write_generation",
           "write_overlay"]
