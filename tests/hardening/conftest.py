"""Fixtures of the hardening suite: a recorder every scenario reports into, tree snapshots, kills.

Each test here is a named scenario (its parametrize id says what is attacked or broken). The
suite ends with a summary line: scenarios tried, passed, and files checked intact (every file
of a client tree or reference tree compared byte for byte and mode for mode after a fault).
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from regen.store import (
    Entry,
    Generation,
    Policy,
    SecretKey,
    Store,
    build_manifest,
    format_time,
    object_id,
    utcnow,
    xxh,
)

from ..conftest import Mode, Symlink, argv_of, run_cli

HERE = Path(__file__).parent


# -- the recorder ------------------------------------------------------------------------------------
@dataclass
class Tally:
    tried: int = 0
    passed: int = 0
    failed: list[str] = field(default_factory=list)
    known: list[str] = field(default_factory=list)
    intact: int = 0
    kills: int = 0


TALLY = Tally()


def _ours(item: pytest.Item) -> bool:
    return Path(str(item.fspath)).is_relative_to(HERE)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    rep = outcome.get_result()
    if not _ours(item):
        return
    if rep.when == "setup" and not rep.passed:
        TALLY.tried += 1
        if not rep.skipped:
            TALLY.failed.append(item.nodeid)
    elif rep.when == "call":
        TALLY.tried += 1
        if hasattr(rep, "wasxfail"):
            TALLY.known.append(item.nodeid)
        elif rep.passed:
            TALLY.passed += 1
        elif not rep.skipped:
            TALLY.failed.append(item.nodeid)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # type: ignore[no-untyped-def]
    if TALLY.tried == 0:
        return
    tr = terminalreporter
    tr.section("regen hardening summary")
    tr.write_line(f"scenarios tried: {TALLY.tried}, passed: {TALLY.passed}, failed: {len(TALLY.failed)}, "
                  f"known defects (xfail): {len(TALLY.known)}")
    tr.write_line(f"files checked intact: {TALLY.intact}; processes killed mid-operation: {TALLY.kills}")
    for nodeid in TALLY.failed:
        tr.write_line(f"FAILED scenario: {nodeid}")
    for nodeid in TALLY.known:
        tr.write_line(f"known defect: {nodeid}")


class Recorder:
    """What a scenario reports: files it found intact, processes it killed."""

    def intact(self, n: int) -> None:
        TALLY.intact += n

    def killed(self, n: int = 1) -> None:
        TALLY.kills += n


@pytest.fixture
def record() -> Recorder:
    return Recorder()


# -- trees -------------------------------------------------------------------------------------------
Node = tuple[str, int, bytes]  # (kind, permission bits, content or symlink target)


def tree_state(root: Path | str) -> dict[bytes, Node]:
    """Every path below `root` (bytes, never following symlinks) -> (kind, mode bits, content/target).

    Walks with directory descriptors (openat), so trees deeper than PATH_MAX are read too.
    """
    out: dict[bytes, Node] = {}
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

    def visit(dfd: int, rel: bytes) -> None:
        for name in sorted(os.listdir(dfd)):
            bname = os.fsencode(name)
            r = rel + b"/" + bname if rel else bname
            s = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            mode = stat.S_IMODE(s.st_mode)
            if stat.S_ISLNK(s.st_mode):
                out[r] = ("symlink", 0, os.fsencode(os.readlink(name, dir_fd=dfd)))
            elif stat.S_ISDIR(s.st_mode):
                out[r] = ("dir", mode, b"")
                sub = os.open(name, flags, dir_fd=dfd)
                try:
                    visit(sub, r)
                finally:
                    os.close(sub)
            elif stat.S_ISREG(s.st_mode):
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
                with os.fdopen(fd, "rb") as fp:
                    out[r] = ("file", mode, fp.read())
            else:
                out[r] = ("special", mode, b"")

    top = os.open(root, flags)
    try:
        visit(top, b"")
    finally:
        os.close(top)
    return out


def files_in(state: dict[bytes, Node]) -> int:
    return sum(1 for kind, _, _ in state.values() if kind != "dir")


def assert_same_tree(before: dict[bytes, Node], after: dict[bytes, Node], what: str = "tree") -> None:
    """A precise diff message: which paths appeared, vanished or changed."""
    if before == after:
        return
    gone = sorted(set(before) - set(after))
    new = sorted(set(after) - set(before))
    changed = sorted(p for p in set(before) & set(after) if before[p] != after[p])
    raise AssertionError(f"{what} changed: removed {gone[:10]}, added {new[:10]}, "
                         f"changed {[(p, before[p][:2], after[p][:2]) for p in changed[:10]]}")


# -- processes ---------------------------------------------------------------------------------------
def spawn(command: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.Popen([*argv_of(command), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=full_env)


def kill_when(proc: subprocess.Popen[bytes], ready: Callable[[], bool], *, delay: float = 0.0,
              timeout: float = 60.0, poll: float = 0.002) -> bool:
    """SIGKILL `proc` once `ready()` holds (then after `delay` s); True if it was still running then."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and not ready():
        if time.monotonic() > deadline:
            proc.kill()
            proc.communicate()
            raise AssertionError("the condition to kill at never came")
        time.sleep(poll)
    if delay:
        time.sleep(delay)
    alive = proc.poll() is None
    if alive:
        os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    return alive


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


# -- a store with generations, and client machines ---------------------------------------------------
Spec = dict[str, Any]  # path -> bytes/str (file 0644) | Mode | Symlink | None (dir 0755)


def spec_entries(spec: Spec) -> tuple[list[Entry], dict[str, bytes]]:
    """Manifest entries of a spec (parent directories 0755 added) and the contents by object id."""
    entries: dict[str, Entry] = {}
    blobs: dict[str, bytes] = {}
    for path, value in spec.items():
        parts = path.split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            entries.setdefault(d, Entry(d, "dir", 0o755))
        if value is None:
            entries[path] = Entry(path, "dir", 0o755)
        elif isinstance(value, Symlink):
            entries[path] = Entry(path, "symlink", 0o777, target=value.target)
        else:
            data, mode = (value.content, value.mode) if isinstance(value, Mode) else (value, 0o644)
            data = data.encode() if isinstance(data, str) else data
            blobs[object_id(data)] = data
            entries[path] = Entry(path, "file", mode, len(data), object_id(data), xxh(data))
    return list(entries.values()), blobs


def expected_state(spec: Spec) -> dict[bytes, Node]:
    """The tree_state() a client installing `spec` must have."""
    entries, blobs = spec_entries(spec)
    out: dict[bytes, Node] = {}
    for e in entries:
        key = os.fsencode(e.path)
        if e.kind == "dir":
            out[key] = ("dir", e.mode, b"")
        elif e.kind == "symlink":
            out[key] = ("symlink", 0, os.fsencode(e.target or ""))
        else:
            out[key] = ("file", e.mode, blobs[e.oid or ""])
    return out


def publish_entries(store: Store, key: SecretKey, entries: list[Entry], blobs: dict[str, bytes], *, number: int,
                    channel: str = "stable", policy: Policy = Policy(), expires: str | None = None,
                    ref: bool = True, message: str | None = None) -> bytes:
    """Objects, manifest, signed record, ref: the manager's publish order, through regen.store."""
    for data in blobs.values():
        store.put(data)
    data, moid, _ = build_manifest(entries)
    store.put(data)
    gen = Generation(store.store_id, channel, number, moid, format_time(utcnow()), number - 1 or None,
                     message or f"generation {number}", policy, {}, expires)
    env = store.write_generation(gen, [key])
    if ref:
        store.set_ref(channel, env)
    return env


def publish(store: Store, key: SecretKey, spec: Spec, *, number: int, **kw: Any) -> bytes:
    entries, blobs = spec_entries(spec)
    return publish_entries(store, key, entries, blobs, number=number, **kw)


NO_FINDINGS = {"inventory": {"cpu": {"count": 2}}, "findings": []}


@dataclass
class Client:
    """One managed machine in a folder: root/, state/, regend.toml; driven by real `regend` processes."""

    base: Path
    store_url: str
    pub_key: Path
    extra: dict[str, Any] = field(default_factory=dict)
    host: str = "client-01"
    root_dir: Path | None = None  # default: base/root (another filesystem's mount point, e.g.)

    @property
    def root(self) -> Path:
        return self.root_dir or self.base / "root"

    @property
    def state(self) -> Path:
        return self.base / "state"

    @property
    def config(self) -> Path:
        return self.base / "regend.toml"

    def write_config(self, **extra: Any) -> None:
        self.extra.update(extra)
        top = {"store": self.store_url, "channel": "stable", "host": self.host, "root": str(self.root),
               "state_dir": str(self.state), "trusted_keys": [str(self.pub_key)]}
        top.update({k: v for k, v in self.extra.items() if not isinstance(v, dict)})
        lines = [f"{k} = {json.dumps(v)}" for k, v in top.items()]
        for k, v in self.extra.items():
            if isinstance(v, dict):
                lines.append(f"[{k}]")
                lines += [f"{kk} = {json.dumps(vv)}" for kk, vv in v.items()]
        self.config.write_text("\n".join(lines) + "\n")

    def regend(self, *args: str, exit_code: int | None = 0, env: dict[str, str] | None = None,
               timeout: float = 120) -> Any:
        hw = self.base / "hardware.json"
        if not hw.exists():
            hw.write_text(json.dumps(NO_FINDINGS))
        full_env = {"REGEN_TEST_HARDWARE": str(hw), **(env or {})}
        return run_cli("regend", *args, "--config", str(self.config), exit_code=exit_code, env=full_env,
                       timeout=timeout)

    def spawn(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        hw = self.base / "hardware.json"
        if not hw.exists():
            hw.write_text(json.dumps(NO_FINDINGS))
        return spawn("regend", *args, "--config", str(self.config),
                     env={"REGEN_TEST_HARDWARE": str(hw), **(env or {})})

    def tree(self) -> dict[bytes, Node]:
        return tree_state(self.root)

    def last_report(self) -> dict[str, Any]:
        """The newest report regend saved in its state dir."""
        reports = sorted((self.state / "reports").glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
        assert reports, "regend saved no report"
        return json.loads(reports[-1].read_text())

    def quarantined(self) -> list[bytes]:
        """The content of every file kept in quarantine."""
        q = self.state / "quarantine"
        return [p.read_bytes() for p in q.rglob("*") if p.is_file() and not p.is_symlink()
                and p.parent != q] if q.exists() else []

    def temp_files(self) -> list[str]:
        return [str(p) for p in self.root.rglob(".regen-tmp-*")]


@pytest.fixture
def make_client(tmp_path: Path, key_files: tuple[Path, Path]) -> Callable[..., Client]:
    def factory(store_url: str, name: str = "client", **extra: Any) -> Client:
        c = Client(tmp_path / name, store_url, key_files[1])
        c.root.mkdir(parents=True, exist_ok=True)
        c.write_config(**extra)
        return c
    return factory
