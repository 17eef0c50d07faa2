"""`regen host set/show/rm`: a host's own files over its channel, as signed Overlay records.

An overlay record carries a version number that only increases (clients refuse a lower
one, as for generations); removing an overlay writes a tombstone (manifest None) with the
next version, so a client learns of the removal and cannot be replayed the old overlay.
An enrolled host's overlay is sealed to its key (sealing.py); a host that is not enrolled
gets one only with `plaintext=True` (`--plaintext`), so no secret lands readable by accident.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from regen.store import (
    Entry,
    Overlay,
    Procedure,
    PublicKey,
    SecretKey,
    Store,
    StoreLock,
    encode_xattrs,
    format_time,
    peek_envelope,
    utcnow,
)

from .build import TreeBuild, build_tree, check_source
from .errors import HostNotEnrolled, OverlayNotFound, RefMoved, Untrusted
from .history import signers
from .hostkeys import enrolled_key
from .options import check_host
from .progress import Progress
from .publish import expiry, restamp
from .sealing import build_sealed
from .trust import Trust, verified_overlay, verifies


def current_overlay(store: Store, host: str) -> tuple[Overlay, bytes] | None:
    """The host's overlay record, parsed but NOT verified: for `host show` only."""
    data = store.read_overlay(check_host(host))
    if data is None:
        return None
    where = f"overlay of host {host!r}"
    return Overlay.from_record(peek_envelope(data, where=where), where), data


def next_version(current: Overlay | None) -> int:
    return 1 if current is None else current.number + 1


@dataclass(frozen=True, slots=True)
class OverlayResult:
    host: str
    number: int
    manifest: str | None
    tree: TreeBuild | None
    sealed_to: str | None = None  # the host key id its files are sealed to; None: plaintext (or removed)

    def as_dict(self) -> dict[str, object]:
        return {"host": self.host, "number": self.number, "manifest": self.manifest, "removed": self.manifest is None,
                **({"sealed_to": self.sealed_to, **self.tree.as_dict()} if self.tree else {})}


def set_overlay(store: Store, host: str, src: str, key: SecretKey, *, message: str, cache_dir: Path,
                expires: timedelta | None = None, progress: Progress | None = None,
                now: datetime | None = None, trust: Trust | None = None,
                procedures: tuple[Procedure, ...] = (), plaintext: bool = False) -> OverlayResult:
    """The host's next overlay version: DIR's files and `procedures` (which its clients run only
    where the channel's signed policy says `overlay_procedures = true`), sealed to the host's
    enrolled key unless `plaintext`."""
    check_host(host)
    check_source(src)  # (a missing DIR is said before a missing enrolment)
    trust = trust or Trust({key.public.keyid: key.public})
    to = None if plaintext else sealing_key(store, host, trust)
    with StoreLock(store, "regen host set", heartbeat=True) as lock:
        found = verified_overlay(store, host, trust)  # a forged version must not set the next one
        current = found[0] if found else None
        sealed = None
        if to is not None:
            tree, sealed = build_sealed(store, src, to, cache_dir=cache_dir, progress=progress)
        else:  # (a sealed version's manifest is no base: the store holds only its box)
            base = current.manifest if current is not None and current.sealed is None else None
            tree = build_tree(store, src, base=base, cache_dir=cache_dir, progress=progress)
        when = now or utcnow()
        overlay = Overlay(store.store_id, host, next_version(current), tree.manifest, format_time(when), message,
                          expiry(when, expires), procedures, sealed)
        _replace_overlay(store, lock, overlay, key, found[1] if found else None)
    return OverlayResult(host, overlay.number, overlay.manifest, tree, sealed.key if sealed else None)


def sealing_key(store: Store, host: str, trust: Trust) -> PublicKey:
    """The key HOST's overlay is sealed to: its enrolled key, verified with the trusted keys."""
    public, problem = enrolled_key(store, host, trust)
    if problem is not None:
        raise Untrusted(f"hosts/{host}/key.json: {problem}; the overlay was not sealed to it")
    if public is None:
        raise HostNotEnrolled(f"host {host!r} is not enrolled: there is no key to seal its overlay to", host=host)
    return public


def remove_overlay(store: Store, host: str, key: SecretKey, *, message: str = "", now: datetime | None = None,
                   trust: Trust | None = None) -> OverlayResult:
    check_host(host)
    trust = trust or Trust({key.public.keyid: key.public})
    with StoreLock(store, "regen host rm") as lock:
        found = verified_overlay(store, check_host(host), trust)
        if found is None or found[0].manifest is None:
            raise OverlayNotFound(f"host {host!r} has no overlay in {store.url}")
        overlay = Overlay(store.store_id, host, next_version(found[0]), None, format_time(now or utcnow()),
                          message or "overlay removed")
        _replace_overlay(store, lock, overlay, key, found[1])
    return OverlayResult(host, overlay.number, None, None)


def _replace_overlay(store: Store, lock: StoreLock, overlay: Overlay, key: SecretKey, expected: bytes | None) -> None:
    """Write the overlay record only if our lease holds and the file still holds what we built on."""
    lock.refresh()
    if store.read_overlay(overlay.host) != expected:
        raise RefMoved(f"hosts/{overlay.host}/overlay.json changed while this operation ran; it was not overwritten",
                       hint=f"see 'regen host show {overlay.host}' and run the command again")
    store.write_overlay(overlay, [key])
    restamp(store, lock, key, Trust({key.public.keyid: key.public}))  # timestamped channels list the new version


@dataclass(frozen=True, slots=True)
class OverlayInfo:
    overlay: Overlay
    entries: tuple[Entry, ...]
    signed_by: tuple[str, ...]
    verified: bool

    def as_dict(self) -> dict[str, object]:
        o = self.overlay
        return {"host": o.host, "number": o.number, "manifest": o.manifest, "removed": o.manifest is None,
                "created": o.created, "message": o.message, "expires": o.expires, "signed_by": list(self.signed_by),
                "verified": self.verified, "procedures": [p.as_dict() for p in o.procedures],
                "sealed_to": o.sealed.key if o.sealed else None,
                "entries": [entry_dict(e) for e in self.entries]}


def entry_dict(e: Entry) -> dict[str, object]:
    """An entry as JSON; format-2 fields when it has them (attribute values in base64, as in manifests)."""
    out: dict[str, object] = {"path": e.path, "kind": e.kind, "mode": e.mode, "size": e.size, "oid": e.oid,
                              "xxh": e.xxh, "target": e.target}
    if e.has_meta:
        out.update(uid=e.uid, gid=e.gid, user=e.user, group=e.group, mtime=e.mtime,
                   xattrs=json.loads(encode_xattrs(e.xattrs)), link=e.link,
                   rdev=list(e.rdev) if e.rdev is not None else None, sparse=e.sparse)
    return out


def show_overlay(store: Store, host: str, trust: Trust) -> OverlayInfo:
    found = current_overlay(store, host)
    if found is None:
        raise OverlayNotFound(f"host {host!r} has no overlay in {store.url}")
    overlay, data = found
    verified = verifies(data, trust, where=f"overlay of host {host!r}") is None
    # a sealed overlay's entries are readable by its host only
    entries = tuple(store.read_manifest(overlay.manifest)) if overlay.manifest and not overlay.sealed else ()
    return OverlayInfo(overlay, entries, signers(data), verified)
