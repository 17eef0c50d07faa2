"""Quarantine keeps what regend removes or overwrites; retention by age, then by total size."""

from __future__ import annotations

import os
import time
from pathlib import Path

from regen.daemon.tree.fsops import SafeRoot
from regen.daemon.tree.quarantine import Quarantine
from regen.daemon.tree.recover import restore_to

NOW = 1_800_000_000.0  # the clock of these tests (passed to prune)


def run_id(age_days: float, tag: str) -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(NOW - age_days * 86400)) + f"000000Z-{tag}"


def fill(tmp_path: Path, q: Quarantine, run: str, size: int) -> None:
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    (root / f"f-{run}").write_bytes(b"x" * size)
    with SafeRoot(str(root)) as sroot:
        assert q.save(sroot, run, f"f-{run}", "test") is not None


def test_retention_by_age_then_size_keeps_the_current_run(tmp_path: Path) -> None:
    q = Quarantine(str(tmp_path / "state"))
    a, b, c, d = run_id(400, "a"), run_id(5, "b"), run_id(4, "c"), run_id(0, "d")
    for r in (a, b, c, d):
        fill(tmp_path, q, r, 1000)
    per_run = q.total_bytes() // 4  # allocated blocks: the file and its .jsonl line
    pruned = q.prune(max_age_days=90, max_bytes=2 * per_run, keep=[d], now=NOW)
    assert pruned.removed == [a, b] and pruned.notes == ()
    assert q.runs() == [c, d]
    assert not (Path(q.dir) / b).exists()


def test_retention_floor_keeps_the_newest_runs_whatever_their_size(tmp_path: Path) -> None:
    q = Quarantine(str(tmp_path / "state"))
    runs = [run_id(9 - i, str(i)) for i in range(5)]
    for r in runs:
        fill(tmp_path, q, r, 1000)
    pruned = q.prune(max_age_days=90, max_bytes=0, keep=[runs[-1]], now=NOW, floor=2)
    assert pruned.removed == runs[:2] and q.runs() == runs[2:]


def test_saved_items_keep_mode_owner_and_symlink_target(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "secret").write_bytes(b"s")
    (root / "secret").chmod(0o600)
    (root / "link").symlink_to("/nowhere")
    q = Quarantine(str(tmp_path / "state"))
    with SafeRoot(str(root)) as sroot:
        q.save(sroot, "r", "secret", "why")
        q.save(sroot, "r", "secret", "twice in one run")
        q.save(sroot, "r", "link", "why")
    items = q.items("r")
    assert [(i.path, i.kind, i.mode, i.stored) for i in items] == [
        ("secret", "file", 0o600, "secret"), ("secret", "file", 0o600, "secret.1"), ("link", "symlink", 0o777, "link")]
    assert items[2].target == "/nowhere"
    out = tmp_path / "out"
    restore_to(q, [items[0], items[2]], str(out), root=str(root), preserve=())
    assert (out / "secret").read_bytes() == b"s" and os.readlink(out / "link") == "/nowhere"
