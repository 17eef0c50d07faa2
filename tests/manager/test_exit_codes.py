"""Every user error: one line on stderr, no traceback, and the exit status of its error class."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from regen.manager.errors import (
    BadOption,
    DamageFound,
    MissingKey,
    NotPublishable,
    OverlayNotFound,
    SourceInvalid,
    StoreNotEmpty,
)
from regen.store import Store, StoreLock, layout
from regen.store.errors import (
    EXIT_FAILED,
    EXIT_USAGE,
    GenerationNotFound,
    InvalidName,
    InvalidURL,
    KeyInvalid,
    LockHeld,
    PolicyInvalid,
    StoreExists,
    StoreNotFound,
)

from ..conftest import make_tree
from .conftest import one_error_line


@dataclass
class World:
    tmp: Path
    store: Store
    src: Path
    key: Path


@dataclass(frozen=True)
class Case:
    name: str
    error: type[Exception] | int  # an error class (its exit_code) or a bare status for click usage errors
    args: Callable[[World], list[str]]
    needle: str
    setup: Callable[[World], None] | None = None


def _policy(w: World) -> list[str]:
    (w.tmp / "bad.toml").write_text("junk = 'shred'\n")
    return ["snapshot", str(w.src), "-c", "stable", "-m", "x", "--policy", str(w.tmp / "bad.toml")]


def _damage(w: World) -> None:
    oid = next(iter(w.store.list_objects()))
    (w.tmp / "store" / layout.object_path(oid)).write_bytes(b"rgarbage")


CASES = [
    Case("no store URL", InvalidURL, lambda w: ["log", "--store", ""], "no store URL given"),
    Case("unsupported scheme", InvalidURL, lambda w: ["log", "--store", "ftp://host/x"], "unsupported scheme"),
    Case("no store there", StoreNotFound, lambda w: ["log", "--store", f"file://{w.tmp}/none"], "no regen store at"),
    Case("init over a store", StoreExists, lambda w: ["init", w.store.url], "already exists"),
    Case("init over other data", StoreNotEmpty, lambda w: ["init", f"file://{w.tmp}"], "is not empty"),
    Case("missing key", MissingKey, lambda w: ["snapshot", str(w.src), "-c", "s", "-m", "x", "--key", ""],
         "needs a secret key"),
    Case("key file missing", KeyInvalid, lambda w: ["rollback", "-c", "stable", "--key", f"{w.tmp}/nokey"],
         "does not exist"),
    Case("public key given as secret", KeyInvalid,
         lambda w: ["snapshot", str(w.src), "-c", "s", "-m", "x", "--key", f"{w.key}.pub"], "not a regen secret key"),
    Case("unknown generation", GenerationNotFound, lambda w: ["show", "42", "-c", "stable"], "generation 42"),
    Case("publish unknown generation", GenerationNotFound, lambda w: ["publish", "42", "-c", "stable"], "does not exist"),
    Case("publish backwards", NotPublishable, lambda w: ["publish", "1", "-c", "stable"], "older than"),
    Case("lock held", LockHeld, lambda w: ["gc"], "is locked by test holder",
         setup=lambda w: StoreLock(w.store, "test holder").acquire() and None),
    Case("bad policy file", PolicyInvalid, _policy, "'junk' must be one of"),
    Case("bad storage option", BadOption, lambda w: ["log", "-o", "novalue"], "is not KEY=VALUE"),
    Case("bad duration", BadOption, lambda w: ["status", "--stale", "soon"], "is not a duration"),
    Case("source is not a directory", SourceInvalid,
         lambda w: ["snapshot", str(w.src / "f"), "-c", "s", "-m", "x"], "is not a directory"),
    Case("bad channel name", InvalidName, lambda w: ["snapshot", str(w.src), "-c", "../x", "-m", "x"],
         "invalid channel"),
    Case("no overlay", OverlayNotFound, lambda w: ["host", "show", "pc-1"], "has no overlay"),
    Case("damage found", DamageFound, lambda w: ["fsck"], "the store is damaged", setup=_damage),
    Case("missing option", EXIT_USAGE, lambda w: ["snapshot", str(w.src), "-m", "x"], "Missing option '--channel'"),
    Case("unknown command", EXIT_USAGE, lambda w: ["snapshoot"], "No such command 'snapshoot'"),
    Case("not a number", EXIT_USAGE, lambda w: ["publish", "two", "-c", "stable"], "Invalid value for 'N'"),
]


@pytest.fixture
def world(cli, admin: Store, tmp_path: Path, key_files) -> World:
    src = make_tree(tmp_path / "ref", {"f": b"content"})
    cli("snapshot", src, "-c", "stable", "-m", "1", "--publish")
    cli("snapshot", src, "-c", "stable", "-m", "2", "--publish")
    return World(tmp_path, admin, src, key_files[0])


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_user_error_is_one_line_with_its_exit_status(cli, world: World, case: Case) -> None:
    if case.setup:
        case.setup(world)
    expected = case.error if isinstance(case.error, int) else case.error.exit_code  # type: ignore[attr-defined]
    res = cli(*case.args(world), exit_code=expected)
    assert case.needle in one_error_line(res.stderr)
    assert res.stdout == "" or case.error is DamageFound  # fsck lists its findings before the error line


def test_exit_statuses_are_the_documented_ones() -> None:
    assert {c.error.exit_code for c in CASES if not isinstance(c.error, int)} == {EXIT_USAGE, EXIT_FAILED}  # type: ignore[attr-defined]
    assert DamageFound.exit_code == EXIT_FAILED and LockHeld.exit_code == EXIT_USAGE
