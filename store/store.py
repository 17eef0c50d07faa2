"""The Store facade: objects, manifests, generations, overlays, reports, keys.

Publishing writes in a fixed order -- objects, manifest, signed record, ref -- so a
reader never sees a ref whose generation is incomplete. A client's read path never lists:
every path it reads comes from a ref, a record or a manifest.

The facade keeps single-object and read operations; the longer ones live below it, each taking
the store it works on as an `ObjectStore` (objectstore.py) and never importing this module:
config.py (regen.json), transfer.py (many objects at once: missing, fetch_many, put_many),
packs.py and chunks.py (packed stores), localchunks.py (chunks a client holds on its disk),
records.py (publishing signed generations, refs, overlays and publisher keys, in publish order)
and reportfiles.py (hosts' reports and their history, over the Backend alone).
"""

from __future__ import annotations

import io
import logging
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from . import chunks, layout, records, reportfiles, transfer
from . import packs as _packs
from .backend import Backend, open_backend
from .config import COMPRESSIONS, DEFAULT_PACK_SIZE, ConfigCache, StoreConfig, create_config
from .entry import Entry
from .errors import (
    GenerationNotFound,
    InvalidInput,
    NotFound,
    ObjectMissing,
    StoreError,
)
from .generation import Generation, Overlay, format_time, utcnow
from .history import HistoryEntry
from .hostkey import HostKey
from .localchunks import LocalChunks
from .localfile import Wrap
from .manifest import iter_entries
from .objects import (
    TAG_RAW,
    FileDigest,
    ObjectId,
    Prefixed,
    VerifyingWriter,
    check_read,
    decode,
    encode,
    encode_parts,
    encode_stream,
    object_id,
)
from .packindex import Location
from .report import Report
from .sealed import BOX_OVERHEAD, MAX_SEALED_FILE, unseal
from .signing import MAX_RECORD_BYTES, PublicKey, SecretKey, peek_envelope, sign_envelope
from .staging import StagedWrites
from .text import printable
from .transfer import Progress, Stopping, TransferResult

log = logging.getLogger("regen.store")

DEFAULT_CONCURRENCY = 8


class Store:
    def __init__(self, backend: Backend, config: StoreConfig | None = None, *, concurrency: int = DEFAULT_CONCURRENCY,
                 index_cache: str | None = None):
        self.backend = backend
        self._config = ConfigCache(backend, config)
        self.concurrency = max(1, concurrency)
        self.index_cache = index_cache  # where a client keeps pack indexes (immutable, named by their hash)
        self._packset: _packs.PackSet | None = None
        self._packs_lock = threading.Lock()
        self.packer: _packs.PackWriter | None = None
        # a client's resolver: the local file holding content `oid`, or None (its chunks are reused)
        self.local_object: Callable[[ObjectId], str | None] | None = None
        self._local = LocalChunks()  # seed_chunks, local_chunks, remember_chunks
        self._sealed: dict[ObjectId, tuple[ObjectId, SecretKey]] = {}  # add_sealed: plaintext id -> (box, key)

    # -- opening ----------------------------------------------------------------------------
    @classmethod
    def open(cls, url: str, storage_options: dict[str, Any] | None = None, *, config: StoreConfig | None = None,
             **kw: Any) -> Store:
        """Open a store lazily: nothing is read until needed (a client passes its cached config)."""
        concurrency = kw.pop("concurrency", DEFAULT_CONCURRENCY)
        index_cache = kw.pop("index_cache", None)
        return cls(open_backend(url, storage_options, **kw), config, concurrency=concurrency, index_cache=index_cache)

    @classmethod
    def init(cls, url: str, storage_options: dict[str, Any] | None = None, *, compression: str = "zstd",
             packed: bool = False, pack_size: int = DEFAULT_PACK_SIZE) -> Store:
        if compression not in COMPRESSIONS:
            raise InvalidInput(f"unknown compression {compression!r}", hint=f"use one of {', '.join(COMPRESSIONS)}")
        store = cls.open(url, storage_options)
        cfg = StoreConfig(store_id=uuid.uuid4().hex, compression=compression, created=format_time(utcnow()),
                          features=("packs",) if packed else (), pack_size=pack_size)
        create_config(store.backend, cfg)
        store._config.known = cfg
        return store

    @property
    def url(self) -> str:
        return self.backend.url

    @property
    def counters(self) -> Any:
        return self.backend.counters

    @property
    def config(self) -> StoreConfig:
        return self._config.get()

    def reload_config(self) -> None:
        """Read regen.json again on next use (`regen migrate` replaced it)."""
        self._config.forget()
        self.forget_packs()

    @property
    def store_id(self) -> str:
        return self.config.store_id

    # -- packs (FORMAT.md §3.1) ------------------------------------------------------------------
    @property
    def packs(self) -> _packs.PackSet:
        """The pack indexes in use (read once per Store; empty for a store without the packs feature)."""
        with self._packs_lock:
            if self._packset is None:
                self._packset = _packs.load_packs(self, self.index_cache) if self.config.packed else _packs.PackSet([])
            return self._packset

    def forget_packs(self) -> None:
        """Read the index list again on next use (it was replaced: a snapshot or a repack)."""
        with self._packs_lock:
            self._packset = None

    def locate(self, oid: ObjectId) -> Location | None:
        """Where `oid` lies in a pack, or None (a loose object, or none at all)."""
        return self.packs.find(oid) if self.config.packed else None

    @contextmanager
    def packing(self, target: int = DEFAULT_PACK_SIZE) -> Iterator[_packs.PackWriter | None]:
        """While inside, staged new objects go into packs (a packed store only); leaving publishes them
        (packs, index, index list). The caller holds the writer lock. None when the store is not packed."""
        if not self.config.packed:
            yield None
            return
        self.packer = _packs.PackWriter(self, target)
        try:
            yield self.packer
            self.packer.finish()
        finally:
            self.packer = None

    # -- objects ------------------------------------------------------------------------------
    def has(self, oid: ObjectId) -> bool:
        if self.locate(oid) is not None or (self.packer is not None and oid in self.packer):
            return True
        if self.packer is not None:  # packing: no stat per object (a loose twin costs space, not correctness)
            return False
        return not self.backend.absent([layout.object_path(oid)])[0]  # (file://: no exception per miss)

    def missing(self, oids: Iterable[ObjectId]) -> set[ObjectId]:
        return transfer.missing(self, oids)

    def add_sealed(self, table: Mapping[ObjectId, ObjectId], key: SecretKey) -> None:
        """From now on read each plaintext id of `table` from its sealed object, opened with `key`
        and verified against the plaintext id (a client's overlay sealed to its host key, sealed.py).
        Every read path (get, get_to, fetch_to_file, fetch_many, open_manifest) goes through get_to."""
        self._sealed.update((plain, (box, key)) for plain, box in table.items())

    def _get_sealed(self, oid: ObjectId, out: Any, max_bytes: int | None) -> FileDigest:
        box_id, key = self._sealed[oid]
        limit = (MAX_SEALED_FILE if max_bytes is None else max_bytes) + BOX_OVERHEAD
        plain = unseal(self.get(box_id, max_bytes=limit), key, oid=oid, sealed_id=box_id,
                       where=f"{self.url}/{layout.object_path(box_id)}")
        return VerifyingWriter(oid, out, where=f"sealed object {box_id}", limit=max_bytes).copy_from(
            io.BytesIO(TAG_RAW + plain))

    def get(self, oid: ObjectId, max_bytes: int | None = None) -> bytes:
        if oid in self._sealed or self.locate(oid) is not None:
            out = io.BytesIO()
            self.get_to(oid, out, max_bytes=max_bytes)
            return out.getvalue()
        path = layout.object_path(oid)
        try:
            stored = self.backend.read(path)
        except NotFound:
            raise ObjectMissing(f"object {oid} is missing from {self.url} ({path})", oid=oid, path=path) from None
        return decode(stored, oid, where=f"{self.url}/{path}", limit=max_bytes)

    def get_to(self, oid: ObjectId, out: Any, max_bytes: int | None = None) -> FileDigest:
        """Stream object `oid` into `out`, verifying; on ObjectCorrupt `out` holds garbage to discard."""
        if oid in self._sealed:
            return self._get_sealed(oid, out, max_bytes)
        # a Store opened without its configuration reads a loose object without reading regen.json first
        # (a miss reads it: the store may be packed)
        packed = self._config.known is not None and self._config.known.packed
        loc = self.locate(oid) if packed else None
        if loc is not None:
            where = f"{self.url}/{layout.pack_path(loc.pack)}@{loc.offset}"
            return self.decode_into(oid, io.BytesIO(_packs.read_blob(self, loc)), out, where=where, max_bytes=max_bytes)
        path = layout.object_path(oid)
        try:
            with self.backend.open_read(path) as fp:
                return self.decode_into(oid, fp, out, where=f"{self.url}/{path}", max_bytes=max_bytes)
        except NotFound:
            if not packed and self._config.became_packed(self.forget_packs):
                return self.get_to(oid, out, max_bytes)
            raise ObjectMissing(f"object {oid} is missing from {self.url} ({path})", oid=oid, path=path) from None

    def decode_into(self, oid: ObjectId, src: Any, out: Any, *, where: str, max_bytes: int | None = None) -> FileDigest:
        """Decode stored bytes read from `src` into `out`, verified against `oid`; a chunk list (tag c,
        packed stores) is rebuilt from its chunks, each verified, then the whole (chunks.py)."""
        tag = src.read(1)
        if tag == chunks.TAG_CHUNKS and self.config.packed:
            body = src.read(chunks.MAX_LIST_BYTES + 1)
            return chunks.assemble(self, oid, body, out, where=where, max_bytes=max_bytes)
        return VerifyingWriter(oid, out, where=where, limit=max_bytes).copy_from(Prefixed(tag, src))  # type: ignore[arg-type]

    def local_chunks(self) -> dict[ObjectId, tuple[str, int, int]]:
        """Chunks of content this client holds, for rebuilding big files (localchunks.py)."""
        return self._local.known(self.index_cache, self.local_object)

    def seed_chunks(self, paths: Iterable[str]) -> None:
        """Local files (installed previous versions of big files being updated) rebuilds may reuse."""
        self._local.seed(paths)

    def remember_chunks(self, oid: ObjectId, parts: list[tuple[ObjectId, int]]) -> None:
        """Keep the chunk list of content just rebuilt, so the next version reuses its chunks."""
        self._local.remember(self.index_cache, self.local_object, oid, parts)

    def fetch_to_file(self, oid: ObjectId, dest: str, *, fsync: bool = True, attempts: int = 2,
                      max_bytes: int | None = None, wrap: Wrap | None = None) -> FileDigest:
        """Download `oid` to local `dest` atomically (written through `wrap`, localfile.Wrap); a corrupt
        copy is retried, then refused (see transfer)."""
        return transfer.fetch_to_file(self, oid, dest, fsync=fsync, attempts=attempts, max_bytes=max_bytes,
                                      wrap=wrap)

    def fetch_many(self, oids: Iterable[ObjectId], dest: Callable[[ObjectId], str], *, fsync: bool = True,
                   progress: Progress | None = None, sizes: Mapping[ObjectId, int] | None = None,
                   stop: Stopping | None = None, wrap: Wrap | None = None) -> TransferResult:
        """Fetch objects concurrently into local files (through `wrap`, localfile.Wrap); failures are
        collected, not raised (see transfer); once `stop` is set no further object is started."""
        return transfer.fetch_many(self, oids, dest, fsync=fsync, progress=progress, sizes=sizes, stop=stop,
                                   wrap=wrap)

    def put(self, data: bytes, *, check: bool = True, compression: str | None = None) -> ObjectId:
        """Store `data` as a loose object unless present; `compression` overrides the store's
        (sealed boxes are stored raw: ciphertext does not compress)."""
        oid = object_id(data)
        if check and self.has(oid):
            return oid
        self.backend.write(layout.object_path(oid), encode(data, compression or self.config.compression))
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
            check_read(path, oid, digest)
            if oid is None and check and self.has(digest.oid):
                return None
            self.backend.write_from(layout.object_path(digest.oid), staged)
        return digest

    def put_many(self, items: Iterable[tuple[ObjectId, str]], *, progress: Progress | None = None,
                 check: bool = True) -> TransferResult:
        """Upload (oid, local path) pairs the store lacks as one staged batch; errors are collected (see transfer)."""
        return transfer.put_many(self, items, progress=progress, check=check)

    def staged(self) -> StagedWrites:
        """A batch of atomic writes made durable together (see StagedWrites); use as a context manager."""
        return StagedWrites(self.backend)

    def put_bytes_staged(self, batch: StagedWrites, data: bytes, oid: ObjectId | None = None, *,
                         check: bool = True) -> bool:
        """Stage content already in memory as an object of `batch`; False if the store holds it.

        `oid`, when given, must be the content's id (the caller hashed these very bytes).
        """
        oid = oid or object_id(data)
        if check and self.has(oid):
            return False
        tag, body = encode_parts(data, self.config.compression)
        if self.packer is not None:
            return self.packer.add(oid, tag, body)
        batch.write(layout.object_path(oid), (tag, body))
        return True

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
    def open_manifest(self, oid: ObjectId, *, max_bytes: int | None = None, spool_dir: str | None = None,
                      trusted: bool = False) -> Iterator[Iterator[Entry]]:
        """Verify the whole manifest into a local spool file first, then stream its entries
        (`trusted`: as iter_entries, not validated again)."""
        with tempfile.TemporaryFile(dir=spool_dir) as spool:
            self.get_to(oid, spool, max_bytes=max_bytes)
            spool.seek(0)
            yield iter_entries(spool, trusted=trusted)

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
        nums = []
        for p in self.backend.list(prefix):
            n = layout.parse_generation_path(p)
            if n is None:
                log.warning("skipping %s in the store: not a generation record name (<number>.json)", printable(p))
            else:
                nums.append(n)
        return sorted(nums)

    def channels(self) -> list[str]:
        return self.backend.list_dirs(layout.GENERATIONS)

    def peek_generation(self, data: bytes, where: str = "generation record") -> Generation:
        """Parse a record WITHOUT checking its signature: for the manager's listings only."""
        return Generation.from_record(peek_envelope(data, where=where), where)

    def write_generation(self, gen: Generation, keys: list[SecretKey]) -> bytes:
        """Write generations/<channel>/<n>.json exclusively, signed; the manifest must already be stored.

        Returns the signed envelope, for `set_ref`. StoreExists if that number is taken (see records).
        """
        return records.write_generation(self, gen, keys)

    def set_ref(self, channel: str, envelope: bytes) -> None:
        """Point the channel at a record, which must already be stored byte for byte (see records)."""
        records.set_ref(self, channel, envelope)

    # -- host overlays -------------------------------------------------------------------------
    def read_root(self, version: int) -> bytes | None:
        """root/<version>.json, or None if that version does not exist (yet)."""
        return self._read_optional(layout.root_path(version))

    def read_overlay(self, host: str, max_bytes: int = MAX_RECORD_BYTES) -> bytes | None:
        return self._read_optional(layout.overlay_path(host), max_bytes)

    def write_overlay(self, overlay: Overlay, keys: list[SecretKey]) -> bytes:
        """Sign and (re)place hosts/<host>/overlay.json; manifest None is a tombstone (see records)."""
        return records.write_overlay(self, overlay, keys)

    def overlay_hosts(self) -> list[str]:
        return self.backend.list_dirs(layout.HOSTS)

    # -- host identities -----------------------------------------------------------------------
    def read_host_key(self, host: str) -> bytes | None:
        """hosts/<host>/key.json (the enrolled public key, signed by the admin), or None if not enrolled."""
        return self._read_optional(layout.host_key_path(host))

    def write_host_key(self, host_key: HostKey, keys: list[SecretKey]) -> bytes:
        """Sign and (re)place hosts/<host>/key.json: enrolling, or re-enrolling a host with a new key."""
        env = sign_envelope(host_key.to_record(), keys)
        self.backend.write(layout.host_key_path(host_key.host), env)
        return env

    # -- reports -------------------------------------------------------------------------------
    def put_report(self, report: Report, *, history: bool = True, now: datetime | None = None) -> str | None:
        """latest.json always; a history entry only with `history`; its path or None (reportfiles.py)."""
        return reportfiles.put_report(self.backend, report, history=history, now=now)

    def read_latest_report(self, host: str) -> Report | None:
        return reportfiles.read_latest(self.backend, host)

    def latest_report_mtime(self, host: str) -> datetime | None:
        """When the store last wrote the host's latest.json (its clock, not the client's); None if unknown."""
        return reportfiles.latest_mtime(self.backend, host)

    def report_hosts(self) -> list[str]:
        return self.backend.list_dirs(layout.REPORTS)

    def report_paths(self, host: str) -> list[str]:
        return [e.path for e in self.report_history(host)]

    def report_history(self, host: str) -> list[HistoryEntry]:
        """A host's history entries in time order, from one listing (nothing is read)."""
        return reportfiles.history(self.backend, host)

    def all_report_history(self) -> dict[str, list[HistoryEntry]]:
        """Every host's history entries, from one listing of reports/ (for gc)."""
        return reportfiles.all_history(self.backend)

    def read_report(self, path: str) -> Report:
        return reportfiles.read_report(self.backend, path)

    # -- publisher keys (informational: clients trust only their configured keys) ---------------
    def put_public_key(self, key: PublicKey) -> None:
        records.put_public_key(self, key)

    def public_keys(self) -> dict[str, PublicKey]:
        return records.public_keys(self)


def open_store(url: str, storage_options: dict[str, Any] | None = None, **kw: Any) -> Store:
    return Store.open(url, storage_options, **kw)

