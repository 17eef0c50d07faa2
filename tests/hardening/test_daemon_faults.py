"""Faults around a client run: a store that vanishes or crawls, a full disk, two runs at once, a
damaged index. Each ends in a clear report and a state the next run converges from.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zstandard

from regen.store import Policy, Store, layout, object_id
from regen.store.errors import EXIT_DAMAGED, EXIT_UNREACHABLE

from ..conftest import Mode, make_tree
from .conftest import Client, Recorder, expected_state, files_in, publish, tree_state

POLICY = Policy(preserve=("home",))


# -- a small tmpfs (we are root) ------------------------------------------------------------------
@pytest.fixture
def tmpfs() -> Iterator[Callable[[Path, str], Path]]:
    mounted: list[Path] = []

    def mount(path: Path, size: str) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        args = (["mount", "-o", f"remount,size={size}", str(path)] if path in mounted
                else ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)])
        res = subprocess.run(args, capture_output=True, text=True)
        if res.returncode != 0:  # these scenarios need root (a real small file system): fail, never skip
            pytest.fail(f"cannot mount a tmpfs for the disk-full scenarios ({' '.join(args)}): "
                        f"{res.stderr.strip()}", pytrace=False)
        if path not in mounted:
            mounted.append(path)
        return path

    yield mount
    for p in reversed(mounted):
        subprocess.run(["umount", "-l", str(p)], check=False)


def big_spec(n: int, size: int, seed: int = 1) -> dict[str, bytes | Mode]:
    rng = random.Random(seed)
    spec: dict[str, bytes | Mode] = {f"data/f{i:02}": rng.randbytes(size) for i in range(n)}
    spec["etc/app.conf"] = b"conf\n"
    spec["bin/app"] = Mode(b"#!/bin/sh\n", 0o755)
    return spec


def no_partial_files(c: Client, allowed: set[bytes]) -> None:
    """Every file at a managed path holds a whole content (old or new), and no temp file is left."""
    for path, (kind, _, data) in c.tree().items():
        if kind == "file":
            assert not path.rpartition(b"/")[2].startswith(b".regen-tmp-"), f"temp file left: {path!r}"
            assert data in allowed, f"half-written file at {path!r} ({len(data)} bytes)"


def contents(spec: dict) -> set[bytes]:  # type: ignore[type-arg]
    return {v.content if isinstance(v, Mode) else v for v in spec.values() if v is not None}


# -- disk full -------------------------------------------------------------------------------------
def test_disk_full_in_root(file_store: Store, signing_key, make_client, tmpfs, record: Recorder) -> None:
    """Scenario: the client root is a 2 MiB tmpfs and the generation needs 3 MiB."""
    spec = big_spec(6, 512 << 10)
    publish(file_store, signing_key, spec, number=1, policy=POLICY)
    c: Client = make_client(file_store.url)
    tmpfs(c.root, "2m")
    make_tree(c.root, {"home/alice/notes": b"alice's notes"})
    res = c.regend("run", "--once", exit_code=1)
    report = c.last_report()
    assert report["outcome"] == "failing" and any("space" in e.lower() for e in report["errors"]), report["errors"]
    assert "error:" in res.stdout and "Traceback" not in res.stderr, (res.stdout, res.stderr)
    no_partial_files(c, contents(spec) | {b"alice's notes"})
    tmpfs(c.root, "8m")  # space again: the next run completes
    c.regend("run", "--once")
    want = expected_state(spec)
    want.update({k: v for k, v in tree_state(c.root).items() if k.startswith(b"home")})
    assert c.tree() == want and c.tree()[b"home/alice/notes"][2] == b"alice's notes"
    record.intact(files_in(want))


def test_disk_full_in_state_dir(file_store: Store, signing_key, make_client, tmp_path: Path, tmpfs,
                                record: Recorder) -> None:
    """Scenario: the state dir (object cache) is a 4 MiB tmpfs and the generation needs 6 MiB: refused
    before anything is fetched or changed, with what is needed and what is free."""
    spec = big_spec(12, 512 << 10)
    publish(file_store, signing_key, spec, number=1, policy=POLICY)
    c: Client = make_client(file_store.url, limits={"min_free_bytes": "64K"})
    tmpfs(c.state, "4m")
    make_tree(c.root, {"home/alice/notes": b"alice's notes"})
    before = c.tree()
    res = c.regend("run", "--once", exit_code=1)
    errors = " ".join(c.last_report()["errors"])
    assert "needs" in errors and "free" in errors, errors
    assert "Traceback" not in res.stderr
    assert c.tree() == before
    tmpfs(c.state, "16m")
    c.regend("run", "--once")
    assert c.tree()[b"data/f00"] == ("file", 0o644, spec["data/f00"])
    record.intact(files_in(c.tree()))


def test_decompression_bomb_with_small_state_dir(file_store: Store, signing_key, make_client, tmpfs,
                                                 record: Recorder) -> None:
    """Scenario: an object inflating to 256 MiB for an 11-byte entry, state dir on an 8 MiB tmpfs: the
    fetch stops at the entry's size (or the disk), the run reports it, the disk is not left full."""
    publish(file_store, signing_key, {"etc/a.conf": b"a1\n"}, number=1, policy=POLICY)
    c: Client = make_client(file_store.url, limits={"min_free_bytes": "64K"})
    tmpfs(c.state, "8m")
    c.regend("run", "--once")
    data = b"small file\n"
    publish(file_store, signing_key, {"etc/a.conf": data}, number=2, policy=POLICY)
    path = Path(file_store.url.removeprefix("file://")) / layout.object_path(object_id(data))
    path.write_bytes(b"z" + zstandard.ZstdCompressor().compress(b"\0" * (256 << 20)))
    before = c.tree()
    res = c.regend("run", "--once", exit_code=None)
    # a damaged store: the machine may start, the update was refused
    assert res.returncode == EXIT_DAMAGED and "Traceback" not in res.stderr, (res.returncode, res.stderr[-2000:])
    errors = " ".join(c.last_report()["errors"])
    assert "larger than the" in errors and "11 bytes" in errors, errors  # stopped at the entry's size
    assert c.tree() == before
    assert shutil.disk_usage(c.state).free > 6 << 20, "the state dir was left full"
    record.intact(files_in(before))


def test_store_fetch_into_a_full_disk(file_store: Store, tmp_path: Path, tmpfs, record: Recorder) -> None:
    """Scenario (library): Store.fetch_many into a 1 MiB tmpfs: each object that does not fit is a
    collected error ("could not be written locally"), nothing is raised, no temp file is left."""
    blobs = [random.Random(i).randbytes(600 << 10) for i in range(3)]
    oids = [file_store.put(b) for b in blobs]
    dest = tmpfs(tmp_path / "small", "1m")
    one_at_a_time = Store.open(file_store.url, concurrency=1)  # (concurrent writers would share the space)
    result = one_at_a_time.fetch_many(oids, lambda oid: str(dest / oid), sizes={o: len(b) for o, b in zip(oids, blobs)})
    assert len(result.done) == 1 and len(result.errors) == 2, result
    assert all("could not be written locally" in e.one_line() for e in result.errors.values())
    assert sorted(os.listdir(dest)) == result.done  # the good one, whole; no .fetch- temp file
    assert (dest / result.done[0]).read_bytes() in blobs
    record.intact(1)


# -- a store server the test can stop, restart, slow down or stall ----------------------------------
class StoreServer:
    """Static HTTP over a store folder on a fixed loopback port, with faults on demand:
    `cut_after` object GETs then the server dies mid-body; `delay` seconds between 16 KiB chunks;
    `trickle` sends objects 64 bytes every 0.25 s (never silent long enough for a timeout);
    `stall` accepts and never answers; `endless` paths stream data forever."""

    CHUNK = 16 << 10

    def __init__(self, root: Path) -> None:
        self.root = root
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.delay = 0.0
        self.trickle = False
        self.stall = False
        self.cut_after: int | None = None
        self.endless: set[str] = set()
        self.object_gets = 0
        self._lock = threading.Lock()
        self._httpd: Any = None
        self._conns: set[socket.socket] = set()
        self._stopping = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        import http.server

        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                with server._lock:
                    server._conns.add(self.connection)
                try:
                    server._answer(self)
                except OSError:
                    pass
                finally:
                    with server._lock:
                        server._conns.discard(self.connection)

        self._stopping.clear()
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """The server goes away: listener closed, every open connection cut."""
        self._stopping.set()
        with self._lock:
            httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        with self._lock:
            for conn in list(self._conns):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _answer(self, h: Any) -> None:
        rel = h.path.split("?", 1)[0].lstrip("/")
        if self.stall:
            self._stopping.wait(120)
            return
        if rel in self.endless:
            h.send_response(200)
            h.send_header("Content-Type", "application/octet-stream")
            h.end_headers()
            while not self._stopping.is_set():
                h.wfile.write(b"x" * 4096)
                time.sleep(0.01)
            return
        path = (self.root / rel).resolve()
        if not path.is_relative_to(self.root.resolve()) or not path.is_file():
            h.send_response(404)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        data = path.read_bytes()
        cut = False
        if rel.startswith("objects/"):
            with self._lock:
                self.object_gets += 1
                cut = self.cut_after is not None and self.object_gets > self.cut_after
        h.send_response(200)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if cut:  # half of the body, then the server dies
            h.wfile.write(data[: len(data) // 2])
            h.wfile.flush()
            threading.Thread(target=self.stop, daemon=True).start()
            self._stopping.wait(10)
            return
        if self.trickle and rel.startswith("objects/"):
            for i in range(0, len(data), 64):
                if self._stopping.is_set():
                    return
                h.wfile.write(data[i:i + 64])
                h.wfile.flush()
                time.sleep(0.25)
            return
        for i in range(0, len(data), self.CHUNK):
            h.wfile.write(data[i:i + self.CHUNK])
            if self.delay:
                time.sleep(self.delay)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Store, StoreServer]]:
    store = Store.init(f"file://{tmp_path / 'served-store'}")
    server = StoreServer(tmp_path / "served-store")
    server.start()
    yield store, server
    server.stop()


def http_client(make_client, server: StoreServer, **extra: Any) -> Client:  # type: ignore[no-untyped-def]
    extra.setdefault("storage_options", {"timeout": 2})
    return make_client(server.url, failures={"max_consecutive": 100}, **extra)


@pytest.mark.parametrize("phase", ["install", "update"])
def test_store_vanishes_mid_download(served, signing_key, make_client, record: Recorder, phase: str) -> None:
    """Scenario: the HTTP store dies in the middle of an object download, then comes back."""
    store, server = served
    g1 = big_spec(16, 64 << 10, seed=1)
    publish(store, signing_key, g1, number=1, policy=POLICY)
    c = http_client(make_client, server)
    if phase == "update":
        c.regend("run", "--once")
        g2 = {**g1, **big_spec(16, 64 << 10, seed=2)}
        publish(store, signing_key, g2, number=2, policy=POLICY)
    goal = g2 if phase == "update" else g1
    before = c.tree()
    server.object_gets, server.cut_after = 0, 5
    res = c.regend("run", "--once", exit_code=None, timeout=90)
    assert not server._httpd, "the store did not go away during the run"
    assert res.returncode == (1 if phase == "install" else EXIT_UNREACHABLE) and "Traceback" not in res.stderr, res
    report = c.last_report()
    assert report["errors"] and report["generation_after"] == (None if phase == "install" else 1), report
    assert c.tree() == before  # nothing applied from a half-fetched generation
    no_partial_files(c, contents(goal) | contents(g1))
    partial_cache = [p for p in (c.state / "objects").rglob(".fetch-*")] if (c.state / "objects").exists() else []
    assert not partial_cache, partial_cache

    server.cut_after, server.object_gets = None, 0
    server.start()
    c.regend("run", "--once", timeout=90)
    assert c.tree() == expected_state(goal)
    assert server.object_gets < 16 + 1, "the next run fetched again what it already had"
    record.intact(files_in(c.tree()))


def test_stalled_store_times_out(served, signing_key, make_client, record: Recorder) -> None:
    """Scenario: the store accepts connections and never answers (timeout = 1 s): the run does not hang,
    repairs from the local cache, reports that it could not confirm the newest generation."""
    store, server = served
    publish(store, signing_key, {"etc/a.conf": b"a1\n", "bin/app": Mode(b"app", 0o755)}, number=1, policy=POLICY)
    c = http_client(make_client, server, storage_options={"timeout": 1})
    c.regend("run", "--once")
    c.regend("run", "--once")  # (copies back into the cache the objects the install moved: refill.py)
    (c.root / "etc/a.conf").write_bytes(b"drift")
    server.stall = True
    t0 = time.monotonic()
    res = c.regend("run", "--once", timeout=90, exit_code=EXIT_UNREACHABLE)  # a hang would hit this guard
    print(f"stalled store: the run ended after {time.monotonic() - t0:.1f} s")
    assert "could not confirm the newest generation" in res.stderr, res.stderr
    assert c.tree()[b"etc/a.conf"] == ("file", 0o644, b"a1\n")  # repaired offline, from the cache
    record.intact(files_in(c.tree()))


def test_slow_store_is_not_a_dead_store(served, signing_key, make_client, record: Recorder) -> None:
    """Scenario: 0.5 s between 16 KiB chunks with timeout = 2 s: slow, but the install completes."""
    store, server = served
    spec = big_spec(4, 40 << 10)
    publish(store, signing_key, spec, number=1, policy=POLICY)
    c = http_client(make_client, server)
    server.delay = 0.5
    c.regend("run", "--once", timeout=90)
    assert c.tree() == expected_state(spec)
    record.intact(files_in(c.tree()))


def test_trickling_store_is_cut_off(served, signing_key, make_client, record: Recorder) -> None:
    """Scenario: objects arrive 64 bytes every 0.25 s (256 bytes/s: never silent long enough for the
    2 s timeout; 40 KiB would take ~3 minutes each). Under min_rate (default 1024 bytes/s over the
    timeout), each transfer is cut: the run ends soon, nothing is applied, no partial file is left;
    with a normal server the next run installs."""
    store, server = served
    spec = big_spec(4, 40 << 10)
    publish(store, signing_key, spec, number=1, policy=POLICY)
    c = http_client(make_client, server)
    server.trickle = True
    t0 = time.monotonic()
    res = c.regend("run", "--once", exit_code=None, timeout=90)
    took = time.monotonic() - t0
    print(f"trickling store: the run ended after {took:.1f} s")
    assert res.returncode == 1 and "Traceback" not in res.stderr, (res.stdout, res.stderr)
    report = c.last_report()
    assert any("bytes/s" in e and "min_rate" in e for e in report["errors"]), report["errors"]
    assert report["generation_after"] is None and c.tree() == {}, report
    assert not list((c.state / "objects").rglob(".fetch-*")) if (c.state / "objects").exists() else True
    assert took < 60, took  # ~3 minutes per object without the cut
    server.trickle = False
    c.regend("run", "--once", timeout=90)
    assert c.tree() == expected_state(spec)
    record.intact(files_in(c.tree()))


def test_slow_store_large_ref(served, signing_key, make_client, record: Recorder) -> None:
    """Scenario: a legitimate 100 KB ref (a long message) arriving in slow 16 KiB pieces: read whole and
    accepted, not cut at the first piece (a short read would refuse it as "not valid JSON")."""
    store, server = served
    publish(store, signing_key, {"etc/a.conf": b"a1\n"}, number=1, policy=POLICY)
    c = http_client(make_client, server)
    c.regend("run", "--once")
    publish(store, signing_key, {"etc/a.conf": b"a2\n"}, number=2, policy=POLICY, message="m" * 100_000)
    server.delay = 0.05
    res = c.regend("run", "--once", timeout=90)
    assert not c.last_report()["errors"], (c.last_report()["errors"], res.stderr)
    assert c.tree()[b"etc/a.conf"] == ("file", 0o644, b"a2\n")
    record.intact(1)


def test_endless_ref_from_a_server(served, signing_key, make_client, record: Recorder) -> None:
    """Scenario: the ref is an endless stream: the read stops at the configured limit."""
    store, server = served
    publish(store, signing_key, {"etc/a.conf": b"a1\n"}, number=1, policy=POLICY)
    c = http_client(make_client, server, limits={"max_record_bytes": "64K"})
    c.regend("run", "--once")
    server.endless.add("refs/stable")
    before = c.tree()
    res = c.regend("run", "--once", exit_code=None, timeout=90)
    assert res.returncode == 0 and "over the limit" in " ".join(c.last_report()["errors"]), res
    assert c.tree() == before
    record.intact(files_in(before))


# -- two runs at once ---------------------------------------------------------------------------------
def test_two_regend_on_one_state_dir(file_store: Store, signing_key, make_client, record: Recorder) -> None:
    """Scenario: a second run while a first one works (held with SIGSTOP once it has its lock, like a
    slow run): refused with the holder's pid; with --wait it waits, then finds nothing left to do."""
    spec = big_spec(4, 64 << 10)
    publish(file_store, signing_key, spec, number=1, policy=POLICY)
    c: Client = make_client(file_store.url)
    first = c.spawn("run", "--once")
    waiter = None
    try:
        lock = c.state / "lock"
        deadline = time.monotonic() + 60
        while not (lock.exists() and lock.read_text().strip() == str(first.pid)):
            assert first.poll() is None and time.monotonic() < deadline, "the first run never took its lock"
            time.sleep(0.001)
        os.kill(first.pid, signal.SIGSTOP)
        second = c.regend("run", "--once", exit_code=1)
        line = second.stderr.strip().splitlines()[-1]
        assert line.startswith("regend: error: another regend run") and f"(pid {first.pid})" in line, line
        waiter = c.spawn("run", "--once", "--wait")
        time.sleep(0.5)
        assert waiter.poll() is None, "the --wait run did not wait"
    finally:
        os.kill(first.pid, signal.SIGCONT)
        out, err = first.communicate(timeout=90)
        if waiter is not None:
            wout, werr = waiter.communicate(timeout=90)
    assert first.returncode == 0, err
    assert waiter.returncode == 0 and wout.decode().startswith("ok:"), (wout, werr)
    assert c.tree() == expected_state(spec)
    record.intact(files_in(c.tree()))


# -- a damaged index ----------------------------------------------------------------------------------
def _truncate(p: Path) -> None:
    with open(p, "r+b") as fp:
        fp.truncate(p.stat().st_size // 3)


def _garbage(p: Path) -> None:
    p.write_bytes(random.Random(7).randbytes(p.stat().st_size or 8192))


def _header_only(p: Path) -> None:
    data = p.read_bytes()
    p.write_bytes(data[:100] + b"\0" * (len(data) - 100))


@pytest.mark.parametrize("damage", [_truncate, _garbage, _header_only], ids=["index-truncated", "index-garbage",
                                                                              "index-zeroed-pages"])
def test_damaged_index_set_aside_and_rebuilt(file_store: Store, signing_key, make_client, record: Recorder,
                                             damage: Callable[[Path], None]) -> None:
    """Scenario: index.db damaged, and a file changed without changing its size or mtime (only a full
    verify can see it): the damaged file is kept aside, the index rebuilt by a full verify, the stealthy
    change repaired and kept in quarantine, and rollback protection survives."""
    g1 = {"etc/a.conf": b"a1\n", "bin/app": Mode(b"app v1", 0o755)}
    publish(file_store, signing_key, g1, number=1, policy=POLICY)
    g2 = {**g1, "etc/a.conf": b"a2\n"}
    c: Client = make_client(file_store.url)
    c.regend("run", "--once")
    publish(file_store, signing_key, g2, number=2, policy=POLICY)
    c.regend("run", "--once")
    target = c.root / "bin/app"
    st = target.stat()
    target.write_bytes(b"app v9")  # same size
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    index = c.state / "index.db"
    for extra in ("index.db-wal", "index.db-shm"):
        (c.state / extra).unlink(missing_ok=True)
    damage(index)
    damaged = index.read_bytes()
    old = file_store.read_generation("stable", 1)  # and an attacker points the ref back at generation 1
    (Path(file_store.url.removeprefix("file://")) / layout.ref_path("stable")).write_bytes(old)

    res = c.regend("run", "--once", exit_code=None)
    assert res.returncode == 0 and "Traceback" not in res.stderr, res
    report = c.last_report()
    aside = [p for p in c.state.iterdir() if p.name.startswith("index.db.damaged-") and not p.name.endswith(("-wal", "-shm"))]
    assert len(aside) == 1 and aside[0].read_bytes() == damaged, aside  # kept, byte for byte
    assert any("set aside" in w for w in report["warnings"]), report["warnings"]
    assert report["steps"]["scan"]["verify"] is True, report["steps"]["scan"]
    assert any("older than generation 2" in e for e in report["errors"]), report["errors"]  # no rollback
    assert c.tree() == expected_state(g2)
    assert b"app v9" in c.quarantined()
    with sqlite3.connect(index) as db:
        assert db.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    record.intact(files_in(c.tree()))


def test_decompression_bomb_on_a_base_path(file_store: Store, signing_key, make_client, tmpfs,
                                           record: Recorder) -> None:
    """Scenario: the bomb again, on a path the policy restores only from the store (base), root on an
    8 MiB tmpfs: refused at the entry's size, the root never filled, the tree unchanged."""
    policy = Policy(base=("etc/**",))
    publish(file_store, signing_key, {"etc/a.conf": b"a1\n"}, number=1, policy=policy)
    c: Client = make_client(file_store.url)
    tmpfs(c.root, "8m")
    c.regend("run", "--once")
    data = b"small file\n"
    publish(file_store, signing_key, {"etc/a.conf": data}, number=2, policy=policy)
    path = Path(file_store.url.removeprefix("file://")) / layout.object_path(object_id(data))
    path.write_bytes(b"z" + zstandard.ZstdCompressor().compress(b"\0" * (256 << 20)))
    before = c.tree()
    res = c.regend("run", "--once", exit_code=None)
    assert "Traceback" not in res.stderr and c.tree() == before, res
    errors = " ".join(c.last_report()["errors"])
    assert "larger than the" in errors and "11 bytes" in errors, errors
    record.intact(files_in(before))
