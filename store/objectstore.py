"""What the modules below the `Store` facade need of the store they work on (pure: types only).

`Store` (store.py) composes the helpers that move objects (transfer.py), pack and unpack them
(packs.py, chunks.py), check packs (packcheck.py) and publish records (records.py). Those
helpers take the store as an `ObjectStore` -- this Protocol -- instead of importing store.py,
so the arrows point one way: store.py -> helpers -> objectstore.py (restic's
internal/restic.Repository interface, implemented by internal/repository). `Store` satisfies
it structurally; tests/test_layers.py proves no helper imports the facade back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .backend import Backend
    from .config import StoreConfig
    from .generation import Generation
    from .localfile import Wrap
    from .objects import FileDigest, ObjectId
    from .packindex import Location
    from .signing import PublicKey
    from .staging import StagedWrites


class Packer(Protocol):
    """Where new objects go while a packed store is being written (packs.PackWriter)."""

    def add(self, oid: ObjectId, tag: bytes, body: bytes) -> bool: ...

    def __contains__(self, oid: ObjectId) -> bool: ...


class ObjectStore(Protocol):
    """A store's objects and records, as the helpers below the facade use them."""

    @property
    def backend(self) -> Backend: ...

    @property
    def concurrency(self) -> int: ...

    @property
    def index_cache(self) -> str | None: ...

    @property
    def packer(self) -> Packer | None: ...

    @property
    def url(self) -> str: ...

    @property
    def config(self) -> StoreConfig: ...

    @property
    def store_id(self) -> str: ...

    def has(self, oid: ObjectId) -> bool: ...

    def locate(self, oid: ObjectId) -> Location | None: ...

    def forget_packs(self) -> None: ...

    def get_to(self, oid: ObjectId, out: Any, max_bytes: int | None = None) -> FileDigest: ...

    def decode_into(self, oid: ObjectId, src: Any, out: Any, *, where: str,
                    max_bytes: int | None = None) -> FileDigest: ...

    def fetch_to_file(self, oid: ObjectId, dest: str, *, fsync: bool = True, attempts: int = 2,
                      max_bytes: int | None = None, wrap: Wrap | None = None) -> FileDigest: ...

    def put_file(self, path: str, oid: ObjectId | None = None, *, check: bool = True) -> FileDigest | None: ...

    def put_bytes_staged(self, batch: StagedWrites, data: bytes, oid: ObjectId | None = None, *,
                         check: bool = True) -> bool: ...

    def staged(self) -> StagedWrites: ...

    def local_chunks(self) -> dict[ObjectId, tuple[str, int, int]]: ...

    def remember_chunks(self, oid: ObjectId, parts: list[tuple[ObjectId, int]]) -> None: ...

    def peek_generation(self, data: bytes, where: str = "generation record") -> Generation: ...

    def read_generation(self, channel: str, number: int, max_bytes: int = ...) -> bytes: ...

    def put_public_key(self, key: PublicKey) -> None: ...


__all__ = ["ObjectStore", "Packer"]
