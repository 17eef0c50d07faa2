"""Faults on the publisher side: `regen snapshot`, `publish`, `rollback` killed with SIGKILL mid-way,
and two managers publishing at once.

After every kill: `regen fsck` finds no damage, the channel's ref (if any) names a complete
generation that verifies with the publisher's key, the reference tree was not touched, and a
retry succeeds -- after `regen unlock` when the killed process left its writer lock, whose
LockHeld message must name that process first.
"""

from __future__ import annotations

import json
import os
import random
import signal
import stat
import time
from pathlib import Path

import blake3
import pytest

from regen.manager.snapshot import snapshot
from regen.store import Store, fsck, layout, load_public_key, load_secret_key, trust_map, verify_generation

from ..conftest import make_tree, run_cli
from .conftest import Recorder, files_in, kill_when, spawn, tree_state

N_DIRS, N_FILES, FILE_SIZE = 12, 20, 8192  # 240 files, 2 MB: a snapshot works ~0.2 s after startup


# -- helpers -----------------------------------------------------------------------------------------
class Admin:
    """A file:// store, a signing key and the environment a `regen` subprocess needs."""

    def __init__(self, tmp_path: Path, key_files: tuple[Path, Path]) -> None:
        self.url = f"file://{tmp_path / 'store'}"
        self.path = tmp_path / "store"
        self.store = Store.init(self.url)
        self.key, self.pub = key_files
        self.env = {"REGEN_STORE": self.url, "REGEN_KEY": str(key_files[0])}
        self.trusted = trust_map([load_public_key(self.pub)])

    def snap(self, src: Path, message: str, publish: bool, channel: str = "stable") -> None:
        """A snapshot taken in-process (the setup of a scenario, not what is being killed)."""
        snapshot(Store.open(self.url), str(src), channel=channel, message=message, key=load_secret_key(self.key),
                 policy=None, publish=publish, cache_dir=self.path.parent / "setup-cache")

    def regen(self, *args: str, exit_code: int | None = 0):  # type: ignore[no-untyped-def]
        return run_cli("regen", *args, env=self.env, exit_code=exit_code)

    def lock_exists(self) -> bool:
        return (self.path / layout.LOCK).exists()

    def objects(self) -> int:
        base = self.path / "objects"
        if not base.exists():
            return 0
        return sum(len(os.listdir(d)) for d in os.scandir(base) if d.is_dir())

    def has_record(self, channel: str, number: int) -> bool:
        return (self.path / layout.generation_path(channel, number)).exists()

    def ref_number(self, channel: str = "stable") -> int | None:
        """The ref's generation, after checking it verifies and its whole tree is in the store."""
        data = Store.open(self.url).read_ref(channel)
        if data is None:
            return None
        gen = verify_generation(data, self.trusted, store_id=self.store.store_id, channel=channel)
        store = Store.open(self.url)
        entries = store.read_manifest(gen.manifest)
        assert not store.missing(e.oid for e in entries if e.oid), "the ref names a generation with holes"
        return gen.number

    def manifest_of(self, channel: str, number: int) -> dict[str, tuple[str, int, str | None]]:
        store = Store.open(self.url)
        gen = verify_generation(store.read_generation(channel, number), self.trusted,
                                store_id=store.store_id, channel=channel)
        return {e.path: (e.kind, e.mode, e.oid or e.target) for e in store.read_manifest(gen.manifest)}

    def fsck_clean(self, cli: bool = True) -> None:
        """`regen fsck` (a real subprocess) exits 0: no damage found."""
        if cli:
            res = self.regen("fsck", "--json", exit_code=None)
            assert res.returncode == 0, res.stdout
        result = fsck(Store.open(self.url), self.trusted)
        assert not result.damaged, result.findings

    def retry(self, args: tuple[str, ...], killed_pid: int, owner: str):  # type: ignore[no-untyped-def]
        """Run `args` again; if the killed process left its lock, LockHeld must name it, then unlock."""
        if self.lock_exists():
            res = self.regen(*args, exit_code=2)
            line = one_line(res.stderr)
            assert "locked by " + owner in line and f"(pid {killed_pid})" in line and "regen unlock" in line, line
            assert "removed the lock of " + owner in self.regen("unlock").stdout
        return self.regen(*args)


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("regen: error: ") and "Traceback" not in stderr, stderr
    return lines[0]


def expected(root: Path) -> dict[str, tuple[str, int, str | None]]:
    """What a correct manifest of `root` holds, computed independently of regen (os.walk + blake3)."""
    out: dict[str, tuple[str, int, str | None]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            s = os.lstat(full)
            if stat.S_ISLNK(s.st_mode):
                out[rel] = ("symlink", 511, os.readlink(full))
            elif stat.S_ISDIR(s.st_mode):
                out[rel] = ("dir", stat.S_IMODE(s.st_mode), None)
            else:
                out[rel] = ("file", stat.S_IMODE(s.st_mode), blake3.blake3(Path(full).read_bytes()).hexdigest())
    return out


def big_tree(root: Path, seed: int, dirs: int = N_DIRS) -> Path:
    rng = random.Random(seed)
    spec: dict[str, bytes | None] = {"var/empty": None}
    for d in range(dirs):
        for f in range(N_FILES):
            spec[f"d{d:02}/f{f:02}"] = rng.randbytes(FILE_SIZE)
    make_tree(root, spec)
    os.symlink("d00/f00", root / "link")
    return root


def change_tree(root: Path, seed: int) -> None:
    """A second version: 200 files rewritten, a directory removed, new files and a mode change."""
    rng = random.Random(seed)
    for d in range(4):
        for f in range(N_FILES):
            (root / f"d{d:02}/f{f:02}").write_bytes(rng.randbytes(FILE_SIZE))
    for f in range(N_FILES):
        (root / f"d{N_DIRS - 1}/f{f:02}").unlink()
    (root / f"d{N_DIRS - 1}").rmdir()
    make_tree(root, {"new/a": b"new a", "new/b": rng.randbytes(FILE_SIZE)})
    (root / "d10/f00").chmod(0o700)


@pytest.fixture
def admin(tmp_path: Path, key_files: tuple[Path, Path]) -> Admin:
    return Admin(tmp_path, key_files)


# -- snapshot ----------------------------------------------------------------------------------------
# (scenario id, first generation or an update, --publish, when to kill)
SNAPSHOT_KILLS = [
    ("first-publish-lock-taken", "first", True, "lock"),
    ("first-publish-1-object", "first", True, 1e-9),
    ("first-publish-half-objects", "first", True, 0.5),
    ("first-nopublish-record-written", "first", False, "record"),
    ("update-publish-lock-taken", "update", True, "lock"),
    ("update-publish-10pc-objects", "update", True, 0.1),
    ("update-publish-90pc-objects", "update", True, 0.9),
    ("update-publish-record-written", "update", True, "record"),
    ("update-publish-random-delay-a", "update", True, "random:1"),
    ("update-publish-random-delay-b", "update", True, "random:2"),
]


@pytest.mark.parametrize("stage,publish,point", [s[1:] for s in SNAPSHOT_KILLS], ids=[s[0] for s in SNAPSHOT_KILLS])
def test_snapshot_killed(admin: Admin, tmp_path: Path, record: Recorder, stage: str, publish: bool,
                         point: str | float) -> None:
    ref = big_tree(tmp_path / "ref", seed=1)
    if stage == "update":
        admin.snap(ref, "v1", publish=True)
        v1 = admin.manifest_of("stable", 1)
        change_tree(ref, seed=2)
        number, previous = 2, 1
    else:
        v1, number, previous = {}, 1, None
    want = expected(ref)
    before = tree_state(ref)
    objects_before = admin.objects()
    new_objects = len({v[2] for v in want.values() if v[0] == "file"} - set(admin.store.list_objects())) + 1

    args = ("snapshot", str(ref), "-c", "stable", "-m", "v-next", "-q", *(["--publish"] if publish else []))
    proc = spawn("regen", *args, env=admin.env)
    if point == "lock":
        ready, delay = admin.lock_exists, 0.0
    elif point == "record":
        ready, delay = (lambda: admin.has_record("stable", number)), 0.0
    elif isinstance(point, str):  # random:<seed>: a delay somewhere in the run
        ready, delay = (lambda: True), random.Random(int(point.split(":")[1])).uniform(0.3, 0.6)
    else:
        goal = objects_before + max(1, int(point * new_objects))
        ready, delay = (lambda: admin.objects() >= goal), 0.0
    alive = kill_when(proc, ready, delay=delay)
    if point not in ("record",) and not str(point).startswith("random"):
        assert alive, f"regen snapshot finished before the kill point {point}"
    record.killed(alive)

    assert tree_state(ref) == before, "a killed snapshot changed the reference tree"
    record.intact(files_in(before))
    admin.fsck_clean()
    at = admin.ref_number()
    assert at in (previous, number if publish else previous)
    for n in range(1, number + 1):  # every record written verifies and its tree is complete (fsck above)
        if admin.has_record("stable", n):
            assert admin.manifest_of("stable", n) == (want if n == number else v1)

    admin.retry(args, proc.pid, "regen snapshot")
    admin.fsck_clean(cli=False)
    newest = max(Store.open(admin.url).generation_numbers("stable"))
    assert admin.manifest_of("stable", newest) == want
    if publish:
        assert admin.ref_number() == newest
    else:
        assert admin.ref_number() == previous


# -- publish and rollback ----------------------------------------------------------------------------
def two_generations(admin: Admin, tmp_path: Path, publish_second: bool) -> tuple[Path, dict, dict]:  # type: ignore[type-arg]
    ref = make_tree(tmp_path / "ref", {"etc/app.conf": b"v1\n", "bin/app": b"#!/bin/sh\n", "var/empty": None})
    admin.snap(ref, "v1", publish=True)
    (ref / "etc/app.conf").write_bytes(b"v2\n")
    admin.snap(ref, "v2", publish=publish_second)
    return ref, admin.manifest_of("stable", 1), admin.manifest_of("stable", 2)


PUBLISH_KILLS = [("lock-taken", 0.0), ("lock+3ms", 0.003), ("lock+10ms", 0.01), ("lock+30ms", 0.03)]


@pytest.mark.parametrize("delay", [d for _, d in PUBLISH_KILLS], ids=[f"publish-killed-{n}" for n, _ in PUBLISH_KILLS])
def test_publish_killed(admin: Admin, tmp_path: Path, record: Recorder, delay: float) -> None:
    _, _, v2 = two_generations(admin, tmp_path, publish_second=False)
    args = ("publish", "2", "-c", "stable", "-q")
    proc = spawn("regen", *args, env=admin.env)
    record.killed(kill_when(proc, admin.lock_exists, delay=delay))
    admin.fsck_clean()
    assert admin.ref_number() in (1, 2)  # the old generation or the new one, both complete and verified
    admin.retry(args, proc.pid, "regen publish")
    admin.fsck_clean(cli=False)
    assert admin.ref_number() == 2 and admin.manifest_of("stable", 2) == v2


ROLLBACK_KILLS = [("lock-taken", "lock", 0.0), ("lock+10ms", "lock", 0.01), ("record-written", "record", 0.0)]


@pytest.mark.parametrize("point,delay", [k[1:] for k in ROLLBACK_KILLS],
                         ids=[f"rollback-killed-{k[0]}" for k in ROLLBACK_KILLS])
def test_rollback_killed(admin: Admin, tmp_path: Path, record: Recorder, point: str, delay: float) -> None:
    _, v1, _ = two_generations(admin, tmp_path, publish_second=True)
    args = ("rollback", "-c", "stable", "-q")
    proc = spawn("regen", *args, env=admin.env)
    ready = admin.lock_exists if point == "lock" else (lambda: admin.has_record("stable", 3))
    record.killed(kill_when(proc, ready, delay=delay))
    admin.fsck_clean()
    at = admin.ref_number()
    assert at in (2, 3)
    if admin.has_record("stable", 3):
        assert admin.manifest_of("stable", 3) == v1  # a record written by the killed rollback is whole
    if at == 2:  # not rolled back yet: the retry does it, under the next free number
        admin.retry(args, proc.pid, "regen rollback")
    admin.fsck_clean(cli=False)
    at = admin.ref_number()
    assert at is not None and at >= 3 and admin.manifest_of("stable", at) == v1


# -- two managers ------------------------------------------------------------------------------------
def test_second_manager_refused_while_first_publishes(admin: Admin, tmp_path: Path, record: Recorder) -> None:
    """Scenario: two more publishers (publish, snapshot) come while a snapshot holds the lock (frozen
    with SIGSTOP right after taking it, like a slow one): both refused, naming it; it then completes."""
    small = make_tree(tmp_path / "small", {"a": b"a"})
    admin.snap(small, "o1", publish=False, channel="other")
    ref = big_tree(tmp_path / "ref", seed=3)
    first = spawn("regen", "snapshot", str(ref), "-c", "stable", "-m", "big", "--publish", "-q", env=admin.env)
    try:
        while first.poll() is None and not admin.lock_exists():
            time.sleep(0.001)
        os.kill(first.pid, signal.SIGSTOP)
        assert first.poll() is None, "the first snapshot finished before it could be held"
        for args in (("publish", "1", "-c", "other"), ("snapshot", str(small), "-c", "stable", "-m", "second")):
            line = one_line(admin.regen(*args, exit_code=2).stderr)
            assert "locked by regen snapshot" in line and f"(pid {first.pid})" in line, line
    finally:
        os.kill(first.pid, signal.SIGCONT)
        _, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert not admin.lock_exists()
    admin.fsck_clean()
    assert admin.ref_number() == 1 and admin.manifest_of("stable", 1) == expected(ref)
    assert Store.open(admin.url).read_ref("other") is None  # the refused publish changed nothing


def test_managers_racing(admin: Admin, tmp_path: Path) -> None:
    """Scenario: three snapshots --publish started at the same instant: the lock serialises them."""
    trees = [big_tree(tmp_path / f"ref{i}", seed=10 + i) for i in range(3)]
    procs = [spawn("regen", "snapshot", str(t), "-c", "stable", "-m", f"race {i}", "--publish", "-q", env=admin.env)
             for i, t in enumerate(trees)]
    outputs = [p.communicate(timeout=60) for p in procs]
    results = [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs)]
    won = [i for i, (code, _, _) in enumerate(results) if code == 0]
    for code, _, err in results:
        if code != 0:
            assert code == 2 and "locked by regen snapshot" in one_line(err.decode()), err
    assert won, "no snapshot got the lock"
    admin.fsck_clean()
    numbers = Store.open(admin.url).generation_numbers("stable")
    assert numbers == list(range(1, len(won) + 1))
    published = {tuple(sorted(admin.manifest_of("stable", n).items())) for n in numbers}
    assert published == {tuple(sorted(expected(trees[i]).items())) for i in won}
    assert admin.ref_number() == len(won)


# -- hostile client reports ----------------------------------------------------------------------------
HOSTILE_REPORTS = {
    "lone-surrogate": b'{"type":"regen-report","format":1,"host":"h","run_id":"r\\ud800","started":"s","finished":"f",'
                      b'"outcome":"failing","exit_code":1,"errors":["bad \\udcff"]}',
    "deeply-nested": b'{"type":"regen-report","format":1,"steps":' + b"[" * 100000 + b"]" * 100000 + b"}",
    "not-json": b"\xff\xfe garbage",
    "wrong-types": b'{"type":"regen-report","format":1,"host":1,"run_id":[],"started":{},"finished":null,'
                   b'"outcome":"ok","exit_code":"0","findings":[{"severity":"meltdown"}]}',
    "over-4mib": b'{"type":"regen-report","format":1,"errors":["' + b"x" * (5 << 20) + b'"]}',
}


def test_status_over_hostile_reports(admin: Admin, record: Recorder) -> None:
    """Scenario: clients' reports are untrusted input: `regen status` (and --json) over hosts whose latest
    report is malformed in every way shows them as failing with a note, never a traceback."""
    for host, data in HOSTILE_REPORTS.items():
        p = admin.path / "reports" / host / "latest.json"
        p.parent.mkdir(parents=True)
        p.write_bytes(data)
    table = admin.regen("status")
    data = json.loads(admin.regen("status", "--json").stdout)
    assert "Traceback" not in table.stderr and all(h in table.stdout for h in HOSTILE_REPORTS), table.stdout
    hosts = {h["host"]: h for h in data["hosts"]}
    assert set(hosts) == set(HOSTILE_REPORTS) and data["counts"]["failing"] == len(HOSTILE_REPORTS), data
    assert all(h["state"] == "failing" and h["errors"] for h in hosts.values()), hosts
