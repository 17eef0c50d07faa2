"""regen.json, the one file that makes a folder a regen store: its id, format, hash and compression
(pure, except `read_config`, `create_config` and a client's `ConfigCache`, which take the store's
Backend as a `ConfigFiles`: backend.py sits above this module, through schemes/ and about.py, so it
is not imported here).

It is read before anything else in the store, so `from_json` tells "not a regen store"
(StoreNotFound) apart from "a store this regen cannot read" (UnsupportedFormat), and refuses a
store without its id: every signed record is bound to that id.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from . import layout
from .errors import NotFound, StoreExists, StoreNotFound, UnsupportedFormat

STORE_FORMAT = 1
COMPRESSIONS = ("zstd", "none")
# Features this regen knows (FORMAT.md §2). "packs": objects may live in pack files found through pack
# indexes (§3.1); a regen without it must refuse the store, not read it as loose objects and fail later.
FEATURES = ("packs",)
DEFAULT_PACK_SIZE = 16 << 20  # bytes a writer puts in one pack file before it starts the next (restic's default)
MAX_CONFIG_BYTES = 65536  # regen.json is a few hundred bytes: a reader refuses a bigger one


@dataclass(frozen=True, slots=True)
class StoreConfig:
    store_id: str
    compression: str = "zstd"
    format: int = STORE_FORMAT
    hash: str = "blake3"
    created: str = ""
    features: tuple[str, ...] = ()
    pack_size: int = DEFAULT_PACK_SIZE  # writers' setting (like compression); readers do not need it

    @property
    def packed(self) -> bool:
        """New objects go into pack files (and readers look them up in pack indexes)."""
        return "packs" in self.features

    def to_json(self) -> bytes:
        d: dict[str, object] = {"compression": self.compression, "created": self.created,
                                "features": sorted(self.features), "format": self.format, "hash": self.hash,
                                "store_id": self.store_id, "type": "regen-store"}
        if self.packed:
            d["pack_size"] = self.pack_size
        return json.dumps(d, sort_keys=True, indent=1).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes, where: str) -> StoreConfig:
        try:
            d = json.loads(data)
        except (ValueError, RecursionError):
            raise StoreNotFound(f"{where} is not a regen store (regen.json is not JSON)") from None
        if not isinstance(d, dict) or d.get("type") != "regen-store":
            raise StoreNotFound(f"{where} is not a regen store (regen.json has no regen-store type)")
        features = d.get("features", [])
        if d.get("format") != STORE_FORMAT or not isinstance(features, list) \
                or any(f not in FEATURES for f in features):
            raise UnsupportedFormat(f"store {where} has format {d.get('format')} features {features}; "
                                    f"this regen supports format {STORE_FORMAT} with features {list(FEATURES)}")
        if d.get("hash") != "blake3" or d.get("compression") not in COMPRESSIONS:
            raise UnsupportedFormat(f"store {where} uses hash {d.get('hash')!r} / compression {d.get('compression')!r}")
        store_id = d.get("store_id")
        if not isinstance(store_id, str) or not store_id:
            raise StoreNotFound(f"store {where} has a damaged regen.json (no store_id)",
                                hint="restore regen.json from a backup; its store_id is signed into every record")
        pack_size = d.get("pack_size", DEFAULT_PACK_SIZE)
        if not isinstance(pack_size, int) or isinstance(pack_size, bool) or not 1 << 16 <= pack_size <= 1 << 30:
            pack_size = DEFAULT_PACK_SIZE  # a writers' setting: a bad one falls back, readers never use it
        return cls(store_id, d["compression"], d["format"], d["hash"], str(d.get("created", "")),
                   tuple(sorted(set(features))), pack_size)


class ConfigFiles(Protocol):
    """What reading and creating regen.json needs of a Backend (backend.Backend satisfies it)."""

    @property
    def url(self) -> str: ...

    def read(self, path: str, max_bytes: int | None = None) -> bytes: ...

    def create_exclusive(self, path: str, data: bytes) -> None: ...


def read_config(backend: ConfigFiles) -> StoreConfig:
    """The store's regen.json; NotFound when it has none (the caller says what that means)."""
    return StoreConfig.from_json(backend.read(layout.CONFIG, max_bytes=MAX_CONFIG_BYTES), backend.url)


def create_config(backend: ConfigFiles, cfg: StoreConfig) -> None:
    """Write the regen.json of a new store; StoreExists if the URL holds one already, a store's or not
    (UnsupportedFormat for a newer store's)."""
    try:
        existing = backend.read(layout.CONFIG)
    except NotFound:
        existing = None
    if existing is not None:
        try:
            other = StoreConfig.from_json(existing, backend.url)
        except StoreNotFound:
            raise StoreExists(f"{backend.url} already holds a regen.json that is not a regen store's",
                              url=backend.url) from None
        raise StoreExists(f"a regen store already exists at {backend.url} (id {other.store_id})", url=backend.url)
    backend.create_exclusive(layout.CONFIG, cfg.to_json())


class ConfigCache:
    """One Store's copy of regen.json: given (a client caches it between runs) or read on first use.

    A cached copy may be older than the store: `regen migrate` may have packed it since. So a
    loose object found missing makes `became_packed` read regen.json once more (once per cache:
    a store that is really missing objects must not cost a read per miss).
    """

    def __init__(self, backend: ConfigFiles, config: StoreConfig | None) -> None:
        self._backend = backend
        self.known = config  # what this Store holds now, None until first read (never reads)
        self._checked = False
        self._lock = threading.Lock()

    def get(self) -> StoreConfig:
        """The configuration, read on first use; StoreNotFound when the URL holds no regen.json."""
        if self.known is None:
            try:
                self.known = read_config(self._backend)
            except NotFound:
                raise StoreNotFound(f"no regen store at {self._backend.url}", url=self._backend.url) from None
        return self.known

    def forget(self) -> None:
        """Read regen.json again on next use (`regen migrate` replaced it)."""
        self.known = None
        self._checked = False

    def became_packed(self, forget_packs: Callable[[], None]) -> bool:
        """Whether the store became packed since this copy was read or given (read at most once);
        `forget_packs` is called when a known loose store turned out packed."""
        with self._lock:
            if self.known is not None and self.known.packed:
                return True  # (another thread found it packed)
            if self._checked:
                return False
            self._checked = True
            try:
                fresh = read_config(self._backend)
            except NotFound:
                return False
            if self.known is None:
                self.known = fresh
                return fresh.packed
            if fresh.packed and fresh.store_id == self.known.store_id:
                forget_packs()
                self.known = fresh
                return True
            return False


__all__ = ["COMPRESSIONS", "DEFAULT_PACK_SIZE", "FEATURES", "MAX_CONFIG_BYTES", "STORE_FORMAT", "ConfigCache",
           "ConfigFiles", "StoreConfig", "create_config", "read_config"]
