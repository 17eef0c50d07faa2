"""One small class per storage scheme (issue 11): every scheme answers every question of
`Scheme` itself, each module of store/schemes/ is registered, and no other module of regen.store
decides anything by comparing a scheme's name (adding a backend is adding one module).

What each scheme then does is proven by the contract suite (backend_contract.py).
"""

from __future__ import annotations

import ast
import inspect
import typing
from pathlib import Path

import pytest

from regen.store import InvalidURL, parse_url
from regen.store.schemes import CLASSES, SCHEMES, Scheme, resolve, scheme_for

STORE = Path(__file__).resolve().parents[2] / "store"
# names that hold a scheme's name; comparing one of them, or a scheme name, decides per scheme
_HOLDERS = ("scheme", "protocol")
_NAMES = frozenset(SCHEMES) - {"file"}  # ("file" is also an entry kind: `kind == "file"` is no scheme test)


def _scheme_tests(source: str) -> list[int]:
    """Lines of `source` that compare a scheme name, or something named scheme/protocol (==, !=, in)."""
    def is_scheme(node: ast.expr) -> bool:
        if isinstance(node, ast.Name):
            return node.id in _HOLDERS
        if isinstance(node, ast.Attribute):
            return node.attr in _HOLDERS
        if isinstance(node, ast.Constant):
            return node.value in _NAMES
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return any(is_scheme(e) for e in node.elts)
        return False

    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare) and any(is_scheme(n) for n in (node.left, *node.comparators)):
            lines.append(node.lineno)
        elif isinstance(node, ast.Dict) and any(k is not None and is_scheme(k) for k in node.keys):
            lines.append(node.lineno)  # {"s3": ...}.get(scheme): a table keyed by scheme
        elif isinstance(node, ast.Match) and is_scheme(node.subject):
            lines.append(node.lineno)
    return sorted(lines)


def test_the_check_sees_every_kind_of_scheme_test() -> None:
    src = ('if scheme == "s3": pass\n'
           'if self.scheme in ("http", "https"): pass\n'
           'if backend.protocol != x: pass\n'
           'hint = {"smb": 1}.get(s)\n'
           'if kind == "file": pass\n'
           'if "sftp" not in names: pass\n'
           'match self.scheme:\n    case _: pass\n')
    assert _scheme_tests(src) == [1, 2, 3, 4, 6, 7]


def test_no_scheme_is_compared_outside_store_schemes() -> None:
    """Every per-scheme decision is a question to the backend's Scheme (schemes/), asked once."""
    found = [f"store/{path.name}:{line}" for path in sorted(STORE.glob("*.py"))
             for line in _scheme_tests(path.read_text())]
    assert found == []


def test_every_module_of_store_schemes_is_registered() -> None:
    modules = {p.stem for p in (STORE / "schemes").glob("*.py")} - {"__init__", "base"}
    assert modules == {"file", "memory", "s3", "smb", "sftp", "http"}
    assert {cls.__module__.rsplit(".", 1)[-1] for cls in CLASSES} == modules
    names = [name for cls in CLASSES for name in cls.names]
    assert len(names) == len(set(names)) == len(SCHEMES)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_scheme_answers_every_question_itself(cls: type[Scheme]) -> None:
    """Each class sets every attribute `Scheme` declares and defines every abstract method in its
    own body: what a scheme does is read in its module, never inherited by accident."""
    assert not inspect.isabstract(cls)
    for name, hint in typing.get_type_hints(Scheme).items():
        (kind,) = typing.get_args(hint)  # ClassVar[...]
        assert name in vars(cls), f"{cls.__name__} does not set {name}"
        assert isinstance(vars(cls)[name], typing.get_origin(kind) or kind), f"{cls.__name__}.{name}"
    assert Scheme.__abstractmethods__ >= {"open_stream", "read_full", "read_range", "stat", "write_atomic",
                                          "create_new", "ls", "files_below", "check_options", "fs_options"}
    missing = sorted(m for m in Scheme.__abstractmethods__ if m not in vars(cls))
    assert missing == []
    for protocol in cls.names:
        scheme = scheme_for(protocol)
        assert type(scheme) is cls and scheme.protocol == protocol
        assert scheme.capabilities.conditional_create is not cls.read_only


@pytest.mark.parametrize(("url", "protocol"), [
    ("/srv/regen", "file"), ("file:///srv/regen", "file"), ("memory://x", "memory"), ("S3://bucket/p", "s3"),
    ("smb://host/share/p", "smb"), ("sftp://host/p", "sftp"), ("http://host/p", "http"), ("https://host", "https"),
])
def test_a_url_picks_its_scheme(url: str, protocol: str) -> None:
    scheme, _ = resolve(url)
    assert scheme.protocol == protocol == parse_url(url)[0]


@pytest.mark.parametrize(("url", "says"), [
    ("ftp://host/p", "unsupported scheme 'ftp'"),
    ("srv/regen", "has no scheme"),
    ("s3:///p", "lacks a host or bucket"),
    ("smb://host", "lacks a share name"),
    ("file://", "must be an absolute path"),
])
def test_a_url_its_scheme_refuses_is_invalid(url: str, says: str) -> None:
    with pytest.raises(InvalidURL, match=says):
        resolve(url)
