"""The import arrows of regen point one way (R1): no module imports, however indirectly, a module
that imports it back; regen.daemon and regen.manager never import each other; only regen.store
imports fsspec; and the wheel ships every package that holds code.

Imports are read with `ast`, so the check sees what a plain `import` would not run: imports
under `if TYPE_CHECKING:` and inside functions count as much as those at the top (a cycle that
only type-checking or a late import hides still ties the modules into one).
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# where each package's source lives, as the wheel maps it
PACKAGE_DIRS: dict[str, str] = PYPROJECT["tool"]["setuptools"]["package-dir"]


def _modules() -> dict[str, Path]:
    """Every module of every package the wheel ships, by dotted name."""
    out: dict[str, Path] = {}
    for package, folder in PACKAGE_DIRS.items():
        for path in sorted((ROOT / folder).glob("*.py")):
            out[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return out


MODULES = _modules()


@cache
def _imports_of(module: str) -> tuple[tuple[int, str], ...]:
    return tuple(_imported(module, MODULES[module]))


def _imported(module: str, path: Path) -> Iterator[tuple[int, str]]:
    """(line, dotted name) of everything `module` imports; `from p import x` names p.x when x is a module."""
    package = module if path.stem == "__init__" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield node.lineno, sub if sub in MODULES else base


def _graph() -> dict[str, set[str]]:
    return {m: {name for _, name in _imports_of(m) if name in MODULES and name != m} for m in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_check_sees_every_kind_of_import() -> None:
    """The parser finds type-checking and function-level imports, and cycles through them."""
    src = ast.parse("if TYPE_CHECKING:\n    from .b import B\ndef f():\n    from . import c\n")
    assert sum(isinstance(n, ast.ImportFrom) for n in ast.walk(src)) == 2
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    graph = _graph()
    assert len(graph) > 80  # every package was read
    cycles = _cycles(graph)
    details = [" <-> ".join(c) + ": " + "; ".join(f"{m} -> {sorted(graph[m] & set(c))}" for m in c) for c in cycles]
    assert details == []


@pytest.mark.parametrize(("package", "forbidden"), [
    ("regen.daemon", "regen.manager"),
    ("regen.manager", "regen.daemon"),
])
def test_daemon_and_manager_never_import_each_other(package: str, forbidden: str) -> None:
    offenders = [f"{MODULES[m].relative_to(ROOT)}:{line}: {name}"
                 for m in MODULES if m == package or m.startswith(package + ".")
                 for line, name in _imports_of(m)
                 if name == forbidden or name.startswith(forbidden + ".")]
    assert offenders == []


def test_only_the_store_imports_fsspec() -> None:
    offenders = [f"{MODULES[m].relative_to(ROOT)}:{line}: {name}"
                 for m in MODULES if not (m == "regen.store" or m.startswith("regen.store."))
                 for line, name in _imports_of(m)
                 if name.split(".")[0] in ("fsspec", "s3fs", "smbclient", "smbprotocol", "paramiko")]
    assert offenders == []


def test_the_wheel_lists_every_package() -> None:
    """Every folder of regen's source that holds Python files is a package the wheel ships
    (a new subpackage left out of pyproject.toml would be missing from the installed regen)."""
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    assert listed == set(PACKAGE_DIRS)
    shipped = {(ROOT / folder).resolve() for folder in PACKAGE_DIRS.values()}
    tops = {Path(folder).parts[0] for folder in PACKAGE_DIRS.values()}
    with_code = {p.parent.resolve() for top in tops for p in (ROOT / top).rglob("*.py")
                 if "__pycache__" not in p.parts}
    assert sorted(str(d.relative_to(ROOT)) for d in with_code - shipped) == []
    assert all((d / "__init__.py").is_file() for d in with_code)


# The daemon's layers, bottom up: a module may import only from its own layer or the ones below.
# `gate` (may this machine start) and `tree` (make a directory match a manifest) know nothing of a
# run; `run` combines them; the entry points (cli, oneshot, schedule) drive a run.
DAEMON_LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"regen.daemon.errors", "regen.daemon.config", "regen.daemon.tables", "regen.daemon.render",
               "regen.daemon.shipped"}),
    frozenset({"regen.daemon.gate", "regen.daemon.tree"}),
    frozenset({"regen.daemon.run"}),
    frozenset({"regen.daemon", "regen.daemon.cli", "regen.daemon.oneshot", "regen.daemon.schedule",
               "regen.daemon.__main__"}),
)


def _daemon_layer(module: str) -> tuple[int, str]:
    """(layer number, unit) of a daemon module: the unit is its subpackage or its own name."""
    unit = ".".join(module.split(".")[:3])
    for number, layer in enumerate(DAEMON_LAYERS):
        if unit in layer:
            return number, unit
    raise AssertionError(f"{module} is in no daemon layer: add it to DAEMON_LAYERS")


def test_the_daemon_layers_import_downwards() -> None:
    """gate and tree never import run (nor each other), run never imports the entry points."""
    daemon = [m for m in MODULES if m.startswith("regen.daemon.")]
    assert {_daemon_layer(m)[1] for m in daemon} >= {"regen.daemon.gate", "regen.daemon.tree", "regen.daemon.run"}
    offenders = []
    for m in daemon:
        level, unit = _daemon_layer(m)
        for line, name in _imports_of(m):
            if not name.startswith("regen.daemon.") or name == m:
                continue
            other_level, other_unit = _daemon_layer(name)
            if other_level > level or (level == other_level == 1 and other_unit != unit):
                offenders.append(f"{MODULES[m].relative_to(ROOT)}:{line}: {name}")
    assert offenders == []
