"""The error tree's contract: how a client treats an error is a class attribute, and both CLIs
end with the one exit_status mapping (issue 11 item 3)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import regen.daemon.errors
import regen.manager.errors
import regen.store.errors as errors
from regen.store.errors import (
    EXIT_FAILED,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_SIGPIPE,
    EXIT_USAGE,
    InvalidURL,
    NotFound,
    ObjectCorrupt,
    RegenError,
    StoreAccessDenied,
    StoreNotFound,
    StoreUnreachable,
    TrustError,
    exit_status,
)
from regen.store.translate import translate

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("cls", [StoreUnreachable, StoreAccessDenied, StoreNotFound, NotFound, InvalidURL])
def test_offline_errors_say_so_as_a_class_attribute(cls: type[RegenError]) -> None:
    assert cls("x").offline is True


@pytest.mark.parametrize("cls", [ObjectCorrupt, TrustError, RegenError])
def test_refusals_are_not_offline(cls: type[RegenError]) -> None:
    assert cls("x").offline is False


def test_retry_after_is_a_field_of_the_instance() -> None:
    assert StoreUnreachable("x").retry_after is None
    assert StoreUnreachable("x", retry_after=5.0).retry_after == 5.0
    assert StoreUnreachable.retry_after is None  # the class default is untouched


def test_exit_status_maps_every_kind_of_ending() -> None:
    assert exit_status(InvalidURL("x")) == EXIT_USAGE == 2
    assert exit_status(ObjectCorrupt("x")) == EXIT_FAILED == 1
    assert exit_status(KeyboardInterrupt()) == EXIT_INTERRUPTED == 130
    assert exit_status(BrokenPipeError()) == EXIT_SIGPIPE == 141
    assert exit_status(ValueError("a bug")) == EXIT_INTERNAL == 70

    class ClickShaped(Exception):
        exit_code = 2

        def format_message(self) -> str:
            return "usage"

        def show(self) -> None:
            pass
    assert exit_status(ClickShaped()) == 2


def test_translated_http_errors_carry_retry_after_without_ad_hoc_attributes() -> None:
    class Resp(Exception):
        status = 503
        headers = {"Retry-After": "7"}
    err = translate(Resp(), "https://h/s", "refs/x")
    assert isinstance(err, StoreUnreachable) and err.retry_after == 7.0 and err.offline


def _error_classes_outside_errors_py() -> list[str]:
    bases = {"RegenError", "StoreError", "DaemonError", "ManagerError"} | {
        n for m in (errors, regen.daemon.errors, regen.manager.errors) for n, o in vars(m).items()
        if inspect.isclass(o) and issubclass(o, RegenError)}
    found = []
    for package in ("store", "daemon", "manager"):
        for path in (ROOT / package).rglob("*.py"):
            if path.name == "errors.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ClassDef) and any(isinstance(b, ast.Name) and b.id in bases
                                                          for b in node.bases):
                    found.append(f"{path.relative_to(ROOT)}:{node.name}")
    return found


def test_every_regen_error_lives_in_its_packages_errors_py() -> None:
    assert _error_classes_outside_errors_py() == []


@pytest.mark.parametrize("module, base", [(regen.daemon.errors, regen.daemon.errors.DaemonError),
                                          (regen.manager.errors, regen.manager.errors.ManagerError)])
def test_every_error_is_under_its_packages_base(module: object, base: type[RegenError]) -> None:
    for name in getattr(module, "__all__"):
        obj = getattr(module, name)
        if inspect.isclass(obj):
            assert issubclass(obj, base), name


def _is_text(value: ast.expr) -> bool:
    """A help text (strings, f-strings, str methods), not a number."""
    return any(isinstance(n, (ast.JoinedStr, ast.Call)) or (isinstance(n, ast.Constant) and isinstance(n.value, str))
               for n in ast.walk(value))


def test_exit_constants_are_defined_once() -> None:
    """70/130 and friends come from regen.store.errors only (they were defined four times);
    help texts named EXIT_* (strings) are not statuses."""
    offenders = []
    for package in ("store", "daemon", "manager"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Assign) or _is_text(node.value):
                    continue
                if any(isinstance(t, ast.Name) and t.id.startswith("EXIT_") for t in node.targets):
                    if path.relative_to(ROOT).as_posix() != "store/errors.py":
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
