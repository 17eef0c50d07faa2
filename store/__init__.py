"""regen.store: content-addressed objects and signed generations on any fsspec URL.

This is the only package that imports fsspec; regen.daemon and regen.manager use the
names re-exported here (pinned by tests/store/test_api.py).
"""

from __future__ import annotations

from . import errors, layout
from .backend import Backend, Counters, Stat, open_backend, parse_url
from .check import CheckResult, Finding, fsck
from .errors import *  # noqa: F403 - the error tree is part of the API
from .gc import DEFAULT_GRACE, DEFAULT_KEEP, GcPlan, execute_gc, kept_numbers, plan_gc
from .generation import Generation, Overlay, format_time, parse_time, utcnow, verify_generation, verify_overlay
from .lock import LeaseInfo, StoreLock, break_lock
from .manifest import (
    Change,
    DiffStats,
    Entry,
    ManifestStats,
    ManifestWriter,
    TreeOrderChecker,
    check_entry,
    check_path,
    diff,
    iter_entries,
    sort_key,
)
from .manifest import build as build_manifest
from .manifest import parse as parse_manifest
from .objects import EMPTY_ID, FileDigest, ObjectId, VerifyingWriter, hash_file, is_object_id, object_id, xxh
from .policy import Policy, check_glob, load_policy_toml, matches
from .report import Finding as HardwareFinding
from .report import Report
from .signing import (
    PublicKey,
    SecretKey,
    generate,
    key_id,
    load_public_key,
    load_secret_key,
    open_envelope,
    peek_envelope,
    sign_envelope,
    trust_map,
    write_keypair,
)
from .tree import kind_of, walk
from .store import COMPRESSIONS, Store, StoreConfig, TransferResult, open_store

__version__ = "0.1.0"

__all__ = [
    "COMPRESSIONS", "DEFAULT_GRACE", "DEFAULT_KEEP", "EMPTY_ID",
    "Backend", "Change", "CheckResult", "Counters", "DiffStats", "Entry", "FileDigest", "Finding", "GcPlan",
    "Generation", "HardwareFinding", "LeaseInfo", "ManifestStats", "ManifestWriter", "ObjectId", "Overlay",
    "Policy", "PublicKey", "Report", "SecretKey", "Stat", "Store", "StoreConfig", "StoreLock", "TransferResult",
    "TreeOrderChecker", "VerifyingWriter",
    "break_lock", "build_manifest", "check_entry", "check_glob", "check_path", "diff", "errors", "execute_gc",
    "format_time", "fsck", "generate", "hash_file", "is_object_id", "iter_entries", "kept_numbers", "key_id",
    "layout", "load_policy_toml", "load_public_key", "load_secret_key", "matches", "object_id", "open_backend",
    "open_envelope", "open_store", "parse_manifest", "parse_time", "parse_url", "peek_envelope", "plan_gc",
    "sign_envelope", "sort_key", "trust_map", "utcnow", "verify_generation", "verify_overlay", "write_keypair",
    "xxh", "kind_of", "walk",
    *errors.__all__,
]
