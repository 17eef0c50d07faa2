"""Generation and host-overlay records, and the checks a client makes before trusting one (pure).

A record binds store id, channel (or host) and number, so it cannot be replayed under
another channel, host or store. `verify_generation` is the one door through which a client
accepts a record: signature by a trusted key, the binding, no rollback, not expired.

Numbers are bounded by MAX_NUMBER (2**53 - 1, exact in every JSON reader): a record beyond it is
malformed, so nobody can make a signer burn the number space (issue 12). If a channel's numbers
are burned anyway, a signed `epoch` starts a new numbering: clients order generations by
(epoch, number), so a higher epoch is accepted whatever number they saw before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .errors import RecordExpired, RecordInvalid, RecordMismatch, RollbackRefused, UnsupportedFormat
from .objects import ObjectId, is_object_id
from .policy import Policy
from .procedure import Procedure, parse_procedures
from .sealed import SEALED, SealedRef
from .signing import MAX_RECORD_BYTES, PublicKey, open_envelope

FORMAT = 1
PROCEDURES = "procedures"  # the feature of a generation whose policy carries procedures (FORMAT.md §7.1)
EPOCH_FEATURE = "epoch"  # a record of a new numbering epoch (FORMAT.md §6)
SUPPORTED_FEATURES: frozenset[str] = frozenset({PROCEDURES, EPOCH_FEATURE})
MAX_NUMBER = 2**53 - 1  # FORMAT.md §6: numbers, parents and epochs above this are malformed
GENERATION_TYPE = "regen-generation"
OVERLAY_TYPE = "regen-overlay"


def utcnow() -> datetime:
    return datetime.now(UTC)


def format_time(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: object, where: str) -> datetime:
    if not isinstance(value, str):
        raise RecordInvalid(f"{where}: time {value!r} is not a string", path=where)
    try:
        t = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        raise RecordInvalid(f"{where}: time {value!r} is not YYYY-MM-DDTHH:MM:SSZ", path=where) from None
    return t.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Generation:
    store_id: str
    channel: str
    number: int
    manifest: ObjectId
    created: str
    parent: int | None = None
    message: str = ""
    policy: Policy = field(default_factory=Policy)
    stats: Mapping[str, int] = field(default_factory=dict)
    expires: str | None = None
    epoch: int = 0

    @property
    def order(self) -> tuple[int, int]:
        """What rollback protection compares: a higher epoch wins whatever the numbers."""
        return (self.epoch, self.number)

    def to_record(self) -> dict[str, Any]:
        rec: dict[str, Any] = {
            "channel": self.channel,
            "created": self.created,
            "expires": self.expires,
            "features": [PROCEDURES] if self.policy.procedures else [],
            "format": FORMAT,
            "manifest": self.manifest,
            "message": self.message,
            "number": self.number,
            "parent": self.parent,
            "policy": self.policy.as_dict(),
            "stats": dict(self.stats),
            "store_id": self.store_id,
            "type": GENERATION_TYPE,
        }
        if self.epoch:  # epoch 0 records stay byte-identical to those of older regens
            rec["epoch"], rec["features"] = self.epoch, sorted([*rec["features"], EPOCH_FEATURE])
        return rec

    @classmethod
    def from_record(cls, rec: Mapping[str, Any], where: str = "generation record") -> Generation:
        _check_common(rec, GENERATION_TYPE, where)
        try:
            channel, number, manifest = rec["channel"], rec["number"], rec["manifest"]
            created, store_id = rec["created"], rec["store_id"]
        except KeyError as exc:
            raise RecordInvalid(f"{where} lacks field {exc.args[0]!r}", path=where) from None
        _check_int(number, "number", where)
        parent = rec.get("parent")
        if parent is not None:
            _check_int(parent, "parent", where)
        if not isinstance(channel, str) or not isinstance(store_id, str):
            raise RecordInvalid(f"{where} has a malformed channel or store id", path=where)
        if not is_object_id(manifest):
            raise RecordInvalid(f"{where} has an invalid manifest id {manifest!r}", path=where)
        parse_time(created, where)
        expires = rec.get("expires")
        if expires is not None:
            parse_time(expires, where)
        stats = rec.get("stats", {})
        if not isinstance(stats, dict) or not all(isinstance(v, int) for v in stats.values()):
            raise RecordInvalid(f"{where} has malformed stats", path=where)
        message = rec.get("message", "")
        if not isinstance(message, str):
            raise RecordInvalid(f"{where} has a malformed message", path=where)
        from .errors import PolicyInvalid

        try:
            policy = Policy.from_dict(rec.get("policy", {}), where=f"{where} policy")
        except PolicyInvalid as exc:
            raise RecordInvalid(exc.message, path=where) from None
        if policy.procedures and PROCEDURES not in rec.get("features", []):
            # an old client would have refused the record for the feature; a record without it is malformed
            raise RecordInvalid(f"{where} carries procedures but not the {PROCEDURES!r} feature", path=where)
        epoch = rec.get("epoch", 0)
        _check_int(epoch, "epoch", where)
        if epoch and EPOCH_FEATURE not in rec.get("features", []):
            raise RecordInvalid(f"{where} has an epoch but does not require the {EPOCH_FEATURE!r} feature", path=where)
        return cls(store_id, channel, number, manifest, created, parent, message, policy, stats, expires, epoch)


@dataclass(frozen=True, slots=True)
class Overlay:
    """A host's own files over its channel. `manifest` None is a tombstone: overlay removed."""

    store_id: str
    host: str
    number: int
    manifest: ObjectId | None
    created: str
    message: str = ""
    expires: str | None = None
    procedures: tuple[Procedure, ...] = ()  # run only where the channel's policy allows (Policy.with_overlay)
    sealed: SealedRef | None = None  # the files are sealed to the host's key (FORMAT.md §8.1)

    def to_record(self) -> dict[str, Any]:
        rec: dict[str, Any] = {
            "created": self.created,
            "expires": self.expires,
            "features": sorted([PROCEDURES] * bool(self.procedures) + [SEALED] * bool(self.sealed)),
            "format": FORMAT,
            "host": self.host,
            "manifest": self.manifest,
            "message": self.message,
            "number": self.number,
            "store_id": self.store_id,
            "type": OVERLAY_TYPE,
        }
        if self.procedures:  # absent otherwise: records without procedures stay those of older regens
            rec["procedure"] = [p.as_dict() for p in self.procedures]
        if self.sealed is not None:
            rec["sealed"] = self.sealed.to_record()
        return rec

    @classmethod
    def from_record(cls, rec: Mapping[str, Any], where: str = "overlay record") -> Overlay:
        _check_common(rec, OVERLAY_TYPE, where, frozenset({PROCEDURES, SEALED}))
        try:
            host, number, manifest, created, store_id = (
                rec["host"], rec["number"], rec["manifest"], rec["created"], rec["store_id"]
            )
        except KeyError as exc:
            raise RecordInvalid(f"{where} lacks field {exc.args[0]!r}", path=where) from None
        _check_int(number, "number", where)
        if manifest is not None and not is_object_id(manifest):
            raise RecordInvalid(f"{where} has an invalid manifest id {manifest!r}", path=where)
        if not isinstance(host, str) or not isinstance(store_id, str):
            raise RecordInvalid(f"{where} has a malformed host or store id", path=where)
        parse_time(created, where)
        expires = rec.get("expires")
        if expires is not None:
            parse_time(expires, where)
        message = rec.get("message", "")
        procedures = _overlay_procedures(rec, where)
        return cls(store_id, host, number, manifest, created, message if isinstance(message, str) else "", expires,
                   procedures, _overlay_sealed(rec, manifest, where))


def _overlay_sealed(rec: Mapping[str, Any], manifest: object, where: str) -> SealedRef | None:
    """An overlay's `sealed` member (FORMAT.md §8.1): with the feature and a manifest, and only then."""
    has_feature = SEALED in rec.get("features", [])
    if has_feature != ("sealed" in rec) or (has_feature and manifest is None):
        raise RecordInvalid(f"{where} must carry the {SEALED!r} feature exactly when it has a 'sealed' member "
                            "(and a manifest)", path=where)
    return SealedRef.from_record(rec["sealed"], where) if has_feature else None


def _overlay_procedures(rec: Mapping[str, Any], where: str) -> tuple[Procedure, ...]:
    """An overlay's `procedure` list (FORMAT.md §8): with the feature, and only with it."""
    from .errors import PolicyInvalid

    has_feature = PROCEDURES in rec.get("features", [])
    if "procedure" not in rec:
        if has_feature:
            raise RecordInvalid(f"{where} requires the {PROCEDURES!r} feature but carries no procedure", path=where)
        return ()
    if not has_feature:
        raise RecordInvalid(f"{where} carries procedures but not the {PROCEDURES!r} feature", path=where)
    try:
        procedures = parse_procedures(rec["procedure"], where)
    except PolicyInvalid as exc:
        raise RecordInvalid(exc.message, path=where) from None
    if not procedures:
        raise RecordInvalid(f"{where} has an empty procedure list", path=where)
    return procedures


def _check_int(value: object, name: str, where: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise RecordInvalid(f"{where} has an invalid {name} {value!r}", path=where)
    if value > MAX_NUMBER:
        raise RecordInvalid(f"{where} has {name} {value}, above the limit of {MAX_NUMBER}", path=where)


def _check_common(rec: Mapping[str, Any], rtype: str, where: str,
                  supported: frozenset[str] = SUPPORTED_FEATURES) -> None:
    if not isinstance(rec, Mapping) or rec.get("type") != rtype:
        raise RecordInvalid(f"{where} is not a {rtype} record", path=where)
    if rec.get("format") != FORMAT:
        raise UnsupportedFormat(f"{where} has format {rec.get('format')!r}; this regen reads format {FORMAT}")
    features = rec.get("features", [])
    if not isinstance(features, list):
        raise RecordInvalid(f"{where} has malformed features", path=where)
    unknown = sorted(set(map(str, features)) - supported)
    if unknown:
        raise UnsupportedFormat(f"{where} requires features {unknown} that this regen does not support")


def _check_fresh(expires: str | None, now: datetime, where: str) -> None:
    if expires is not None and parse_time(expires, where) <= now:
        raise RecordExpired(f"{where} expired at {expires}", path=where, expires=expires)


def verify_generation(
    data: bytes,
    trusted: Mapping[str, PublicKey],
    *,
    store_id: str | None,
    channel: str,
    min_number: int | None = None,
    min_epoch: int | None = None,
    now: datetime | None = None,
    where: str = "generation record",
    max_bytes: int = MAX_RECORD_BYTES,
) -> Generation:
    """Accept a generation record only if every check passes; each failure has its own error.

    `min_epoch`/`min_number`: the highest (epoch, number) this client accepted; the number only
    counts within the same epoch (a new epoch restarts the numbering).
    """
    gen = Generation.from_record(open_envelope(data, trusted, where=where, max_bytes=max_bytes), where)
    if store_id is not None and gen.store_id != store_id:
        raise RecordMismatch(f"{where} was signed for store {gen.store_id}, not {store_id}", path=where)
    if gen.channel != channel:
        raise RecordMismatch(f"{where} was signed for channel {gen.channel!r}, not {channel!r}", path=where)
    if min_epoch is not None and gen.epoch < min_epoch:
        raise RollbackRefused(
            f"{where} is of numbering epoch {gen.epoch}, older than epoch {min_epoch} already accepted",
            path=where, number=gen.number, seen=min_number)
    if min_number is not None and gen.epoch == (min_epoch or 0) and gen.number < min_number:
        raise RollbackRefused(
            f"{where} is generation {gen.number}, older than generation {min_number} already accepted",
            path=where,
            number=gen.number,
            seen=min_number,
        )
    _check_fresh(gen.expires, now or utcnow(), where)
    return gen


def verify_overlay(
    data: bytes,
    trusted: Mapping[str, PublicKey],
    *,
    store_id: str | None,
    host: str,
    min_number: int | None = None,
    now: datetime | None = None,
    where: str = "overlay record",
    max_bytes: int = MAX_RECORD_BYTES,
) -> Overlay:
    ov = Overlay.from_record(open_envelope(data, trusted, where=where, max_bytes=max_bytes), where)
    if store_id is not None and ov.store_id != store_id:
        raise RecordMismatch(f"{where} was signed for store {ov.store_id}, not {store_id}", path=where)
    if ov.host != host:
        raise RecordMismatch(f"{where} was signed for host {ov.host!r}, not {host!r}", path=where)
    if min_number is not None and ov.number < min_number:
        raise RollbackRefused(
            f"{where} is overlay version {ov.number}, older than version {min_number} already accepted",
            path=where,
            number=ov.number,
            seen=min_number,
        )
    _check_fresh(ov.expires, now or utcnow(), where)
    return ov
