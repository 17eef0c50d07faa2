"""Manifest patches in the store: written by the manager next to a big manifest of a packed store,
read by a client that holds the base (I/O; the patch format is mpatch.py, FORMAT.md §3.3)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import blake3

from . import layout
from .errors import NotFound, StoreError
from .mpatch import PATCH_ABOVE, PatchInvalid, apply_patch, header, make_patch
from .objects import TAG_RAW, TAG_ZSTD, ObjectId, encode, is_object_id

if TYPE_CHECKING:
    from .store import Store

log = logging.getLogger("regen.store")

MAX_PATCH_BYTES = 64 << 20


def put_patch(store: Store, base: ObjectId, base_data: bytes, target: ObjectId, new: bytes) -> int:
    """Store the patch from manifest `base` to `target` (compressed); its stored size."""
    stored = encode(make_patch(base, base_data, target, new), store.config.compression)
    store.backend.write(layout.patch_path(target), stored)
    return len(stored)


def wants_patch(store: Store, base: ObjectId | None, target: ObjectId, size: int) -> bool:
    """A packed store keeps a patch for a big manifest that has a different base (up to MAX_PATCH_BYTES:
    making and applying one holds both manifests in memory)."""
    return base is not None and base != target and PATCH_ABOVE < size <= MAX_PATCH_BYTES and store.config.packed


def patched(store: Store, target: ObjectId, local: Callable[[ObjectId], bytes | None],
            max_bytes: int) -> bytes | None:
    """Manifest `target` rebuilt from its patch and a base the client holds (`local(oid)`: its bytes
    or None), verified against `target`; None when there is no patch, the client lacks its base, or
    the patch does not make the manifest (then the caller reads the manifest whole)."""
    try:
        stored = store.backend.read(layout.patch_path(target), max_bytes=MAX_PATCH_BYTES)
    except NotFound:
        return None
    except StoreError as exc:
        log.debug("manifest patch for %s unreadable (%s): reading the manifest whole", target, exc.one_line())
        return None
    try:
        patch = _decode(stored)
        base = header(patch)["base"]
        if not isinstance(base, str) or not is_object_id(base):
            raise PatchInvalid("its base is not a manifest id")
        data = local(base)
        if data is None:
            return None
        new = apply_patch(data, patch, max_bytes)
    except PatchInvalid as exc:
        log.warning("the manifest patch for %s is invalid (%s): reading the manifest whole", target, exc)
        return None
    if blake3.blake3(new).hexdigest() != target:
        log.warning("the manifest patch for %s does not make that manifest: reading the manifest whole", target)
        return None
    return new


def _decode(stored: bytes) -> bytes:
    tag, body = stored[:1], stored[1:]
    if tag == TAG_RAW:
        return body
    if tag == TAG_ZSTD:
        import zstandard

        try:
            return zstandard.ZstdDecompressor().decompress(body, max_output_size=MAX_PATCH_BYTES)
        except zstandard.ZstdError as exc:
            raise PatchInvalid(f"undecodable ({exc})") from None
    raise PatchInvalid("unknown encoding")


__all__ = ["MAX_PATCH_BYTES", "patched", "put_patch", "wants_patch"]
