"""Where each thing lives in a store, relative to its root (pure).

Every path a client reads is derived from a name or an id here, never from a listing,
so a static HTTP server can serve a store.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from .errors import InvalidName, StoreError
from .objects import ObjectId, is_object_id

CONFIG = "regen.json"
LOCK = "locks/writer.json"
OBJECTS = "objects"
REFS = "refs"
GENERATIONS = "generations"
HOSTS = "hosts"
REPORTS = "reports"
KEYS = "keys"
PACKS = "packs"
INDEX = "index"
INDEX_LIST = "index/current.json"
PATCHES = "patches"
TEMP_PREFIX = ".tmp-"  # temp files of atomic writes: readers, gc and fsck ignore them

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_name(value: str, what: str = "name") -> str:
    if not isinstance(value, str) or not _NAME_RE.match(value) or value.endswith(".json"):
        raise InvalidName(f"invalid {what} {value!r}", name=value)
    return value


def object_path(oid: ObjectId) -> str:
    if not is_object_id(oid):
        raise StoreError(f"invalid object id {oid!r}")
    return f"{OBJECTS}/{oid[:2]}/{oid[2:]}"


def pack_path(pid: str) -> str:
    """A pack file, named by the BLAKE3 of its bytes (FORMAT.md §3.1)."""
    if not is_object_id(pid):
        raise StoreError(f"invalid pack id {pid!r}")
    return f"{PACKS}/{pid[:2]}/{pid[2:]}"


def patch_path(target: ObjectId) -> str:
    """The line patch that makes manifest `target` from its base (FORMAT.md §3.3)."""
    if not is_object_id(target):
        raise StoreError(f"invalid manifest id {target!r}")
    return f"{PATCHES}/{target[:2]}/{target[2:]}"


def index_path(iid: str) -> str:
    """A pack index, named by the BLAKE3 of its decoded bytes (FORMAT.md §3.1)."""
    if not is_object_id(iid):
        raise StoreError(f"invalid index id {iid!r}")
    return f"{INDEX}/{iid[:2]}/{iid[2:]}"


def parse_hashed_path(path: str, top: str) -> str | None:
    """The id of `top`/<2 hex>/<62 hex> (a pack or an index), or None for anything else."""
    parts = path.strip("/").split("/")
    if len(parts) == 3 and parts[0] == top and len(parts[1]) == 2 and is_object_id(parts[1] + parts[2]):
        return parts[1] + parts[2]
    return None


def parse_object_path(path: str) -> ObjectId:
    """Inverse of `object_path`; raises on anything that is not exactly an object path."""
    parts = path.strip("/").split("/")
    if len(parts) != 3 or parts[0] != OBJECTS or len(parts[1]) != 2:
        raise StoreError(f"not an object path: {path!r}")
    oid = parts[1] + parts[2]
    if not is_object_id(oid):
        raise StoreError(f"not an object path: {path!r}")
    return oid


def ref_path(channel: str) -> str:
    return f"{REFS}/{check_name(channel, 'channel')}"


def generation_path(channel: str, number: int) -> str:
    return f"{GENERATIONS}/{check_name(channel, 'channel')}/{number:010d}.json"


def parse_generation_path(name: str) -> int | None:
    base = name.rsplit("/", 1)[-1]
    digits = base[:-5]
    # ASCII digits only: "²".isdigit() is True but int("²") fails (a stray file crashed log/gc/fsck)
    if base.endswith(".json") and digits.isascii() and digits.isdigit() and len(digits) <= 18:
        return int(digits)
    return None


ROOT = "root"


def root_path(version: int) -> str:
    """root/<version>.json: version `version` of the store's root of trust (store/root.py)."""
    return f"{ROOT}/{version:010d}.json"


def overlay_path(host: str) -> str:
    return f"{HOSTS}/{check_name(host, 'host')}/overlay.json"


def host_key_path(host: str) -> str:
    """The admin-signed record of the host's public key (issue 12: host identities)."""
    return f"{HOSTS}/{check_name(host, 'host')}/key.json"


def report_path(host: str, when: datetime, state: str | None = None) -> str:
    """A history entry: the UTC time of writing, then the state the run left (see history.py)."""
    stamp = when.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{REPORTS}/{check_name(host, 'host')}/{stamp}{'-' + state if state else ''}.json"


def report_latest_path(host: str) -> str:
    return f"{REPORTS}/{check_name(host, 'host')}/latest.json"


def key_path(keyid: str) -> str:
    return f"{KEYS}/{check_name(keyid, 'key id')}.pub"
