"""kill -9 at any moment of an apply: the next run converges, nothing is lost, no partial file is seen.

A real `regend run --once` child is killed with SIGKILL after N operations (test hook
REGEN_TEST_KILL_AFTER=N, read by regend's CLI), for every N until a run completes, then a
normal run must reach the target exactly (no temp file left behind).
"""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

from regen.store import Store
from tests.conftest import Mode, Symlink

from .conftest import Client, expected, publish, snapshot

GEN1 = {
    "etc/a.conf": "a1\n", "etc/b.conf": "b1\n", "etc/link": Symlink("a.conf"), "bin/tool": Mode(b"tool1", 0o755),
    "old/x": "x", "old/deep/y": "y", "data/big": b"B" * 300_000,
}
GEN2 = {
    "etc/a.conf": "a2\n", "etc/b.conf": "b1\n", "etc/link": Symlink("b.conf"), "bin/tool": Mode(b"tool1", 0o700),
    "new/dir/z": "z", "new/dir/w": Mode(b"w", 0o600), "old": "now a file", "data/big": b"C" * 300_000,
    "etc/c.conf": "",
}
JUNK = b"junk the user made"
EDIT = b"an edit the user made"


def contents(spec: dict) -> set[bytes]:
    out = set()
    for v in spec.values():
        if isinstance(v, Mode):
            out.add(v.content)
        elif isinstance(v, (bytes, str)):
            out.add(v.encode() if isinstance(v, str) else v)
    return out


def test_sigkill_at_every_operation_then_converge(client: Client, file_store: Store, signing_key,
                                                  tmp_path: Path) -> None:
    publish(file_store, signing_key, GEN1, number=1)
    client.regend("run", "--once")
    (client.root / "etc/junk").write_bytes(JUNK)
    (client.root / "etc/b.conf").write_bytes(EDIT)
    publish(file_store, signing_key, GEN2, number=2)
    saved = tmp_path / "saved"
    shutil.copytree(client.base, saved, symlinks=True)
    allowed = contents(GEN1) | contents(GEN2) | {JUNK, EDIT}

    n = 0
    while True:
        n += 1
        shutil.rmtree(client.base)
        shutil.copytree(saved, client.base, symlinks=True)
        killed = client.regend("run", "--once", env={"REGEN_TEST_KILL_AFTER": str(n)}, exit_code=None)
        if killed.returncode == 0:
            break
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        for path, value in snapshot(client.root).items():  # never a partial file at a path
            if value[0] == "file" and not Path(path).name.startswith(".regen-tmp-"):
                assert value[2] in allowed, (n, path, value[2][:40])
        client.regend("run", "--once")
        assert client.tree() == expected(GEN2), n
        kept = {p.read_bytes() for p in (client.state / "quarantine").rglob("*") if p.is_file()
                and p.suffix != ".jsonl"}
        assert {JUNK, EDIT} <= kept, n  # nothing lost
        if n % 4 == 0:  # (a sample: each run costs a process start)
            assert client.regend("run", "--once").stdout.startswith("ok:"), n
        assert n < 200
    assert n > 20, n  # the scenario really had many crash points
    print(f"{n - 1} crash points")
