"""save_atomic: the one durable atomic save of a local file (regend's state, reports, metrics, units)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from regen.store import save_atomic


def test_save_replaces_whole_with_the_mode_asked(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(b"old content, longer than the new")
    save_atomic(str(path), b"new", mode=0o644)
    assert path.read_bytes() == b"new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    save_atomic(str(path), b"private")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["state.json"]  # no temporary file left


def test_a_failed_save_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_bytes(b"old")
    with pytest.raises(TypeError):
        save_atomic(str(path), "not bytes")  # type: ignore[arg-type]
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["report.json"]
    with pytest.raises(FileNotFoundError):
        save_atomic(str(tmp_path / "missing" / "x"), b"data")
