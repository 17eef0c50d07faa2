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


# -- many objects that cannot be fetched --------------------------------------------------------------
def rss_bytes() -> int:
    with open("/proc/self/statm") as fp:
        return int(fp.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_failed_fetches_hold_bounded_memory(file_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """15,000 objects the store lacks: the failures are counted and a few kept as examples; the
    memory held does not grow with their number (it held ~10 KB per failure: 1 M -> 9.5 GiB)."""
    from regen.store import object_id

    n = 15_000
    oids = [object_id(f"absent {i}".encode()) for i in range(n)]
    dest = tmp_path / "cache"
    dest.mkdir()
    small = file_store.fetch_many(oids[:1000], lambda o: str(dest / o))  # warm up allocators and the pool
    before = rss_bytes()
    result = file_store.fetch_many(oids, lambda o: str(dest / o))
    grown = rss_bytes() - before
    assert small.failed == 1000 and result.failed == n and result.done == []
    assert len(result.errors) <= 20 and all(e.__traceback__ is None for e in result.errors.values())
    assert grown < 30 << 20, f"RSS grew by {grown >> 20} MiB for {n} failed fetches"


def store_lacking_every_object(tmp_path: Path, n: int) -> Path:
    """A signed generation of `n` files whose objects the store lacks; returns regend.toml."""
    from regen.store import (
        Entry,
        Generation,
        Policy,
        Store,
        build_manifest,
        format_time,
        generate,
        object_id,
        utcnow,
        xxh,
    )

    store = Store.init(f"file://{tmp_path / 'store'}")
    key = generate()
    (tmp_path / "admin.key.pub").write_text(key.public.text())
    entries = [Entry("d", "dir", 0o755)]
    for i in range(n):
        data = f"content {i}\n".encode()
        entries.append(Entry(f"d/f{i:07d}", "file", 0o644, len(data), object_id(data), xxh(data)))
    data, moid, _ = build_manifest(entries)
    store.put(data)
    gen = Generation(store.store_id, "stable", 1, moid, format_time(utcnow()), None, "g", Policy(), {}, None)
    store.set_ref("stable", store.write_generation(gen, [key]))
    (tmp_path / "root").mkdir()
    conf = tmp_path / "regend.toml"
    conf.write_text(f'store = "{store.url}"\nchannel = "stable"\nhost = "h"\nroot = "{tmp_path / "root"}"\n'
                    f'state_dir = "{tmp_path / "state"}"\ntrusted_keys = ["{tmp_path / "admin.key.pub"}"]\n')
    return conf


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_a_signal_stops_a_run_within_a_second(tmp_path: Path, signame: str) -> None:
    """A run fetching 50,000 objects the store lacks gets SIGINT/SIGTERM: it exits within a second
    with 128+N, its report saved."""
    import json
    import signal
    import subprocess
    import time

    from ..conftest import argv_of
    from .conftest import NO_FINDINGS

    conf = store_lacking_every_object(tmp_path, 50_000)
    hw = tmp_path / "hw.json"
    hw.write_text(json.dumps(NO_FINDINGS))
    proc = subprocess.Popen([*argv_of("regend"), "run", "--once", "--config", str(conf)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "REGEN_TEST_HARDWARE": str(hw)})
    objects = tmp_path / "state" / "objects"
    deadline = time.monotonic() + 60
    while not (objects.exists() and any(objects.iterdir())) and proc.poll() is None:  # fetching has begun
        assert time.monotonic() < deadline, "the run never started fetching"
        time.sleep(0.01)
    sent = time.monotonic()
    proc.send_signal(getattr(signal, signame))
    out, err = proc.communicate(timeout=60)
    took = time.monotonic() - sent
    assert proc.returncode == 128 + getattr(signal, signame), (proc.returncode, err[-500:])
    assert took < 1.0, f"{signame} took {took:.2f} s to stop the run"
    assert f"stopped by {signame}".encode() in err and b"Traceback" not in err, err[-500:]
    assert list((tmp_path / "state" / "reports").glob("*.json"))
