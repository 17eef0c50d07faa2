#!/usr/bin/env python3
"""Time `regen snapshot` of an N-file tree on a file:// store: first, unchanged, and a few files changed.

    .venv/bin/python contrib/bench_snapshot.py [--files 20000] [--dir /tmp/regen-bench] [--keep]

Each snapshot is a real subprocess of the installed `regen` (start-up included). The tree's
mtimes are set an hour back, as for a reference tree that is not being edited while it is
snapshotted (files written in the last 2 s are always re-read: the racy-timestamp rule).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def make_tree(root: Path, files: int, seed: int = 1) -> int:
    rng = random.Random(seed)
    total = 0
    per_dir = 100
    for i in range(files):
        d = root / f"d{i // (per_dir * 20):03d}" / f"s{(i // per_dir) % 20:02d}"
        if i % per_dir == 0:
            d.mkdir(parents=True, exist_ok=True)
        size = rng.choice((0, 100, 1000, 4000, 16000, 64000))
        data = rng.randbytes(size // 2) * 2  # half-compressible
        (d / f"f{i:06d}.bin").write_bytes(data)
        total += len(data)
    hour_ago = time.time_ns() - 3600 * 10**9
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + dirnames:
            os.utime(os.path.join(dirpath, name), ns=(hour_ago, hour_ago))
    return total


def regen(*args: str, env: dict[str, str]) -> tuple[float, dict[str, object]]:
    t0 = time.perf_counter()
    proc = subprocess.run([str(BIN / "regen"), *args], capture_output=True, text=True, env=env, check=True)
    return time.perf_counter() - t0, json.loads(proc.stdout) if proc.stdout.startswith("{") else {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--dir", default=None)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    base = Path(a.dir or tempfile.mkdtemp(prefix="regen-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        size = make_tree(base / "ref", a.files)
        print(f"tree: {a.files} files, {size / 1e6:.1f} MB, built in {time.perf_counter() - t0:.1f}s")
        env = {**os.environ, "XDG_CACHE_HOME": str(base / "cache"), "REGEN_STORE": f"file://{base}/store",
               "REGEN_KEY": str(base / "admin.key")}
        regen("init", f"file://{base}/store", env=env)
        regen("keygen", str(base / "admin.key"), env=env)
        snap = ("snapshot", str(base / "ref"), "-c", "bench", "--publish", "--json", "-m")
        for label, prepare in (("first", None), ("unchanged", None), ("10 files changed", "change")):
            if prepare:
                for i in range(0, a.files, max(1, a.files // 10))[:10]:
                    p = next((base / "ref").rglob(f"f{i:06d}.bin"))
                    p.write_bytes(p.read_bytes() + b"changed")
                    hour_ago = time.time_ns() - 3600 * 10**9
                    os.utime(p, ns=(hour_ago, hour_ago))
            secs, res = regen(*snap, label, env=env)
            print(f"{label:>18}: {secs:6.2f}s  read {res['files_hashed']} files, reused {res['files_reused']}, "
                  f"uploaded {res['uploaded']['objects']} objects ({res['uploaded']['bytes'] / 1e6:.1f} MB)")  # type: ignore[index]
    finally:
        if not a.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
