"""regen.daemon uses only regen.store's public API, never fsspec or the manager (R1)."""

from __future__ import annotations

import ast
from pathlib import Path

import regen.store
from regen.store import errors

DAEMON = Path(__file__).resolve().parents[2] / "daemon"


def test_daemon_imports_only_the_public_store_api() -> None:
    public = set(regen.store.__all__)
    for path in sorted(DAEMON.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith(("fsspec", "regen.manager", "regen.store.")), \
                        f"{path.name}: import {alias.name}"
            elif isinstance(node, ast.ImportFrom) and node.module:
                mod = node.module
                assert not mod.startswith(("fsspec", "regen.manager")), f"{path.name}: from {mod}"
                if mod == "regen.store":
                    assert {a.name for a in node.names} <= public, f"{path.name}: {[a.name for a in node.names]}"
                elif mod == "regen.store.errors":
                    assert {a.name for a in node.names} <= set(errors.__all__), path.name
                else:
                    assert not mod.startswith("regen.store"), f"{path.name}: from {mod} (private)"
