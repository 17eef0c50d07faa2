"""regen.store: content-addressed objects and signed generations on any fsspec URL.

This is the only package that imports fsspec; regen.daemon and regen.manager use the
names re-exported here (pinned by tests/store/test_api.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import errors
from .errors import *  # noqa: F403 - the error tree is part of the API

# Names load on first use (PEP 562): a client with nothing to do must not pay for importing
# fsspec, zstandard or PyNaCl it never touches. `import regen.store` stays cheap; every name
# below is still a plain attribute of the package once asked for.
_LAZY: dict[str, tuple[str, str]] = {}
for _mod, _names in {
    "backend": "Backend open_backend",
    "schemes": "Stat parse_url",
    "counters": "Counters",
    "check": "CheckResult fsck",
    "findings": "Finding",
    "gc": "DEFAULT_GRACE DEFAULT_KEEP GcPlan execute_gc kept_numbers plan_gc",
    "generation": "MAX_NUMBER Generation Overlay format_time parse_time utcnow verify_generation verify_overlay",
    "lock": "LeaseInfo StoreLock break_lock",
    "entry": "Entry",
    "paths": "check_path merge_join sort_key",
    "changes": "Change DiffStats diff",
    "manifest": "ManifestStats ManifestWriter TreeOrderChecker check_entry "
                "iter_entries build:build_manifest parse:parse_manifest FORMAT_META NODE_KINDS",
    "manifest_meta": "encode_xattrs decode_xattrs",
    "objects": "EMPTY_ID FileDigest ObjectId VerifyingWriter hash_file is_object_id object_id xxh",
    "policy": "Policy load_policy_toml",
    "globs": "check_glob literal_glob matches",
    "procedure": "Procedure",
    "report": "Finding:HardwareFinding Report drift_of",
    "hostkey": "REPORT_AUTH HostKey report_auth sign_report verify_host_key",
    "sealed": "MAX_SEALED_FILE MAX_SEALED_OBJECTS SealedRef encode_table:encode_seal_table "
              "parse_table:parse_seal_table seal",
    "metrics": "Family:MetricFamily exposition:metrics_exposition",
    "history": "HISTORY_EVERY MAX_HISTORY HistoryEntry HistoryPrunePlan history_due history_marker "
               "parse_entry:parse_history_entry prune_history",
    "signing": "PublicKey SecretKey generate key_id load_public_key load_secret_key open_envelope peek_envelope "
               "sign_envelope trust_map write_keypair",
    "tree": "kind_of node_kind read_xattrs syncfs walk",
    "owners": "IdNames",
    "config": "COMPRESSIONS DEFAULT_PACK_SIZE StoreConfig",
    "delta": "ManifestDelta manifest_delta",
    "durations": "parse_duration",
    "sizes": "SIZE_EXPECTED parse_size",
    "localfile": "save_atomic",
    "racywindow": "RACY_WINDOW_NS racy",
    "statrule": "stat_change",
    "staging": "StagedWrites",
    "root": "Role Root signatures_missing update_root verify_root",
    "timestamp": "Timestamp check_timestamp overlay_versions_bytes parse_overlay_versions read_timestamp stamp "
                 "strip_timestamp",
    "store": "Store open_store",
    "migrate": "MigrateResult migrate_to_packs",
    "chunks": "CHUNK_ABOVE",
    "patches": "patched:patched_manifest put_patch:put_manifest_patch wants_patch:wants_manifest_patch",
    "transfer": "TransferResult",
    "text": "RedactingFilter json_safe printable redact",
}.items():
    for _n in _names.split():
        _src, _, _dst = _n.partition(":")
        _LAZY[_dst or _src] = (_mod, _src)


def __getattr__(name: str) -> Any:
    import importlib

    if name in ("layout", "about"):
        value: Any = importlib.import_module(f".{name}", __name__)
    elif name in _LAZY:
        mod, src = _LAZY[name]
        value = getattr(importlib.import_module(f".{mod}", __name__), src)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


if TYPE_CHECKING:  # the static view of the same names
    from . import about, layout
    from .backend import Backend, open_backend
    from .changes import Change, DiffStats, diff
    from .check import CheckResult, fsck
    from .chunks import CHUNK_ABOVE
    from .config import COMPRESSIONS, DEFAULT_PACK_SIZE, StoreConfig
    from .counters import Counters
    from .delta import ManifestDelta, manifest_delta
    from .durations import parse_duration
    from .entry import Entry
    from .findings import Finding
    from .gc import DEFAULT_GRACE, DEFAULT_KEEP, GcPlan, execute_gc, kept_numbers, plan_gc
    from .generation import (
        MAX_NUMBER,
        Generation,
        Overlay,
        format_time,
        parse_time,
        utcnow,
        verify_generation,
        verify_overlay,
    )
    from .globs import check_glob, literal_glob, matches
    from .history import (
        HISTORY_EVERY,
        MAX_HISTORY,
        HistoryEntry,
        HistoryPrunePlan,
        history_due,
        history_marker,
        prune_history,
    )
    from .history import parse_entry as parse_history_entry
    from .hostkey import REPORT_AUTH, HostKey, report_auth, sign_report, verify_host_key
    from .localfile import save_atomic
    from .lock import LeaseInfo, StoreLock, break_lock
    from .manifest import (
        FORMAT_META,
        NODE_KINDS,
        ManifestStats,
        ManifestWriter,
        TreeOrderChecker,
        check_entry,
        iter_entries,
    )
    from .manifest import build as build_manifest
    from .manifest import parse as parse_manifest
    from .manifest_meta import decode_xattrs, encode_xattrs
    from .metrics import Family as MetricFamily
    from .metrics import exposition as metrics_exposition
    from .migrate import MigrateResult, migrate_to_packs
    from .objects import EMPTY_ID, FileDigest, ObjectId, VerifyingWriter, hash_file, is_object_id, object_id, xxh
    from .owners import IdNames
    from .patches import patched as patched_manifest
    from .patches import put_patch as put_manifest_patch
    from .patches import wants_patch as wants_manifest_patch
    from .paths import check_path, merge_join, sort_key
    from .policy import Policy, load_policy_toml
    from .procedure import Procedure
    from .racywindow import RACY_WINDOW_NS, racy
    from .report import Finding as HardwareFinding
    from .report import Report, drift_of
    from .root import Role, Root, signatures_missing, update_root, verify_root
    from .schemes import Stat, parse_url
    from .sealed import MAX_SEALED_FILE, MAX_SEALED_OBJECTS, SealedRef, seal
    from .sealed import encode_table as encode_seal_table
    from .sealed import parse_table as parse_seal_table
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
    from .sizes import SIZE_EXPECTED, parse_size
    from .staging import StagedWrites
    from .statrule import stat_change
    from .store import Store, open_store
    from .text import RedactingFilter, json_safe, printable, redact
    from .timestamp import (
        Timestamp,
        check_timestamp,
        overlay_versions_bytes,
        parse_overlay_versions,
        read_timestamp,
        stamp,
        strip_timestamp,
    )
    from .transfer import TransferResult
    from .tree import kind_of, node_kind, read_xattrs, syncfs, walk

__version__ = "0.1.0"

__all__ = [
    "CHUNK_ABOVE", "COMPRESSIONS", "DEFAULT_GRACE", "DEFAULT_PACK_SIZE", "DEFAULT_KEEP", "EMPTY_ID", "MAX_NUMBER",
    "Backend", "Change", "CheckResult", "Counters", "DiffStats", "Entry", "FileDigest", "Finding", "GcPlan",
    "Generation", "HardwareFinding", "LeaseInfo", "ManifestStats", "ManifestWriter", "ObjectId", "Overlay",
    "Policy", "PublicKey", "Report", "Role", "Root", "Timestamp", "check_timestamp", "overlay_versions_bytes",
    "parse_overlay_versions", "read_timestamp",
    "stamp", "strip_timestamp", "SecretKey", "Stat", "Store", "StoreConfig", "StoreLock",
    "TransferResult",
    "TreeOrderChecker", "VerifyingWriter",
    "break_lock", "build_manifest", "check_entry", "check_glob", "check_path", "diff", "errors", "execute_gc",
    "format_time", "fsck", "generate", "hash_file", "is_object_id", "iter_entries", "kept_numbers", "key_id",
    "about", "layout", "literal_glob", "load_policy_toml", "load_public_key", "load_secret_key", "matches",
    "object_id", "open_backend",
    "open_envelope", "open_store", "parse_manifest", "parse_time", "parse_url", "peek_envelope", "plan_gc",
    "sign_envelope", "signatures_missing", "sort_key", "trust_map", "update_root", "utcnow",
    "verify_generation", "verify_overlay", "verify_root", "write_keypair",
    "xxh", "kind_of", "syncfs", "walk", "ManifestDelta", "manifest_delta", "MigrateResult", "migrate_to_packs",
    "Procedure", "parse_duration",
    "SIZE_EXPECTED", "parse_size", "StagedWrites", "save_atomic", "RACY_WINDOW_NS", "racy", "merge_join",
    "stat_change",
    "RedactingFilter", "json_safe", "printable", "redact",
    "HISTORY_EVERY", "MAX_HISTORY", "HistoryEntry", "HistoryPrunePlan", "drift_of", "history_due", "history_marker",
    "parse_history_entry", "prune_history",
    "FORMAT_META", "NODE_KINDS", "encode_xattrs", "decode_xattrs", "node_kind", "read_xattrs", "IdNames",
    "MetricFamily", "metrics_exposition", "patched_manifest", "put_manifest_patch", "wants_manifest_patch",
    "REPORT_AUTH", "HostKey", "report_auth", "sign_report", "verify_host_key",
    "MAX_SEALED_FILE", "MAX_SEALED_OBJECTS", "SealedRef", "encode_seal_table", "parse_seal_table", "seal",
    *errors.__all__,
]
