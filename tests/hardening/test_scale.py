"""Issue 13, scale without crashing: a valid 1,400-level tree goes through snapshot, install, the
no-change run, a drift repair, `check` and a verify (no recursion limit anywhere)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import run_cli
from .conftest import Recorder
from .test_hostile_names import admin, make_deep, snapshot_and_install  # noqa: F401 - fixture

DEPTH = 1400


def remove_deep(top: Path) -> None:
    """rm -rf without recursion (shutil.rmtree, and so pytest's tmp_path cleanup, recurses per level)."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    stack = [os.open(top, flags)]
    while stack:
        fd = stack[-1]
        for name in os.listdir(fd):
            if stat.S_ISDIR(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
                try:
                    os.rmdir(name, dir_fd=fd)
                except OSError:
                    stack.append(os.open(name, flags, dir_fd=fd))
                    break
            else:
                os.unlink(name, dir_fd=fd)
        else:
            os.close(stack.pop())
    os.rmdir(top)


@pytest.fixture
def deep_cleanup(tmp_path: Path) -> Iterator[None]:
    yield
    for p in tmp_path.iterdir():
        if p.is_dir() and not p.is_symlink():
            remove_deep(p)


@pytest.mark.slow  # ~40 s: every operation resolves a path 1,400 levels deep
def test_a_1400_level_tree_end_to_end(admin, tmp_path: Path, key_files, record: Recorder,  # noqa: F811
                                      deep_cleanup: None) -> None:
    ref = tmp_path / "ref"
    rel = make_deep(ref, ["d"] * DEPTH, b"deep down")
    c = snapshot_and_install(admin, ref, tmp_path / "client", key_files[1])
    leaf = c.root / rel.decode()
    assert leaf.read_bytes() == b"deep down"  # (tree_state() itself recurses per level)
    assert c.regend("run", "--once").stdout.startswith("ok:")
    leaf.write_bytes(b"drift")  # a repair plans and applies at the bottom
    c.regend("check")
    c.regend("run", "--once", "--verify")
    assert leaf.read_bytes() == b"deep down"
    run_cli("regen", "fsck", env=admin)
    record.intact(1)
