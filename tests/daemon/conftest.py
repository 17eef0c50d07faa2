"""Fixtures of the daemon tests: publish dict-spec trees as signed generations, and a client machine.

A *spec* is what tests/conftest.make_tree takes: path -> bytes/str (file 0644), Mode (file with
mode), Symlink, None (directory). `publish()` turns one into objects, a manifest, a signed
generation and the ref, in the publish order the manager uses, through regen.store only.
`Client` is one managed machine: a root, a state dir and a regend.toml, driven either by real
`regend` subprocesses (file:// stores) or in-process through the Agent (memory:// stores,
and the injected FakeProbe).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from regen.daemon.config import load_config
from regen.daemon.gate.hardware import FakeProbe
from regen.daemon.run.agent import Agent, RunOptions, RunResult
from regen.store import (
    Entry,
    Generation,
    HardwareFinding,
    Overlay,
    Policy,
    SecretKey,
    Store,
    build_manifest,
    format_time,
    object_id,
    open_store,
    utcnow,
    xxh,
)
from tests.conftest import Mode, Symlink, make_tree, run_cli

Spec = dict[str, Any]


def spec_entries(spec: Spec) -> tuple[list[Entry], dict[str, bytes]]:
    """Manifest entries for a spec (parent directories 0755 added) and the contents by object id."""
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
            oid = object_id(data)
            blobs[oid] = data
            entries[path] = Entry(path, "file", mode, len(data), oid, xxh(data))
    return list(entries.values()), blobs


def put_tree(store: Store, spec: Spec) -> str:
    entries, blobs = spec_entries(spec)
    for data in blobs.values():
        store.put(data)
    data, moid, _ = build_manifest(entries)
    store.put(data)
    return moid


def publish(store: Store, key: SecretKey, spec: Spec, *, number: int, channel: str = "stable",
            policy: Policy | None = None, expires: str | None = None, ref: bool = True) -> Generation:
    moid = put_tree(store, spec)
    gen = Generation(store.store_id, channel, number, moid, format_time(utcnow()), number - 1 or None,
                     f"generation {number}", policy or Policy(), {}, expires)
    env = store.write_generation(gen, [key])
    if ref:
        store.set_ref(channel, env)
    return gen


def publish_overlay(store: Store, key: SecretKey, host: str, spec: Spec | None, *, number: int) -> Overlay:
    moid = put_tree(store, spec) if spec is not None else None
    ov = Overlay(store.store_id, host, number, moid, format_time(utcnow()), "overlay")
    store.write_overlay(ov, [key])
    return ov


def expected(spec: Spec) -> dict[str, Any]:
    """What `snapshot()` of a tree built from `spec` gives (parents included)."""
    entries, blobs = spec_entries(spec)
    out: dict[str, Any] = {}
    for e in entries:
        if e.kind == "dir":
            out[e.path] = ("dir", e.mode)
        elif e.kind == "symlink":
            out[e.path] = ("symlink", e.target)
        else:
            assert e.oid is not None
            out[e.path] = ("file", e.mode, blobs[e.oid])
    return out


def snapshot(root: Path, skip: Callable[[str], bool] = lambda p: False) -> dict[str, Any]:
    """The tree as values: path -> ("dir", mode) | ("file", mode, bytes) | ("symlink", target)."""
    out: dict[str, Any] = {}
    for dirpath, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            if skip(rel):
                if name in dirs:
                    dirs.remove(name)
                continue
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("symlink", os.readlink(full))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode))
            else:
                out[rel] = ("file", stat.S_IMODE(st.st_mode), Path(full).read_bytes())
    return out


def fingerprint(*tops: Path) -> dict[str, Any]:
    """Every path below `tops` with its kind, mode, size, mtime_ns and content hash (dirs included).
    A top that is a file or a symlink is itself (never followed: a dangling symlink is still there)."""
    def leaf(full: str) -> tuple[Any, ...]:
        st = os.lstat(full)
        digest = (hashlib.sha256(Path(full).read_bytes()).hexdigest() if stat.S_ISREG(st.st_mode)
                  else os.readlink(full) if stat.S_ISLNK(st.st_mode) else None)
        return (st.st_mode, st.st_size, st.st_mtime_ns, digest)

    out: dict[str, Any] = {}
    for top in tops:
        if not os.path.lexists(top):
            out[str(top)] = None
            continue
        if not stat.S_ISDIR(os.lstat(top).st_mode):
            out[str(top)] = leaf(str(top))
            continue
        for dirpath, dirs, files in os.walk(top):
            st = os.lstat(dirpath)
            out[dirpath] = ("dir", st.st_mode, st.st_mtime_ns, sorted(dirs + files))
            for name in files + [d for d in dirs if os.path.islink(os.path.join(dirpath, d))]:
                out[os.path.join(dirpath, name)] = leaf(os.path.join(dirpath, name))
    return out


def index_mismatches(c: "Client", skip: Callable[[str], bool] = lambda p: False) -> list[str]:
    """Paths where the index and the disk disagree (kind, mode, size, inode, mtime, ctime, content)."""
    from regen.daemon.tree.index import open_index_readonly
    from regen.store import xxh as xxh_of

    idx = open_index_readonly(str(c.state))
    assert idx is not None
    try:
        rows = {r.path: r for r in idx.rows()}
    finally:
        idx.close()
    disk = {p for p in snapshot(c.root, skip) if ".regen-tmp-" not in p}
    bad = sorted(set(rows) ^ disk)
    for path in disk & set(rows):
        r, st = rows[path], os.lstat(c.root / path)
        facts = (stat.S_IMODE(st.st_mode), st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
        if r.kind == "symlink":
            ok = r.target == os.readlink(c.root / path) and (st.st_ino, st.st_mtime_ns) == (r.inode, r.mtime_ns)
        else:
            ok = (r.mode, r.inode, r.mtime_ns, r.ctime_ns) == facts
        if ok and r.kind == "file":
            ok = r.size == st.st_size and r.xxh == xxh_of((c.root / path).read_bytes())
        if not ok:
            bad.append(path)
    return bad


NO_FINDINGS = {"inventory": {"cpu": {"count": 2}}, "findings": []}


@dataclass
class Client:
    """One managed machine in tmp_path: root, state dir, keys, regend.toml."""

    base: Path
    store_url: str
    key_file: Path
    host: str = "client-01"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.base / "root"

    @property
    def state(self) -> Path:
        return self.base / "state"

    @property
    def config_path(self) -> Path:
        return self.base / "regend.toml"

    def write_config(self, **extra: Any) -> Path:
        self.extra.update(extra)
        lines = [f"store = {json.dumps(self.store_url)}", 'channel = "stable"', f"host = {json.dumps(self.host)}",
                 f"root = {json.dumps(str(self.root))}", f"state_dir = {json.dumps(str(self.state))}",
                 f"trusted_keys = [{json.dumps(str(self.key_file))}]"]
        tables: list[str] = []
        for k, v in self.extra.items():
            if isinstance(v, dict):
                tables.append(f"[{k}]")
                tables.extend(f"{kk} = {json.dumps(vv)}" for kk, vv in v.items())
            else:
                lines.append(f"{k} = {json.dumps(v)}")
        self.config_path.write_text("\n".join(lines + tables) + "\n")
        return self.config_path

    def hardware(self, data: dict[str, Any]) -> Path:
        p = self.base / "hardware.json"
        p.write_text(json.dumps(data))
        return p

    # -- real subprocesses ------------------------------------------------------------------
    def regend(self, *args: str, exit_code: int | None = 0, env: dict[str, str] | None = None,
               hardware: dict[str, Any] | None = None) -> Any:
        full_env = {"REGEN_TEST_HARDWARE": str(self.hardware(hardware or NO_FINDINGS))}
        full_env.update(env or {})
        return run_cli("regend", *args, "--config", str(self.config_path), exit_code=exit_code, env=full_env,
                       timeout=120)

    # -- in process -------------------------------------------------------------------------
    def agent(self, probe: Any = None, opened: list[Store] | None = None) -> Agent:
        """An in-process agent; every store it opens is appended to `opened` (to read its counters)."""
        cfg = load_config(str(self.config_path), {})

        def factory(c: Any, config: Any) -> Store:
            store = open_store(c.store, dict(c.storage_options), config=config)
            if opened is not None:
                opened.append(store)
            return store
        return Agent(cfg, probe or FakeProbe({"cpu": {"count": 2}}), store_factory=factory)

    def run(self, *, verify: bool = False, probe: Any = None, opened: list[Store] | None = None) -> RunResult:
        return self.agent(probe, opened).run(RunOptions(verify=verify))

    def tree(self) -> dict[str, Any]:
        return snapshot(self.root)


@pytest.fixture
def make_client(tmp_path: Path, key_files: tuple[Path, Path]) -> Callable[..., Client]:
    def factory(store_url: str, name: str = "client", host: str = "client-01", **extra: Any) -> Client:
        c = Client(tmp_path / name, store_url, key_files[1], host)
        c.root.mkdir(parents=True)
        c.write_config(**extra)
        return c
    return factory


@pytest.fixture
def client(make_client: Callable[..., Client], file_store: Store) -> Client:
    """A client of the test's file:// store (usable by real regend subprocesses)."""
    return make_client(file_store.url)


@pytest.fixture
def mem_client(make_client: Callable[..., Client], mem_store: Store) -> Client:
    """A client of the test's memory:// store (in-process runs only: memory:// is per process)."""
    return make_client(mem_store.url)


def dead_disk() -> dict[str, Any]:
    """A probe result with a failed, unusable disk (the start must be refused)."""
    f = HardwareFinding("disk /dev/sda", "fail", "SMART says the disk is failing", {"smartctl_status": 8}, False)
    return {"inventory": {"cpu": {"count": 2}}, "findings": [f.as_dict()]}


__all__ = ["Client", "Mode", "Symlink", "dead_disk", "expected", "fingerprint", "make_tree", "publish",
           "publish_overlay", "put_tree", "snapshot", "spec_entries"]
