"""Fixtures of the manager tests: a CliRunner-driven `regen`, a store with a key, aged trees."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from regen.manager.cli import app
from regen.store import Store


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def age_tree(root: Path, seconds: int = 3600) -> None:
    """Backdate every mtime below `root`, so no file is inside the racy-timestamp window.

    A real reference tree is not edited in the seconds before its snapshot; a test tree is
    created just before, and would (rightly) be re-read by the next snapshot otherwise.
    """
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns - seconds * 10**9), follow_symlinks=False)


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Run]:
    """Invoke `regen ARGS` in-process through typer's CliRunner; checks the exit status."""
    runner = CliRunner()

    def invoke(*args: str, exit_code: int | None = 0, env: dict[str, str] | None = None) -> Run:
        for k, v in (env or {}).items():
            monkeypatch.setenv(k, v)
        result = runner.invoke(app, [str(a) for a in args], prog_name="regen")
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        run = Run(result.exit_code, result.stdout, result.stderr)
        if exit_code is not None and run.exit_code != exit_code:
            raise AssertionError(f"regen {' '.join(map(str, args))} exited {run.exit_code}, expected {exit_code}\n"
                                 f"--- stdout\n{run.stdout}\n--- stderr\n{run.stderr}")
        return run

    return invoke


@pytest.fixture
def admin(file_url: str, key_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> Store:
    """An initialised file:// store, with REGEN_STORE and REGEN_KEY set as an administrator would."""
    store = Store.init(file_url)
    monkeypatch.setenv("REGEN_STORE", file_url)
    monkeypatch.setenv("REGEN_KEY", str(key_files[0]))
    return store


@pytest.fixture
def aged() -> Callable[..., None]:
    return age_tree


def one_error_line(stderr: str) -> str:
    """The single `regen: error:` line of a failed command (asserting there is nothing else)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    assert lines[0].startswith("regen: error: "), lines[0]
    assert "Traceback" not in stderr
    return lines[0]
