"""The public API of regen.store, and the import rules that keep the layers apart.

daemon/ and manager/ are built against exactly these names; changing the list is an API
change that both must hear about. The import rules are checked by parsing every module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import regen.store

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"store": "regen.store", "daemon": "regen.daemon", "manager": "regen.manager"}

PUBLIC = sorted([
    "REPORT_AUTH", "HostKey", "report_auth", "sign_report", "verify_host_key",
    "MAX_SEALED_FILE", "MAX_SEALED_OBJECTS", "SealedRef", "encode_seal_table", "parse_seal_table", "seal",
    "Role", "Root", "signatures_missing", "update_root", "verify_root", "Timestamp", "check_timestamp",
    "overlay_versions_bytes", "parse_overlay_versions", "read_timestamp", "stamp", "strip_timestamp", "Backend",
    "BadSignature", "CHUNK_ABOVE", "COMPRESSIONS", "Change", "CheckResult", "Counters", "DAMAGED", "DEFAULT_GRACE",
    "DEFAULT_KEEP",
    "DEFAULT_PACK_SIZE", "DiffStats", "EMPTY_ID", "EXIT_DAMAGED", "EXIT_FAILED", "EXIT_INTERNAL",
    "EXIT_INTERRUPTED", "EXIT_MISCONFIGURED", "EXIT_OK", "EXIT_QUARANTINED", "EXIT_SIGPIPE", "EXIT_SIGTERM",
    "EXIT_UNREACHABLE", "EXIT_USAGE", "Entry", "FAILURES", "FAILURE_FIX", "FORMAT_META", "FileDigest", "Finding",
    "GcPlan", "Generation", "GenerationNotFound", "HISTORY_EVERY", "HardwareFinding", "HistoryEntry",
    "HistoryPrunePlan", "IdNames", "IntegrityError", "InvalidInput", "InvalidName", "InvalidURL", "KeyInvalid",
    "LeaseInfo", "LockHeld", "MAX_HISTORY", "MAX_NUMBER", "MISCONFIGURED", "ManifestDelta", "ManifestInvalid", "ManifestStats",
    "ManifestWriter", "MetricFamily", "MigrateResult", "NODE_KINDS", "NotFound", "ObjectCorrupt", "ObjectId",
    "ObjectMissing", "Overlay", "Policy", "PolicyInvalid", "Procedure", "PublicKey", "RACY_WINDOW_NS",
    "RecordExpired", "RecordInvalid", "RecordMismatch", "RecordTooLarge", "RedactingFilter", "RegenError", "Report",
    "RollbackRefused", "SIZE_EXPECTED", "SecretKey", "StagedWrites", "Stat", "StorageOptionInvalid", "Store",
    "StoreAccessDenied", "StoreConfig", "StoreError", "StoreExists", "StoreLock", "StoreNotFound", "StoreReadOnly",
    "StoreUnreachable", "TransferResult", "TreeOrderChecker", "TrustError", "UNREACHABLE", "UnknownKey",
    "UnsupportedFormat", "VerifyingWriter", "about", "break_lock", "build_manifest", "check_entry", "check_glob",
    "check_path", "decode_xattrs", "diff", "drift_of", "encode_xattrs", "errors", "execute_gc", "exit_status",
    "format_time", "fsck", "generate", "hash_file", "history_due", "history_marker", "is_object_id", "iter_entries",
    "json_safe", "kept_numbers", "key_id", "kind_of", "layout", "literal_glob", "load_policy_toml",
    "load_public_key", "load_secret_key", "manifest_delta", "matches", "merge_join", "metrics_exposition",
    "migrate_to_packs", "node_kind", "object_id", "open_backend", "open_envelope", "open_store", "parse_duration",
    "parse_history_entry", "parse_manifest", "patched_manifest", "parse_size", "parse_time", "parse_url",
    "peek_envelope", "plan_gc",
    "printable", "prune_history", "put_manifest_patch", "racy", "read_xattrs", "redact", "save_atomic",
    "sign_envelope", "sort_key", "stat_change",
    "syncfs", "trust_map", "utcnow", "verify_generation", "verify_overlay", "walk", "wants_manifest_patch",
    "write_keypair", "xxh",
])
# submodules of regen.store that are themselves part of the API (listed in __all__)
PUBLIC_MODULES = {"regen.store.about", "regen.store.errors", "regen.store.layout"}


def test_public_names_are_pinned() -> None:
    assert PUBLIC == sorted(PUBLIC)
    assert sorted(regen.store.__all__) == PUBLIC
    assert len(set(regen.store.__all__)) == len(regen.store.__all__)


def test_every_public_name_exists() -> None:
    assert [n for n in PUBLIC if not hasattr(regen.store, n)] == []


def test_every_error_carries_exit_code_and_one_line() -> None:
    errors = [getattr(regen.store, n) for n in PUBLIC if isinstance(getattr(regen.store, n), type)
              and issubclass(getattr(regen.store, n), regen.store.RegenError)]
    assert len(errors) > 20
    for cls in errors:
        e = cls("something\nwent wrong", path="x")
        assert e.exit_code in (1, 2, 3), cls
        assert "\n" not in e.one_line()


def _modules() -> Iterator[tuple[str, Path, ast.Module]]:
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield package, path, ast.parse(path.read_text(encoding="utf-8"), str(path))


def _imports(package: str, path: Path, tree: ast.Module) -> Iterator[str]:
    """Absolute names of every module `path` imports (relative imports resolved)."""
    rel = path.relative_to(ROOT).with_suffix("")
    here = [*package.split("."), *rel.parts[1:-1]]  # the package a relative import starts from
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            yield mod
            yield from (f"{mod}.{a.name}" for a in node.names)  # `from pkg import submodule`


def _is(name: str, module: str) -> bool:
    return name == module or name.startswith(module + ".")


def test_the_import_scan_sees_the_packages() -> None:
    found = {package for package, _, _ in _modules()}
    assert found >= {"regen.store", "regen.manager"}
    store_imports = {i for p, path, t in _modules() if p == "regen.store" for i in _imports(p, path, t)}
    assert "fsspec" in store_imports and "regen.store.errors" in store_imports  # relative imports resolved


def test_only_store_imports_fsspec() -> None:
    offenders = [str(path.relative_to(ROOT)) for package, path, tree in _modules()
                 if package != "regen.store" and any(_is(i, "fsspec") for i in _imports(package, path, tree))]
    assert offenders == []


def test_daemon_and_manager_never_import_each_other() -> None:
    offenders = []
    for package, path, tree in _modules():
        other = {"regen.daemon": "regen.manager", "regen.manager": "regen.daemon"}.get(package)
        if other and any(_is(i, other) for i in _imports(package, path, tree)):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_daemon_and_manager_use_only_the_public_store_api() -> None:
    offenders = []
    for package, path, tree in _modules():
        if package == "regen.store":
            continue
        for name in _imports(package, path, tree):
            if not _is(name, "regen.store") or name == "regen.store":
                continue
            sub = name[len("regen.store."):]
            if name in PUBLIC_MODULES or any(_is(name, m) for m in PUBLIC_MODULES) or sub in PUBLIC:
                continue
            offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert offenders == []


def test_relative_imports_resolve_like_python_does() -> None:
    tree = ast.parse("from ..daemon import agent\nfrom . import render\nimport fsspec.core\n")
    names = set(_imports("regen.manager", ROOT / "manager" / "x.py", tree))
    assert {"regen.daemon", "regen.daemon.agent", "regen.manager.render", "fsspec.core"} <= names
    nested = set(_imports("regen.manager", ROOT / "manager" / "commands" / "x.py", tree))
    assert "regen.manager.daemon" in nested and "regen.manager.commands.render" in nested
