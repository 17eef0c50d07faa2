"""`regen host set` for an enrolled host: its overlay sealed to its own key (I/O; issue 12).

Why a scratch store: `build_tree` uploads every new object as it scans; a sealed overlay must
never put a plaintext byte in the real store. So the tree is built into a throwaway local store
in a temporary directory (the same scan, manifest and validation as any overlay), then each of
its objects, the manifest and the seal table are sealed to the host's key (regen.store.seal) and
only the boxes are uploaded. The overlay record lists every box, so gc and fsck keep and check
them without a host key.

A sealed box is randomised and the manager cannot open the last version's boxes, so it remembers
the boxes it made (`Boxes`: per store and host key, plaintext id -> sealed id, in its cache dir)
and reuses one whose plaintext is unchanged and that the store still holds: setting an unchanged
overlay again uploads nothing and signs the same `sealed` member, so clients see no new tree and
gc keeps what they installed. Without the cache (another admin machine) everything is sealed anew.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from regen.store import (
    EMPTY_ID,
    MAX_SEALED_FILE,
    MAX_SEALED_OBJECTS,
    ObjectId,
    PublicKey,
    SealedRef,
    Store,
    encode_seal_table,
    is_object_id,
    object_id,
    save_atomic,
    seal,
)

from .build import TreeBuild, build_tree
from .errors import SourceInvalid

if TYPE_CHECKING:
    from .progress import Progress


class Boxes:
    """The boxes this manager sealed, per store and host key (JSON in its cache dir; losing it costs
    only re-sealing). Reused only after `store.has` confirms the box is still there."""

    def __init__(self, cache_dir: Path, store: Store, to: PublicKey) -> None:
        self.path = cache_dir / "sealed" / f"{store.store_id}-{to.keyid}.json"
        self.store = store
        self.made: dict[ObjectId, ObjectId] = {}
        try:
            raw = json.loads(self.path.read_bytes())
            if isinstance(raw, dict):
                self.made = {k: v for k, v in raw.items() if is_object_id(k) and is_object_id(v)}
        except (OSError, ValueError):
            pass

    def box(self, plain: bytes, to: PublicKey) -> tuple[ObjectId, int]:
        """The sealed id of `plain` for `to` (reused or sealed and uploaded now), and the bytes uploaded."""
        oid = object_id(plain)
        old = self.made.get(oid)
        if old is not None and self.store.has(old):
            return old, 0
        data = seal(plain, to)
        self.made[oid] = self.store.put(data, compression="none")
        return self.made[oid], len(data)

    def save(self, keep: set[ObjectId]) -> None:
        """Remember the boxes of this version only (older ones may be collected by gc)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            save_atomic(str(self.path), json.dumps({k: v for k, v in sorted(self.made.items()) if k in keep}).encode())
        except OSError:
            pass  # a read-only cache: the next set seals anew


def build_sealed(store: Store, src: str, to: PublicKey, *, cache_dir: Path, progress: Progress | None = None
                 ) -> tuple[TreeBuild, SealedRef]:
    """Build the tree at `src` as an overlay sealed to `to`: (the build, the record's `sealed` member)."""
    boxes = Boxes(cache_dir, store, to)
    with tempfile.TemporaryDirectory(prefix="regen-seal-") as tmp:
        scratch = Store.init(Path(tmp, "store").as_uri(), compression="none")
        tree = build_tree(scratch, src, base=None, cache_dir=Path(tmp, "cache"), progress=progress)
        entries = scratch.read_manifest(tree.manifest)
        big = next((e for e in entries if e.kind == "file" and e.size > MAX_SEALED_FILE), None)
        if big is not None:
            raise SourceInvalid(f"{os.path.join(src, big.path)} is {big.size:,} bytes: a sealed overlay file may "
                                f"be at most {MAX_SEALED_FILE:,}", path=big.path,
                                hint="overlays carry a host's configuration and secrets; ship big files in "
                                     "the channel")
        plain = {e.oid for e in entries if e.kind == "file" and e.oid is not None and e.oid != EMPTY_ID}
        if len(plain) + 1 > MAX_SEALED_OBJECTS:
            raise SourceInvalid(f"{src} holds {len(plain):,} distinct file contents: a sealed overlay holds at "
                                f"most {MAX_SEALED_OBJECTS - 1:,}", hint="ship shared files in the channel")
        table: dict[ObjectId, ObjectId] = {}
        uploaded = nbytes = 0
        for oid in sorted(plain | {tree.manifest}):
            table[oid], n = boxes.box(scratch.get(oid), to)
            uploaded, nbytes = uploaded + bool(n), nbytes + n
    data = encode_seal_table(table)
    box, n = boxes.box(data, to)
    boxes.save(set(table) | {object_id(data)})
    ref = SealedRef(to.keyid, object_id(data), box, tuple(sorted(set(table.values()))))
    return replace(tree, objects_uploaded=uploaded + bool(n), bytes_uploaded=nbytes + n), ref


__all__ = ["build_sealed"]
