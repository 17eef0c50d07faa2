"""regen.manager uses only regen.store's public API, never fsspec or the daemon (R1)."""

from __future__ import annotations

import ast
from pathlib import Path

import regen.store
from regen.store import errors

MANAGER = Path(__file__).parents[2] / "manager"


def test_manager_imports_only_the_public_store_api() -> None:
    for path in MANAGER.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith(("fsspec", "regen.daemon")), f"{path}: import {alias.name}"
                    assert alias.name in ("regen.store",) or not alias.name.startswith("regen."), path
            elif isinstance(node, ast.ImportFrom) and node.module:
                mod = node.module
                assert not mod.startswith(("fsspec", "regen.daemon")), f"{path}: from {mod}"
                if mod == "regen.store":
                    names = {a.name for a in node.names}
                    assert names <= set(regen.store.__all__), f"{path}: private {names - set(regen.store.__all__)}"
                elif mod == "regen.store.errors":
                    assert {a.name for a in node.names} <= set(errors.__all__), path
                else:
                    assert not mod.startswith("regen.store"), f"{path}: from {mod} (not public)"
