"""SIGKILL of `regend run --once` at many points of an install, a repair and an update.

For each phase the operations of a real run are counted first (the journal's ops_done of a
completed run with the kill hook armed but out of reach), then the run is repeated from the
same starting state and killed (REGEN_TEST_KILL_AFTER=N, a real SIGKILL of the real process)
at points spread over all of them. After each kill: no managed path holds a partial file,
and one normal run reaches the target exactly, leaves no temp file, has not touched the
preserved (user) files, and the quarantine holds every user file it removed or overwrote.
"""

from __future__ import annotations

import shutil
import signal
import sqlite3
from pathlib import Path

import pytest

from regen.store import Policy, Store

from ..conftest import Mode, Symlink, make_tree
from .conftest import Client, Recorder, Spec, expected_state, files_in, publish, tree_state

POLICY = Policy(preserve=("home",))
G1: Spec = {
    "etc/a.conf": "a1\n", "etc/b.conf": "b1\n", "etc/link": Symlink("a.conf"), "bin/tool": Mode(b"tool1", 0o755),
    "old/x": "x", "old/deep/y": "y", "data/big": b"B" * 200_000, "home": None,
}
G2: Spec = {
    "etc/a.conf": "a2\n", "etc/b.conf": "b1\n", "etc/link": Symlink("b.conf"), "bin/tool": Mode(b"tool1", 0o700),
    "new/dir/z": "z", "new/dir/w": Mode(b"w", 0o600), "old": "now a file", "data/big": b"C" * 200_000,
    "etc/c.conf": "", "home": None,
}
USER = {  # what users put on the machine: preserved data, and files regend must keep in quarantine
    "preserved": {"home/alice/notes": b"alice's notes", "home/bob/.profile": b"bob's profile"},
    "install": {"stray.txt": b"stray file before install", "etc/a.conf": b"local edit before install"},
    "repair": {"etc/junk": b"junk the user made", "etc/a.conf": b"user edit of a.conf",
               "etc/link": b"file instead of a link", "old/deep": b"file instead of a dir"},
    "update": {"etc/junk2": b"more junk", "etc/b.conf": b"user edit of b.conf"},
}
POINTS_PER_PHASE = 18


def contents(spec: Spec) -> set[bytes]:
    out = set()
    for v in spec.values():
        if isinstance(v, Mode):
            out.add(v.content)
        elif isinstance(v, (bytes, str)):
            out.add(v.encode() if isinstance(v, str) else v)
    return out


def damage(root: Path, phase: str) -> None:
    for path, data in USER[phase].items():
        p = root / path
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    if phase == "repair":
        (root / "etc/b.conf").unlink()
        (root / "bin/tool").chmod(0o600)


def ops_of_completed_run(c: Client) -> int:
    """Operations of the run that just completed, as its journal recorded them."""
    with sqlite3.connect(f"file:{c.state / 'index.db'}?mode=ro", uri=True) as db:
        row = db.execute("SELECT ops_done FROM journal WHERE status = 'done' ORDER BY started DESC, run_id DESC "
                         "LIMIT 1").fetchone()
    assert row is not None and row[0] > 0
    return int(row[0])


def spread(total: int, k: int) -> list[int]:
    if total <= k:
        return list(range(1, total + 1))
    return sorted({1 + round(i * (total - 1) / (k - 1)) for i in range(k)})


@pytest.mark.parametrize("phase", ["install", "repair", "update"])
def test_sigkill_during_run(phase: str, file_store: Store, signing_key, make_client, tmp_path: Path,
                            record: Recorder) -> None:
    """Scenario per phase: kill -9 at ~18 operations spread over the whole apply, then converge."""
    publish(file_store, signing_key, G1, number=1, policy=POLICY)
    c: Client = make_client(file_store.url)
    make_tree(c.root, USER["preserved"])
    if phase == "install":
        make_tree(c.root, USER["install"])
    else:
        c.regend("run", "--once")
        damage(c.root, phase)
    if phase == "update":
        publish(file_store, signing_key, G2, number=2, policy=POLICY)
    goal = G2 if phase == "update" else G1
    preserved = {k: v for k, v in tree_state(c.root).items() if k == b"home" or k.startswith(b"home/")}
    want = {k: v for k, v in expected_state(goal).items() if not (k == b"home" or k.startswith(b"home/"))}
    want.update(preserved)
    lost_if_not_kept = set(USER[phase].values())
    allowed = contents(G1) | contents(G2) | set(USER["preserved"].values()) | lost_if_not_kept
    saved = tmp_path / "saved"
    shutil.copytree(c.base, saved, symlinks=True)

    def restore() -> None:
        shutil.rmtree(c.base)
        shutil.copytree(saved, c.base, symlinks=True)

    def converged(n: int) -> None:
        assert c.tree() == want, f"{phase}: not converged after a kill at operation {n}"
        assert not c.temp_files(), (n, c.temp_files())
        assert lost_if_not_kept <= set(c.quarantined()), f"{phase}: user files lost after a kill at operation {n}"
        record.intact(files_in(want))

    restore()  # (counted on a copy, exactly like the runs that are killed)
    c.regend("run", "--once", env={"REGEN_TEST_KILL_AFTER": "1000000"})  # armed, out of reach: counts ticks
    converged(0)
    total = ops_of_completed_run(c)
    points = spread(total, POINTS_PER_PHASE)
    assert len(points) >= 15, (phase, total)
    for n in points:
        restore()
        killed = c.regend("run", "--once", env={"REGEN_TEST_KILL_AFTER": str(n)}, exit_code=None)
        assert killed.returncode == -signal.SIGKILL, (
            f"{phase}: the run armed to die at operation {n} of {total} exited {killed.returncode}\n"
            f"{killed.stdout}{killed.stderr}")
        record.killed()
        for path, (kind, _, data) in c.tree().items():  # never a partial file at a managed path
            if kind == "file" and not path.rpartition(b"/")[2].startswith(b".regen-tmp-"):
                assert data in allowed, (phase, n, path, data[:40])
        c.regend("run", "--once")
        converged(n)
    listing = c.regend("recover", "--list").stdout  # what was set aside is there for the user to recover
    assert listing.strip(), listing
    print(f"{phase}: {len(points)} kill points of {total} operations")
