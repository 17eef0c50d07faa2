"""Packed stores over HTTP: requests and bytes of a first install and a 1% update, loose store vs packed
store; the store's size after the bench's versions and the snapshot times next to restic's (same
tree, same points); and a big file changed by 1 MiB, regen next to casync and rsync.

    .venv/bin/python tests/bench/packs.py [--files 100000] [--big-mib 256] [--json out.json]
    contrib/bench.sh --packs [same options]

The store is served by the tests' web server (tests/servers.py: python's http.server with Range
support), which counts requests and the body bytes it sends: every number is the server's.
regen and regend are the installed commands, run as subprocesses (tests/e2e/conftest.py Site).
casync: `casync make` of both versions into one chunk store served by the same server, then
`casync extract --seed=<old version>` of the new one over HTTP. rsync: `rsync --no-W --stats`
of the new version onto the old one (the delta algorithm, as over ssh), "Total bytes sent".
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests import servers
from tests.bench.backends import _fixture, _TmpFactory
from tests.e2e.conftest import Site

PER_DIR = 100


def make_tree(ref: Path, n: int, rng: random.Random) -> list[Path]:
    """n files of 1-8 KiB (half compressible text, half random), PER_DIR per folder."""
    files = []
    for i in range(n):
        d = ref / f"d{i // PER_DIR:04d}"
        if i % PER_DIR == 0:
            d.mkdir(parents=True)
        p = d / f"f{i:06d}"
        size = rng.randint(1024, 8192)
        p.write_bytes(rng.randbytes(size) if i % 2 else (f"line {i} " * size)[:size].encode())
        files.append(p)
    return files


class Http:
    """Requests and body bytes the web server answered for one store prefix since `mark`."""

    def __init__(self, server: servers.HttpServer, prefix: str) -> None:
        self.server, self.prefix = server, prefix
        self._n, self._b = 0, 0

    def mark(self) -> None:
        self._n = len(self.server.log.since(0, self.prefix))
        self._b = self.server.log.bytes_sent(self.prefix)

    def since(self) -> tuple[int, int]:
        return len(self.server.log.since(0, self.prefix)) - self._n, self.server.log.bytes_sent(self.prefix) - self._b


def timed(fn: Any) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def bench_tree(http: servers.HttpServer, base: Path, n: int, packed: bool) -> dict[str, Any]:
    name = "packed" if packed else "loose"
    target = servers.http_target.__wrapped__(http)
    (base / f"tree-{name}").mkdir()
    site = Site(target, base / f"tree-{name}", f"bench-{name}")
    site.create(*(["--packs"] if packed else []))
    (site.tmp / "policy.toml").write_text('junk = "quarantine"\n')
    rng = random.Random(100)
    files = make_tree(site.ref, n, rng)
    first_s, _ = timed(lambda: site.snapshot("generation 1"))
    unchanged_s, _ = timed(lambda: site.snapshot("unchanged"))
    restic = Restic(base / f"restic-{name}", site.ref) if shutil.which("restic") else None
    if restic is not None:
        restic.backup("first")
        restic.backup("unchanged")
    site.install_client()
    wire = Http(http, target.prefix)
    wire.mark()
    secs, (report, _) = timed(site.run_once)
    assert report["outcome"] == "updated", report
    install = wire.since()
    for p in rng.sample(files, max(1, n // 100)):
        p.write_bytes(rng.randbytes(rng.randint(1024, 8192)))
    site.snapshot("1% changed")
    if restic is not None:
        restic.backup("1% changed")
    wire.mark()
    usecs, (report, _) = timed(site.run_once)
    assert report["outcome"] == "updated", report
    update = wire.since()
    site.assert_converged()
    store = Path(target.write_url.removeprefix("file://"))
    return {"store": name, "files": n, "install_requests": install[0], "install_bytes": install[1],
            "install_s": round(secs, 2), "update_requests": update[0], "update_bytes": update[1],
            "update_s": round(usecs, 2), "update_content_bytes": report["bytes_fetched"],
            "store_bytes": _du(store), "snapshot_first_s": round(first_s, 2),
            "snapshot_unchanged_s": round(unchanged_s, 2),
            **({"restic_bytes": _du(restic.repo), **{f"restic_{k}_s": round(v, 2) for k, v in restic.secs.items()}}
               if restic is not None else {})}


def _du(top: Path) -> int:
    return sum(f.stat().st_size for f in top.rglob("*") if f.is_file())


class Restic:
    """restic on the same reference tree at the same points: first, unchanged, after the 1% change
    (the store holds the same three versions as regen's)."""

    def __init__(self, repo: Path, tree: Path) -> None:
        self.repo, self.tree = repo, tree
        self.env = {**os.environ, "RESTIC_PASSWORD": "bench", "RESTIC_REPOSITORY": str(repo)}
        self.secs: dict[str, float] = {}
        subprocess.run(["restic", "init", "-q"], env=self.env, check=True, capture_output=True)

    def backup(self, what: str) -> None:
        secs, _ = timed(lambda: subprocess.run(
            ["restic", "backup", "-q", "--cache-dir", str(self.repo.parent / f"{self.repo.name}-cache"),
             str(self.tree)], env=self.env, check=True, capture_output=True))
        self.secs[{"first": "first", "unchanged": "unchanged"}.get(what, "update")] = secs


def bench_big(http: servers.HttpServer, base: Path, mib: int) -> list[dict[str, Any]]:
    old = bytearray(os.urandom(mib << 20))  # (the kernel's generator: 256 MiB in a second)
    new = bytearray(old)
    new[len(new) // 2: len(new) // 2 + (1 << 20)] = os.urandom(1 << 20)
    rows = []
    # regen: a packed store, the client installed the old version, then updates
    target = servers.http_target.__wrapped__(http)
    (base / "big-regen").mkdir()
    site = Site(target, base / "big-regen", "bench-big")
    site.create("--packs")
    (site.tmp / "policy.toml").write_text('junk = "quarantine"\n')
    (site.ref / "var").mkdir(parents=True)
    (site.ref / "var" / "image.bin").write_bytes(old)
    site.snapshot("old")
    site.install_client()
    assert site.run_once()[0]["outcome"] == "updated"
    (site.ref / "var" / "image.bin").write_bytes(new)
    site.snapshot("new")
    wire = Http(http, target.prefix)
    wire.mark()
    secs, (report, _) = timed(site.run_once)
    assert report["outcome"] == "updated", report
    n, b = wire.since()
    rows.append({"tool": "regen (packed store, HTTP)", "requests": n, "bytes": b, "seconds": round(secs, 2)})
    # casync: one chunk store holding both versions, served by the same web server
    if shutil.which("casync"):
        served = http.root / f"casync-{os.getpid()}"
        served.mkdir()
        work = base / "big-casync"
        work.mkdir()
        (work / "old.bin").write_bytes(old)
        (work / "new.bin").write_bytes(new)
        for v in ("old", "new"):
            subprocess.run(["casync", "make", f"--store={served}/store.castr", f"{served}/{v}.caibx",
                            str(work / f"{v}.bin")], check=True, capture_output=True)
        wire = Http(http, served.name)
        wire.mark()
        url = f"{http.base}/{served.name}"
        secs, _ = timed(lambda: subprocess.run(
            ["casync", "extract", f"--store={url}/store.castr", f"--seed={work / 'old.bin'}", f"{url}/new.caibx",
             str(work / "out.bin")], check=True, capture_output=True))
        assert (work / "out.bin").read_bytes() == new
        n, b = wire.since()
        rows.append({"tool": "casync extract --seed (HTTP)", "requests": n, "bytes": b, "seconds": round(secs, 2)})
    if shutil.which("rsync"):
        work = base / "big-rsync"
        work.mkdir()
        (work / "src.bin").write_bytes(new)
        (work / "dst.bin").write_bytes(old)
        secs, proc = timed(lambda: subprocess.run(["rsync", "--no-W", "-I", "--stats", str(work / "src.bin"),
                                                    str(work / "dst.bin")], check=True, capture_output=True,
                                                   text=True))
        sent = int(re.search(r"Total bytes sent: ([\d,.]+)", proc.stdout).group(1).replace(",", "").replace(".", ""))
        rows.append({"tool": "rsync --no-W (bytes sent)", "requests": 1, "bytes": sent, "seconds": round(secs, 2)})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--big-mib", type=int, default=256)
    ap.add_argument("--skip-loose", action="store_true", help="measure only the packed store (the loose one "
                                                               "makes one request per file)")
    ap.add_argument("--latency-ms", type=float, default=0.0,
                    help="every answer of the web server waits this long first (a far-away server)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    for var in [k for k in os.environ if k.startswith(("REGEN_", "FSSPEC_", "AWS_"))]:
        del os.environ[var]
    out: dict[str, Any] = {"trees": [], "big": []}
    with tempfile.TemporaryDirectory(prefix="regen-bench-packs-") as tmp, contextlib.ExitStack() as stack:
        base = Path(tmp)
        os.environ["HOME"] = str(base / "home")
        http = stack.enter_context(_fixture(servers.http_server, _TmpFactory(base)))
        http.latency = args.latency_ms / 1000
        for packed in ([] if not args.files else [True] if args.skip_loose else [False, True]):
            row = bench_tree(http, base, args.files, packed)
            out["trees"].append(row)
            print(f"{row['store']}: {row}", file=sys.stderr)
        if args.big_mib:
            out["big"] = bench_big(http, base, args.big_mib)
    print(f"\n{args.files:,} files over HTTP (python http.server with Range, {args.latency_ms:g} ms added per "
          "request), counted by the server\n")
    print("| store | install requests | install MB | install s | 1% update requests | update MB | update s | "
          "store MB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in out["trees"]:
        print(f"| {r['store']} | {r['install_requests']:,} | {r['install_bytes'] / 1e6:.1f} | {r['install_s']} | "
              f"{r['update_requests']:,} | {r['update_bytes'] / 1e6:.2f} | {r['update_s']} | "
              f"{r['store_bytes'] / 1e6:.1f} |")
    if any("restic_bytes" in r for r in out["trees"]):
        print("\nStore after the three versions (first, unchanged, 1% changed) and snapshot times, next to "
              "restic on the same tree at the same points\n")
        print("| store | store MB | restic repo MB | store / restic | first snapshot s (restic) | ratio | "
              "unchanged snapshot s (restic) | ratio |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for r in out["trees"]:
            if "restic_bytes" in r:
                print(f"| {r['store']} | {r['store_bytes'] / 1e6:.1f} | {r['restic_bytes'] / 1e6:.1f} | "
                      f"{r['store_bytes'] / r['restic_bytes']:.2f} | {r['snapshot_first_s']} "
                      f"({r['restic_first_s']}) | {r['snapshot_first_s'] / r['restic_first_s']:.2f} | "
                      f"{r['snapshot_unchanged_s']} ({r['restic_unchanged_s']}) | "
                      f"{r['snapshot_unchanged_s'] / r['restic_unchanged_s']:.2f} |")
    if out["big"]:
        print(f"\n1 MiB changed in the middle of a {args.big_mib} MiB random file: what the client side costs\n")
        print("| tool | requests | MB transferred | seconds |")
        print("| --- | --- | --- | --- |")
        for r in out["big"]:
            print(f"| {r['tool']} | {r['requests']:,} | {r['bytes'] / 1e6:.2f} | {r['seconds']} |")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
