"""Bandwidth caps (issue 17): max_rate for what a client downloads, max_upload_rate (regen
snapshot --limit-upload) for what is uploaded -- paced across threads, real bytes on a real store."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from regen.store import Store
from regen.store.errors import InvalidInput
from regen.store.throttle import Throttle
from tests.conftest import make_tree, run_cli


def test_throttle_paces_bytes_to_the_rate() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s
    t = Throttle(1000.0, clock=lambda: now[0], sleep=sleep)
    t.take(500)
    t.take(1500)
    assert slept == [0.5, 1.5] and now[0] == 2.0
    now[0] += 10  # idle time is not saved up for a burst
    t.take(100)
    assert slept[-1] == pytest.approx(0.1)


def test_max_rate_caps_downloads(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    admin = Store.init(url)
    oids = [admin.put(os.urandom(100_000)) for _ in range(4)]  # ~400 KB stored (incompressible)
    capped = Store.open(url, {"max_rate": "200K"})
    t0 = time.monotonic()
    result = capped.fetch_many(oids, lambda oid: str(tmp_path / oid))
    took = time.monotonic() - t0
    assert len(result.done) == 4 and took >= 1.5, took  # 400 KB at 200 KiB/s: ~2 s
    assert Store.open(url, {"max_rate": 0}).backend.counters.caps == {}


@pytest.mark.parametrize("bad", ["fast", -5, True])
def test_max_rate_must_be_a_rate(tmp_path: Path, bad: object) -> None:
    with pytest.raises(InvalidInput) as info:
        Store.open(f"file://{tmp_path}", {"max_rate": bad})
    assert "max_rate" in str(info.value)


def test_snapshot_limit_upload(tmp_path: Path, key_files: tuple[Path, Path]) -> None:
    url = f"file://{tmp_path / 'store'}"
    Store.init(url)
    src = make_tree(tmp_path / "src", {f"f{i}": os.urandom(100_000) for i in range(3)})
    t0 = time.monotonic()
    run_cli("regen", "snapshot", str(src), "--store", url, "--key", str(key_files[0]), "-c", "stable", "-m", "x",
            "--limit-upload", "150K", "-q")
    took = time.monotonic() - t0
    assert took >= 1.5, took  # 300 KB at 150 KiB/s: ~2 s, whatever else the snapshot costs
