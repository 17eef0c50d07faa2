"""Quarantine keeps what regend removes or overwrites; retention by age, then by total size."""

from __future__ import annotations

import os
import time
from pathlib import Path

from regen.daemon.fsops import SafeRoot
from regen.daemon.quarantine import Quarantine


def fill(tmp_path: Path, q: Quarantine, run_id: str, size: int, age_days: float) -> None:
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    (root / f"f-{run_id}").write_bytes(b"x" * size)
    with SafeRoot(str(root)) as sroot:
        assert q.save(sroot, run_id, f"f-{run_id}", "test") is not None
    then = time.time() - age_days * 86400
    os.utime(os.path.join(q.dir, f"{run_id}.jsonl"), (then, then))


def test_retention_by_age_then_size_keeps_the_current_run(tmp_path: Path) -> None:
    q = Quarantine(str(tmp_path / "state"))
    fill(tmp_path, q, "20200101T000000000000Z-a", 100, age_days=400)
    fill(tmp_path, q, "20250101T000000000000Z-b", 1000, age_days=5)
    fill(tmp_path, q, "20250102T000000000000Z-c", 1000, age_days=4)
    fill(tmp_path, q, "20250103T000000000000Z-d", 1000, age_days=0)
    removed = q.prune(max_age_days=90, max_bytes=3000, keep=["20250103T000000000000Z-d"])
    assert removed == ["20200101T000000000000Z-a", "20250101T000000000000Z-b"]
    assert q.runs() == ["20250102T000000000000Z-c", "20250103T000000000000Z-d"]
    assert not (Path(q.dir) / "20250101T000000000000Z-b").exists()


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
    q.restore_to([items[0], items[2]], str(out))
    assert (out / "secret").read_bytes() == b"s" and os.readlink(out / "link") == "/nowhere"
