"""regen on each real backend: a no-change run and a 1%-changed update of a 2,000-file tree.

    .venv/bin/python tests/bench/backends.py [--files 2000] [--repeat 3] [--json out.json]

Starts the same loopback servers as the tests (tests/servers.py: moto S3, Samba smbd, OpenSSH
sshd, python http.server; needs root for smbd and the Debian packages contrib/test.sh
installs). For each backend: `regen init`, `regen snapshot --publish` of a tree of N files
(1-8 KiB, 50 per folder), `regend run --once` installs a client; then, --repeat times each,
a run with nothing to do, and an update after 1% of the files changed and were published.
Every command is the installed `regen`/`regend` as a subprocess (times include interpreter
start, about 0.3 s); the hardware probe is the injected fake (REGEN_TEST_HARDWARE), so the
numbers are the store's and regend's, not psutil's.

Requests are counted server-side: s3 and http from the servers' request logs (every
request); smb, sftp and file from the atimes of the store's files on the server's disk
(each file read counts once however often it was read; folders listed are counted apart).
"wire KiB" is the stored (compressed) size of everything read; "content KiB" what regend
reports it fetched (bytes_fetched).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from regen.store import open_backend  # noqa: E402

from tests import servers  # noqa: E402
from tests.e2e.conftest import Site, Traffic, Wire, atime_works  # noqa: E402

BACKENDS = ("file", "s3", "smb", "sftp", "http")
PER_DIR = 50


class _TmpFactory:
    """What the server fixtures want of pytest's tmp_path_factory."""

    def __init__(self, base: Path) -> None:
        self.base = base

    def mktemp(self, name: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.base))


@contextlib.contextmanager
def _fixture(fn: Any, *args: Any) -> Iterator[Any]:
    gen = fn.__wrapped__(*args)
    try:
        yield next(gen)
    finally:
        next(gen, None)


@dataclass
class Row:
    backend: str
    counted: str
    files: int = 0
    install_s: float = 0.0
    nochange_s: list[float] = field(default_factory=list)
    nochange: Traffic | None = None
    update_s: list[float] = field(default_factory=list)
    update: Traffic | None = None
    update_changed: int = 0
    objects_fetched: int = 0
    content_bytes: int = 0
    wire_bytes: int = 0
    nochange_wire_bytes: int = 0


def make_reference(ref: Path, n: int, rng: random.Random) -> list[Path]:
    files = []
    for i in range(n):
        d = ref / f"d{i // PER_DIR:03d}"
        if i % PER_DIR == 0:
            d.mkdir(parents=True)
        p = d / f"f{i:05d}.dat"
        p.write_bytes(rng.randbytes(rng.randint(1024, 8192)))
        files.append(p)
    return files


def stored_bytes(site: Site, paths: list[str]) -> int:
    """The stored size of these store paths (what went over the wire for them)."""
    b = open_backend(site.target.write_url, dict(site.target.write_options))
    try:
        return sum(b.stat(p).size for p in paths)
    finally:
        b.close()


def timed(fn: Any) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def bench_backend(name: str, target: servers.Target, disk: Path | None, work: Path, n: int, repeat: int) -> Row:
    rng = random.Random(2000)
    (work / name).mkdir()
    site = Site(target, work / name, f"bench-{name}")
    wire = Wire(target, disk)
    row = Row(name, "server log" if wire.logged else "file atimes", n)
    site.create()
    (site.tmp / "policy.toml").write_text('junk = "quarantine"\n')
    files = make_reference(site.ref, n, rng)
    site.snapshot("generation 1")
    site.install_client()
    row.install_s, (report, _) = timed(site.run_once)
    assert report["outcome"] == "updated", report
    site.assert_converged()

    for _ in range(repeat):
        wire.mark()
        secs, (report, _) = timed(site.run_once)
        assert report["outcome"] == "ok", report
        row.nochange_s.append(secs)
        row.nochange = wire.since()
    row.nochange_wire_bytes = stored_bytes(site, row.nochange.reads)

    changed = max(1, n // 100)
    for _ in range(repeat):
        for p in rng.sample(files, changed):
            p.write_bytes(rng.randbytes(rng.randint(1024, 8192)))
        site.snapshot("1% changed")
        wire.mark()
        secs, (report, _) = timed(site.run_once)
        assert report["outcome"] == "updated", report
        row.update_s.append(secs)
        row.update = wire.since()
        row.update_changed = changed
        row.objects_fetched = report["actions"].get("objects_fetched", 0)
        row.content_bytes = report["bytes_fetched"]
    site.assert_converged()
    row.wire_bytes = stored_bytes(site, [r for r in row.update.reads if "overlay.json" not in r])
    return row


def _req(t: Traffic | None, logged: bool) -> str:
    if t is None:
        return "-"
    parts = [f"{len(t.reads)} {'GET' if logged else 'read'}"]
    obj = sum(1 for r in t.reads if r.startswith("objects/"))
    if obj:
        parts[0] += f" ({obj} objects/)"
    if t.lists:
        parts.append(f"{len(t.lists)} {'LIST' if logged else 'dir scan'}")
    if t.heads:
        parts.append(f"{len(t.heads)} HEAD")
    if t.writes:
        parts.append(f"{len(t.writes)} {'PUT' if logged else 'write'}")
    if t.other:
        parts.append(f"{len(t.other)} other")
    return ", ".join(parts)


def print_table(rows: list[Row]) -> None:
    head = ("backend", "counted by", "no-change s", "no-change requests", "1% update s", "1% update requests",
            "objects", "wire KiB", "content KiB")
    lines = [head]
    for r in rows:
        logged = r.counted == "server log"
        lines.append((
            r.backend, r.counted,
            f"{statistics.median(r.nochange_s):.2f}", _req(r.nochange, logged),
            f"{statistics.median(r.update_s):.2f}", _req(r.update, logged),
            f"{r.objects_fetched}/{r.update_changed}", f"{r.wire_bytes / 1024:.0f}", f"{r.content_bytes / 1024:.0f}",
        ))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    for i, line in enumerate(lines):
        print("  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--backends", default=",".join(BACKENDS))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    wanted = [b for b in args.backends.split(",") if b]
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's access log
    for var in [k for k in os.environ if k.startswith(("REGEN_", "FSSPEC_", "AWS_"))]:
        del os.environ[var]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="regen-bench-backends-") as tmp, contextlib.ExitStack() as stack:
        base = Path(tmp)
        os.environ["HOME"] = str(base / "home")
        factory = _TmpFactory(base)
        if not atime_works(base):
            print(f"warning: {base} is mounted noatime: smb/sftp/file reads cannot be counted", file=sys.stderr)
        for name in wanted:
            t0 = time.perf_counter()
            if name == "file":
                (base / "file-stores").mkdir()
                target = servers.file_target.__wrapped__(base / "file-stores")
                disk: Path | None = Path(target.write_url.removeprefix("file://"))
            elif name == "s3":
                s3 = stack.enter_context(_fixture(servers.s3_server))
                target, disk = servers.s3_target.__wrapped__(s3), None
            elif name == "smb":
                smb = stack.enter_context(_fixture(servers.smb_server, factory))
                target = servers.smb_target.__wrapped__(smb)
                disk = smb.share_dir / target.prefix
            elif name == "sftp":
                sftp = stack.enter_context(_fixture(servers.sftp_server, factory))
                target = servers.sftp_target.__wrapped__(sftp)
                disk = sftp.data_dir / target.prefix
            elif name == "http":
                http = stack.enter_context(_fixture(servers.http_server, factory))
                target = servers.http_target.__wrapped__(http)
                disk = None
            else:
                raise SystemExit(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
            row = bench_backend(name, target, disk, base, args.files, args.repeat)
            rows.append(row)
            print(f"{name}: done in {time.perf_counter() - t0:.1f}s (install {row.install_s:.2f}s)", file=sys.stderr)
    print(f"\n{args.files} files, 1% = {max(1, args.files // 100)} files changed per update; "
          f"median of {args.repeat} runs; times are whole `regend run --once` processes\n")
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps([{
            "backend": r.backend, "counted_by": r.counted, "files": r.files, "install_s": r.install_s,
            "nochange_s": r.nochange_s, "nochange": r.nochange.__dict__ if r.nochange else None,
            "update_s": r.update_s, "update": r.update.__dict__ if r.update else None,
            "objects_fetched": r.objects_fetched, "wire_bytes": r.wire_bytes, "content_bytes": r.content_bytes,
        } for r in rows], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

