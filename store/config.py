"""regen.json, the one file that makes a folder a regen store: its id, format, hash and compression (pure).

It is read before anything else in the store, so `from_json` tells "not a regen store"
(StoreNotFound) apart from "a store this regen cannot read" (UnsupportedFormat), and refuses a
store without its id: every signed record is bound to that id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .errors import StoreNotFound, UnsupportedFormat

STORE_FORMAT = 1
COMPRESSIONS = ("zstd", "none")


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


__all__ = ["COMPRESSIONS", "STORE_FORMAT", "StoreConfig"]
