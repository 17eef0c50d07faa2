"""`regen host set` for an enrolled host: its overlay sealed to its own key (I/O; issue 12).

Why a scratch store: `build_tree` uploads every new object as it scans; a sealed overlay must
never put a plaintext byte in the real store. So the tree is built into a throwaway local store
in a temporary directory (the same scan, manifest and validation as any overlay), then each of
its objects, the manifest and the seal table are sealed to the host's key (regen.store.seal) and
only the boxes are uploaded. The overlay record lists every box, so gc and fsck keep and check
them without a host key.

Every `host set` seals afresh: a sealed box is randomised and the manager cannot open the last
version's boxes to reuse them. Overlays are a host's few own files, so this costs little.
"""

from __future__ import annotations

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
    object_id,
    seal,
)

from .build import TreeBuild, build_tree
from .errors import SourceInvalid

if TYPE_CHECKING:
    from .progress import Progress


def build_sealed(store: Store, src: str, to: PublicKey, *, progress: Progress | None = None
                 ) -> tuple[TreeBuild, SealedRef]:
    """Build the tree at `src` as an overlay sealed to `to`: (the build, the record's `sealed` member)."""
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
        nbytes = 0
        for oid in sorted(plain | {tree.manifest}):
            box = seal(scratch.get(oid), to)
            table[oid] = store.put(box, compression="none")
            nbytes += len(box)
    data = encode_seal_table(table)
    box = seal(data, to)
    ref = SealedRef(to.keyid, object_id(data), store.put(box, compression="none"), tuple(sorted(set(table.values()))))
    return replace(tree, objects_uploaded=len(table) + 1, bytes_uploaded=nbytes + len(box)), ref


__all__ = ["build_sealed"]
