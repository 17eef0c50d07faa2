"""What the manager trusts: only keys its operator configured, never the store's `keys/` (issue 12).

The store is untrusted storage for the manager as much as for clients: whoever can write it
can add a key file, replace a record or forge a ref. So everything the manager builds on --
the ref (its number, parent, policy, manifest), the record a rollback republishes, the
highest number taken, a host's overlay version -- is verified here against the keys the
operator gave (`--key`'s public half plus `--trusted-key` files) before it is used; anything
that does not verify is refused with `Untrusted` (exit 2), never signed over.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from regen.store import (
    Generation,
    Overlay,
    PublicKey,
    SecretKey,
    Store,
    load_public_key,
    trust_map,
    verify_generation,
    verify_overlay,
)
from regen.store.errors import IntegrityError, TrustError, UnsupportedFormat

from .errors import BadOption, Untrusted

# Records the manager builds on may have expired (an old generation rolled back to, an overlay
# signed with --expires): expiry protects clients from freeze, not the signer from its own records.
_NO_EXPIRY = datetime(1970, 1, 1, tzinfo=UTC)
_REFUSED = (TrustError, IntegrityError, UnsupportedFormat)


@dataclass(frozen=True, slots=True)
class Trust:
    """The public keys whose signatures the manager accepts, by key id."""

    keys: Mapping[str, PublicKey] = field(default_factory=dict)

    def require(self, command: str) -> Trust:
        if not self.keys:
            raise BadOption(f"'regen {command}' checks signatures and no trusted key is configured",
                            hint="pass --key FILE (your signing key) or --trusted-key FILE.pub "
                                 "(env REGEN_KEY / REGEN_TRUSTED_KEYS); the store's keys/ folder is never trusted")
        return self

    def describe(self) -> str:
        return ", ".join(sorted(self.keys)) or "none"


def load_trust(signing: SecretKey | None, files: Iterable[str] | None) -> Trust:
    """The signing key's public half plus each `--trusted-key` file (a .pub or a secret key file)."""
    keys = [signing.public] if signing is not None else []
    keys += [load_public_key(os.path.expanduser(f)) for f in files or () if f]
    return Trust(trust_map(keys))


def _untrusted(what: str, exc: Exception, trust: Trust) -> Untrusted:
    return Untrusted(f"{what} does not verify with the trusted keys ({trust.describe()}): {exc}; "
                     f"refusing to build on it")


def verified_ref(store: Store, channel: str, trust: Trust) -> tuple[Generation, bytes] | None:
    """The channel's current generation and its envelope, verified; None if never published."""
    data = store.read_ref(channel)
    if data is None:
        return None
    try:
        gen = verify_generation(data, trust.keys, store_id=store.store_id, channel=channel, now=_NO_EXPIRY,
                                where=f"refs/{channel}")
    except _REFUSED as exc:
        raise _untrusted(f"refs/{channel}", exc, trust) from None
    return gen, data


def verified_generation(store: Store, channel: str, number: int, trust: Trust,
                        now: datetime | None = None) -> tuple[Generation, bytes]:
    """Generation `number` of `channel`, verified and at its own place; `now` None ignores expiry."""
    where = f"generation {number} of channel {channel!r}"
    data = store.read_generation(channel, number)
    try:
        gen = verify_generation(data, trust.keys, store_id=store.store_id, channel=channel,
                                now=now or _NO_EXPIRY, where=where)
    except _REFUSED as exc:
        raise _untrusted(where, exc, trust) from None
    if gen.number != number:
        raise Untrusted(f"{where} holds a record of generation {gen.number}; refusing to build on it",
                        hint="the store is damaged; run 'regen fsck'")
    return gen, data


def newest_verified(store: Store, channel: str, trust: Trust) -> Generation | None:
    """The highest-numbered record of `channel` that verifies; forged or damaged ones above it are
    skipped (they must not steer the numbering: a forged number 2**63-2 would burn it)."""
    for n in sorted(store.generation_numbers(channel), reverse=True):
        try:
            return verified_generation(store, channel, n, trust)[0]
        except Untrusted:
            continue
    return None


def verified_overlay(store: Store, host: str, trust: Trust) -> tuple[Overlay, bytes] | None:
    """The host's current overlay record, verified; None if it never had one."""
    data = store.read_overlay(host)
    if data is None:
        return None
    where = f"hosts/{host}/overlay.json"
    try:
        ov = verify_overlay(data, trust.keys, store_id=store.store_id, host=host, now=_NO_EXPIRY, where=where)
    except _REFUSED as exc:
        raise _untrusted(where, exc, trust) from None
    return ov, data


def verifies(data: bytes, trust: Trust, *, where: str) -> str | None:
    """None if the envelope is signed by a trusted key, else why not (for show and listings)."""
    from regen.store import open_envelope

    if not trust.keys:
        return "no trusted key given (pass --key or --trusted-key)"
    try:
        open_envelope(data, trust.keys, where=where)
    except _REFUSED as exc:
        return exc.message
    return None


__all__ = ["Trust", "load_trust", "newest_verified", "verified_generation", "verified_overlay", "verified_ref",
           "verifies"]
