"""The Store facade: objects, manifests, generations, overlays, reports, keys.

Publishing writes in a fixed order -- objects, manifest, signed record, ref -- so a
reader never sees a ref whose generation is incomplete. A client's read path never lists:
every path it reads comes from a ref, a record or a manifest.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from . import layout
from .backend import Backend, StagedWrites, open_backend
from .errors import (
    GenerationNotFound,
    InvalidInput,
    IntegrityError,
    NotFound,
    ObjectCorrupt,
    ObjectMissing,
    RecordInvalid,
    RecordTooLarge,
    StoreError,
    StoreExists,
    StoreNotFound,
    UnsupportedFormat,
)
from .generation import Generation, Overlay, format_time, utcnow
from .manifest import Entry, iter_entries
from .objects import (FileDigest, ObjectId, VerifyingWriter, decode, encode, encode_parts, encode_stream, hash_stream,
                      object_id, xxh)
from .pool import bounded_map, window_for
from .report import Report
from .signing import MAX_RECORD_BYTES, PublicKey, SecretKey, parse_public_key, peek_envelope, sign_envelope

log = logging.getLogger("regen.store")

STORE_FORMAT = 1
COMPRESSIONS = ("zstd", "none")
DEFAULT_CONCURRENCY = 8
Progress = Callable[[int, int], None]  # (items done, bytes done) increments


@dataclass(frozen=True, slots=True)
class StoreConfig:
    store_id: str
    compression: str = "zstd"
    format: int = STORE_FORMAT
    hash: str = "blake3"
    created: str = ""

    def to_json(self) -> bytes:
        return json.dumps(
            {"compression": self.compression, "created": self.created, "features": [], "format": self.format,
             "hash": self.hash, "store_id": self.store_id, "type": "regen-store"},
            sort_keys=True, indent=1,
        ).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes, where: str) -> StoreConfig:
        try:
            d = json.loads(data)
        except (ValueError, RecursionError):
            raise StoreNotFound(f"{where} is not a regen store (regen.json is not JSON)") from None
        if not isinstance(d, dict) or d.get("type") != "regen-store":
            raise StoreNotFound(f"{where} is not a regen store (regen.json has no regen-store type)")
        if d.get("format") != STORE_FORMAT or d.get("features"):
            raise UnsupportedFormat(f"store {where} has format {d.get('format')} features {d.get('features')}; "
                                    f"this regen supports format {STORE_FORMAT}")
        if d.get("hash") != "blake3" or d.get("compression") not in COMPRESSIONS:
            raise UnsupportedFormat(f"store {where} uses hash {d.get('hash')!r} / compression {d.get('compression')!r}")
        store_id = d.get("store_id")
        if not isinstance(store_id, str) or not store_id:
            raise StoreNotFound(f"store {where} has a damaged regen.json (no store_id)",
                                hint="restore regen.json from a backup; its store_id is signed into every record")
        return cls(store_id, d["compression"], d["format"], d["hash"], str(d.get("created", "")))


@dataclass(slots=True)
class TransferResult:
    """Outcome of a batch transfer: what moved and, per object, what failed (the rest went on)."""

    done: list[ObjectId] = field(default_factory=list)
    skipped: list[ObjectId] = field(default_factory=list)
    bytes: int = 0
    errors: dict[ObjectId, StoreError] = field(default_factory=dict)


class Store:
    def __init__(self, backend: Backend, config: StoreConfig | None = None, *, concurrency: int = DEFAULT_CONCURRENCY):
        self.backend = backend
        self._config = config
        self.concurrency = max(1, concurrency)

    # -- opening ----------------------------------------------------------------------------
    @classmethod
    def open(cls, url: str, storage_options: dict[str, Any] | None = None, *, config: StoreConfig | None = None,
             **kw: Any) -> Store:
        """Open a store lazily: nothing is read until needed (a client passes its cached config)."""
        concurrency = kw.pop("concurrency", DEFAULT_CONCURRENCY)
        return cls(open_backend(url, storage_options, **kw), config, concurrency=concurrency)

    @classmethod
    def init(cls, url: str, storage_options: dict[str, Any] | None = None, *, compression: str = "zstd") -> Store:
        if compression not in COMPRESSIONS:
            raise InvalidInput(f"unknown compression {compression!r}", hint=f"use one of {', '.join(COMPRESSIONS)}")
        store = cls.open(url, storage_options)
        cfg = StoreConfig(store_id=uuid.uuid4().hex, compression=compression, created=format_time(utcnow()))
        try:
            existing = store.backend.read(layout.CONFIG)
        except NotFound:
            existing = None
        if existing is not None:
            try:
                other = StoreConfig.from_json(existing, store.url)  # UnsupportedFormat for a newer store
            except StoreNotFound:
                raise StoreExists(f"{store.url} already holds a regen.json that is not a regen store's",
                                  url=store.url) from None
            raise StoreExists(f"a regen store already exists at {store.url} (id {other.store_id})", url=store.url)
        store.backend.create_exclusive(layout.CONFIG, cfg.to_json())
        store._config = cfg
        return store

    @property
    def url(self) -> str:
        return self.backend.url

    @property
    def counters(self) -> Any:
        return self.backend.counters

    @property
    def config(self) -> StoreConfig:
        if self._config is None:
            try:
                data = self.backend.read(layout.CONFIG, max_bytes=65536)
            except NotFound:
                raise StoreNotFound(f"no regen store at {self.url}", url=self.url) from None
            self._config = StoreConfig.from_json(data, self.url)
        return self._config

    @property
    def store_id(self) -> str:
        return self.config.store_id

    # -- objects ------------------------------------------------------------------------------
    def has(self, oid: ObjectId) -> bool:
        return not self.backend.absent([layout.object_path(oid)])[0]  # (file://: no exception per miss)

    def missing(self, oids: Iterable[ObjectId]) -> set[ObjectId]:
        ids = sorted(set(oids))
        if self.backend.scheme == "file":  # a local stat costs less than handing it to a thread
            gone = self.backend.absent([layout.object_path(oid) for oid in ids])
            return {oid for oid, no in zip(ids, gone) if no}
        with ThreadPoolExecutor(self.concurrency) as pool:
            present = list(bounded_map(pool, self.has, ids, window_for(self.concurrency)))
        return {oid for oid, ok in zip(ids, present) if not ok}

    def get(self, oid: ObjectId, max_bytes: int | None = None) -> bytes:
        path = layout.object_path(oid)
        try:
            stored = self.backend.read(path)
        except NotFound:
            raise ObjectMissing(f"object {oid} is missing from {self.url} ({path})", oid=oid, path=path) from None
        return decode(stored, oid, where=f"{self.url}/{path}", limit=max_bytes)

    def get_to(self, oid: ObjectId, out: Any, max_bytes: int | None = None) -> FileDigest:
        """Stream object `oid` into `out`, verifying; on ObjectCorrupt `out` holds garbage to discard."""
        path = layout.object_path(oid)
        try:
            with self.backend.open_read(path) as fp:
                return VerifyingWriter(oid, out, where=f"{self.url}/{path}", limit=max_bytes).copy_from(fp)  # type: ignore[arg-type]
        except NotFound:
            raise ObjectMissing(f"object {oid} is missing from {self.url} ({path})", oid=oid, path=path) from None

    def fetch_to_file(self, oid: ObjectId, dest: str, *, fsync: bool = True, attempts: int = 2,
                      max_bytes: int | None = None) -> FileDigest:
        """Download `oid` to local `dest` atomically; a corrupt copy is retried, then refused.

        `max_bytes` (the size a manifest gives the object) stops a stored object that inflates
        beyond it (a decompression bomb) before it can fill the disk; like any corrupt copy it is
        retried once, then refused as ObjectCorrupt.
        """
        parent = os.path.dirname(dest) or "."
        for attempt in range(attempts):
            fd, tmp = tempfile.mkstemp(prefix=".fetch-", dir=parent)
            try:
                with os.fdopen(fd, "wb") as out:
                    digest = self.get_to(oid, out, max_bytes=max_bytes)
                    if fsync:
                        out.flush()
                        os.fsync(out.fileno())
                os.replace(tmp, dest)
                return digest
            except (ObjectCorrupt, RecordTooLarge) as exc:
                os.unlink(tmp)
                if attempt + 1 < attempts:
                    log.warning("object %s arrived corrupt; retrying once", oid)
                    continue
                if isinstance(exc, RecordTooLarge):
                    # larger than its manifest entry says: damaged or hostile, not a limit to raise
                    raise ObjectCorrupt(
                        f"object {oid} at {self.url}/{layout.object_path(oid)} is larger than the {max_bytes} "
                        "bytes its manifest gives", oid=oid, path=layout.object_path(oid)) from exc
                raise
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise
        raise AssertionError("unreachable")

    def fetch_many(self, oids: Iterable[ObjectId], dest: Callable[[ObjectId], str], *, fsync: bool = True,
                   progress: Progress | None = None, sizes: Mapping[ObjectId, int] | None = None) -> TransferResult:
        """Fetch objects concurrently into local files; failures are collected, not raised.

        `sizes`: the expected size of each object (from its manifest entry); a stored object
        larger than that is refused as soon as it passes it. A local write failure (a full
        disk) is collected as that object's error too, never raised out of the pool.
        """
        result = TransferResult()

        def one(oid: ObjectId) -> tuple[ObjectId, FileDigest | StoreError]:
            try:
                return oid, self.fetch_to_file(oid, dest(oid), fsync=fsync,
                                               max_bytes=None if sizes is None else sizes.get(oid))
            except StoreError as exc:
                return oid, exc
            except OSError as exc:
                return oid, StoreError(f"object {oid} could not be written locally: {exc.strerror or exc}",
                                       hint="free disk space where it is written; the next run fetches it again")

        with ThreadPoolExecutor(self.concurrency) as pool:
            for oid, res in bounded_map(pool, one, dict.fromkeys(oids), window_for(self.concurrency)):
                if isinstance(res, StoreError):
                    result.errors[oid] = res
                else:
                    result.done.append(oid)
                    result.bytes += res.size
                    if progress:
                        progress(1, res.size)
        return result

    def put(self, data: bytes, *, check: bool = True) -> ObjectId:
        oid = object_id(data)
        if check and self.has(oid):
            return oid
        self.backend.write(layout.object_path(oid), encode(data, self.config.compression))
        return oid

    def put_file(self, path: str, oid: ObjectId | None = None, *, check: bool = True) -> FileDigest | None:
        """Upload a local file as an object unless present; None when it was already there.

        The encoded copy is staged in a local temp file, so the upload is a single atomic
        write and the id is computed from exactly the bytes uploaded.
        """
        if oid is not None and check and self.has(oid):
            return None
        with open(path, "rb") as src, tempfile.TemporaryFile() as staged:
            digest = encode_stream(src, staged, self.config.compression)
            if oid is not None and digest.oid != oid:
                raise IntegrityError(f"{path} changed while it was read (expected {oid}, read {digest.oid})",
                                     hint="retry when the file is no longer being written", path=path)
            if oid is None and check and self.has(digest.oid):
                return None
            self.backend.write_from(layout.object_path(digest.oid), staged)
        return digest

    def put_many(self, items: Iterable[tuple[ObjectId, str]], *, progress: Progress | None = None,
                 check: bool = True) -> TransferResult:
        """Upload (oid, local path) pairs the store lacks, concurrently; errors are collected.

        The objects are written as one staged batch (Backend.staged): on file:// one sync of
        the store's filesystem for the batch instead of one fsync per object; every object
        still appears complete or not at all. A file up to INLINE_BYTES is read once into
        memory, and hashed and compressed from that one buffer. `check=False`: the caller
        knows the store lacks these objects (it asked `missing` just before).
        """
        result = TransferResult()

        _ = self.config  # read once before threads start
        with self.backend.staged() as batch:
            def one(item: tuple[ObjectId, str]) -> tuple[ObjectId, FileDigest | None | StoreError]:
                oid, path = item
                try:
                    return oid, self._stage_file(batch, path, oid, check=check)
                except StoreError as exc:
                    return oid, exc

            with ThreadPoolExecutor(self.concurrency) as pool:
                for oid, res in bounded_map(pool, one, dict(items).items(), window_for(self.concurrency)):
                    if isinstance(res, StoreError):
                        result.errors[oid] = res
                    elif res is None:
                        result.skipped.append(oid)
                    else:
                        result.done.append(oid)
                        result.bytes += res.size
                        if progress:
                            progress(1, res.size)
        return result

    def put_bytes_staged(self, batch: StagedWrites, data: bytes, oid: ObjectId | None = None, *,
                         check: bool = True) -> bool:
        """Stage content already in memory as an object of `batch`; False if the store holds it.

        `oid`, when given, must be the content's id (the caller hashed these very bytes).
        """
        oid = oid or object_id(data)
        if check and self.has(oid):
            return False
        tag, body = encode_parts(data, self.config.compression)
        batch.write(layout.object_path(oid), (tag, body))
        return True

    def _stage_file(self, batch: StagedWrites, path: str, oid: ObjectId | None, *,
                    check: bool = True) -> FileDigest | None:
        if oid is not None and check and self.has(oid):
            return None
        with open(path, "rb") as src:
            if os.fstat(src.fileno()).st_size <= INLINE_BYTES:
                data = src.read(INLINE_BYTES + 1)
                if len(data) <= INLINE_BYTES:
                    digest = FileDigest(object_id(data), xxh(data), len(data))
                    self._check_read(path, oid, digest)
                    if oid is None and check and self.has(digest.oid):
                        return None
                    self.put_bytes_staged(batch, data, digest.oid, check=False)
                    return digest
                del data
        if not batch.batched:
            return self.put_file(path, oid, check=oid is None and check)
        return self._stage_stream(batch, path, oid, check=check)

    def _stage_stream(self, batch: StagedWrites, path: str, oid: ObjectId | None, *,
                      check: bool) -> FileDigest | None:
        """A big file streamed into its staged temp file (file:// only: a failed fill leaves nothing)."""
        digest: FileDigest | None = None

        def fill(fp: Any) -> None:
            nonlocal digest
            src.seek(0)  # (again when the write is retried)
            digest = encode_stream(_SourceReader(src), fp, self.config.compression)
            self._check_read(path, oid, digest)

        with open(path, "rb") as src:
            if oid is None:  # the id decides the path: hash first (a second read, for this rare case)
                found = hash_stream(_SourceReader(src).read)
                if check and self.has(found.oid):
                    return None
                oid = found.oid
                src.seek(0)
            try:
                batch.write(layout.object_path(oid), fill)
            except StoreError as exc:
                if isinstance(exc.__cause__, _SourceFailed):
                    raise exc.__cause__.error from None
                raise
        return digest

    @staticmethod
    def _check_read(path: str, oid: ObjectId | None, digest: FileDigest) -> None:
        if oid is not None and digest.oid != oid:
            raise IntegrityError(f"{path} changed while it was read (expected {oid}, read {digest.oid})",
                                 hint="retry when the file is no longer being written", path=path)

    def delete_object(self, oid: ObjectId) -> None:
        self.backend.delete(layout.object_path(oid))

    def list_objects(self) -> list[ObjectId]:
        out = []
        for p in self.backend.list(layout.OBJECTS):
            try:
                out.append(layout.parse_object_path(p))
            except StoreError:
                log.debug("ignoring non-object %s", p)
        return out

    # -- manifests ----------------------------------------------------------------------------
    @contextmanager
    def open_manifest(self, oid: ObjectId, *, max_bytes: int | None = None,
                      spool_dir: str | None = None) -> Iterator[Iterator[Entry]]:
        """Verify the whole manifest into a local spool file first, then stream its entries."""
        with tempfile.TemporaryFile(dir=spool_dir) as spool:
            self.get_to(oid, spool, max_bytes=max_bytes)
            spool.seek(0)
            yield iter_entries(spool)  # type: ignore[arg-type]

    def read_manifest(self, oid: ObjectId, max_bytes: int | None = None) -> list[Entry]:
        with self.open_manifest(oid, max_bytes=max_bytes) as entries:
            return list(entries)

    # -- generations --------------------------------------------------------------------------
    def _read_optional(self, path: str, max_bytes: int = MAX_RECORD_BYTES) -> bytes | None:
        try:
            return self.backend.read(path, max_bytes=max_bytes)
        except NotFound:
            return None

    def read_ref(self, channel: str, max_bytes: int = MAX_RECORD_BYTES) -> bytes | None:
        """The channel's current signed record (one small read), or None if never published."""
        return self._read_optional(layout.ref_path(channel), max_bytes)

    def read_generation(self, channel: str, number: int, max_bytes: int = MAX_RECORD_BYTES) -> bytes:
        data = self._read_optional(layout.generation_path(channel, number), max_bytes)
        if data is None:
            raise GenerationNotFound(f"generation {number} of channel {channel!r} does not exist in {self.url}",
                                     channel=channel, number=number)
        return data

    def generation_numbers(self, channel: str) -> list[int]:
        prefix = f"{layout.GENERATIONS}/{layout.check_name(channel, 'channel')}"
        nums = (layout.parse_generation_path(p) for p in self.backend.list(prefix))
        return sorted(n for n in nums if n is not None)

    def channels(self) -> list[str]:
        return self.backend.list_dirs(layout.GENERATIONS)

    def peek_generation(self, data: bytes, where: str = "generation record") -> Generation:
        """Parse a record WITHOUT checking its signature: for the manager's listings only."""
        return Generation.from_record(peek_envelope(data, where=where), where)

    def _check_signable(self, what: str, store_id: str, keys: list[SecretKey]) -> None:
        """Refuse records every client would refuse: unsigned, or bound to another store."""
        if not keys:
            raise InvalidInput(f"{what} needs at least one signing key", hint="pass the publisher's secret key")
        if store_id != self.store_id:
            raise InvalidInput(f"{what} is for store {store_id}, but {self.url} is store {self.store_id}",
                               hint="build the record with store.store_id")

    def write_generation(self, gen: Generation, keys: list[SecretKey]) -> bytes:
        """Write generations/<channel>/<n>.json exclusively; the manifest must already be stored.

        Returns the signed envelope, for `set_ref`. StoreExists if that number is taken.
        """
        self._check_signable(f"generation {gen.number} of channel {gen.channel!r}", gen.store_id, keys)
        _check_record(Generation.from_record, gen.to_record())
        if not self.has(gen.manifest):
            raise ObjectMissing(f"manifest {gen.manifest} is not in the store; refusing to publish", oid=gen.manifest)
        env = sign_envelope(gen.to_record(), keys)
        path = layout.generation_path(gen.channel, gen.number)
        for k in keys:  # first: a kill after the record must not leave it signed by a key fsck cannot find
            self.put_public_key(k.public)
        try:
            self.backend.create_exclusive(path, env)
        except StoreExists:
            raise StoreExists(f"generation {gen.number} of channel {gen.channel!r} already exists",
                              hint="another publisher was faster; retry") from None
        return env

    def set_ref(self, channel: str, envelope: bytes) -> None:
        """Point the channel at a record, which must already be stored byte for byte (publish order).

        One extra read per publish buys the guarantee that no ref ever names a record that is
        not in generations/: a reader who follows the ref finds everything it needs.
        """
        gen = self.peek_generation(envelope, where="record for the ref")
        if gen.channel != channel:
            raise InvalidInput(f"refs/{channel} cannot point at a record of channel {gen.channel!r}",
                               hint="publish the record on its own channel")
        if self.read_generation(channel, gen.number) != envelope:
            raise InvalidInput(f"refs/{channel} can only point at the stored record of generation {gen.number}",
                               hint="write the generation with write_generation first, then set the ref")
        self.backend.write(layout.ref_path(channel), envelope)

    # -- host overlays -------------------------------------------------------------------------
    def read_overlay(self, host: str, max_bytes: int = MAX_RECORD_BYTES) -> bytes | None:
        return self._read_optional(layout.overlay_path(host), max_bytes)

    def write_overlay(self, overlay: Overlay, keys: list[SecretKey]) -> bytes:
        """Sign and (re)place hosts/<host>/overlay.json; its manifest must already be stored.

        A record with manifest None is a tombstone: the host's overlay was removed (a client
        that saw a higher number refuses an older overlay instead of dropping back to none).
        """
        self._check_signable(f"overlay {overlay.number} of host {overlay.host!r}", overlay.store_id, keys)
        _check_record(Overlay.from_record, overlay.to_record())
        if overlay.manifest is not None and not self.has(overlay.manifest):
            raise ObjectMissing(f"overlay manifest {overlay.manifest} is not in the store", oid=overlay.manifest)
        env = sign_envelope(overlay.to_record(), keys)
        for k in keys:  # first, as for generations
            self.put_public_key(k.public)
        self.backend.write(layout.overlay_path(overlay.host), env)
        return env

    def overlay_hosts(self) -> list[str]:
        return self.backend.list_dirs(layout.HOSTS)

    # -- reports -------------------------------------------------------------------------------
    def put_report(self, report: Report) -> str:
        data = report.to_json()
        path = layout.report_path(report.host, utcnow())
        self.backend.write(path, data)
        self.backend.write(layout.report_latest_path(report.host), data)
        return path

    def read_latest_report(self, host: str) -> Report | None:
        data = self._read_optional(layout.report_latest_path(host), max_bytes=4 << 20)
        if data is None:
            return None
        return Report.from_json(data, where=f"report of host {host}")

    def report_hosts(self) -> list[str]:
        return self.backend.list_dirs(layout.REPORTS)

    def report_paths(self, host: str) -> list[str]:
        prefix = f"{layout.REPORTS}/{layout.check_name(host, 'host')}"
        return sorted(p for p in self.backend.list(prefix) if not p.endswith("/latest.json"))

    def read_report(self, path: str) -> Report:
        return Report.from_json(self.backend.read(path, max_bytes=4 << 20), where=path)

    # -- publisher keys (informational: clients trust only their configured keys) ---------------
    def put_public_key(self, key: PublicKey) -> None:
        path = layout.key_path(key.keyid)
        try:
            self.backend.create_exclusive(path, key.text().encode())
        except StoreExists:
            pass

    def public_keys(self) -> dict[str, PublicKey]:
        keys: dict[str, PublicKey] = {}
        for p in self.backend.list(layout.KEYS):
            try:
                k = parse_public_key(self.backend.read(p, max_bytes=4096).decode("utf-8", "replace"), p)
            except (StoreError, RecordInvalid):
                continue
            if p.endswith(f"/{k.keyid}.pub"):
                keys[k.keyid] = k
        return keys


def _check_record(parse: Callable[[dict[str, Any]], object], record: dict[str, Any]) -> None:
    """Refuse to sign a record that clients would refuse as malformed (bad time, id, number...)."""
    try:
        parse(record)
    except RecordInvalid as exc:
        raise InvalidInput(f"cannot publish a malformed record: {exc.message}",
                           hint="times are YYYY-MM-DDTHH:MM:SSZ (format_time), ids 64 hex digits, numbers >= 0") from None


INLINE_BYTES = 4 << 20  # put_many reads files up to this size whole: one read, hashed and compressed from memory


class _SourceFailed(Exception):
    """A local source file's read error, carried through the backend's error translation unchanged."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


class _SourceReader:
    def __init__(self, fp: Any) -> None:
        self._fp = fp

    def read(self, n: int = -1) -> bytes:
        try:
            return self._fp.read(n)  # type: ignore[no-any-return]
        except OSError as exc:
            raise _SourceFailed(exc) from exc


def open_store(url: str, storage_options: dict[str, Any] | None = None, **kw: Any) -> Store:
    return Store.open(url, storage_options, **kw)

