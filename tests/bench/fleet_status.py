"""`regen status` over a synthetic fleet on the moto S3 server (issue 16: 10,000 hosts in <= 10 s).

    .venv/bin/python tests/bench/fleet_status.py [--hosts 10000] [--jobs 32] [--repeat 2] [--json out.json]

Starts the tests' moto server (tests/servers.py, loopback, IAM on), writes N hosts' reports the
way regend does (tests/fleetgen.py: RunLog.build + deliver), then times the installed `regen
status` (table, piped) and `regen status --json` as subprocesses, and counts the GETs the
server answered for reports/ (must be at most one per host).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from regen.store import Store  # noqa: E402

from tests import servers  # noqa: E402
from tests.e2e.conftest import cli_options  # noqa: E402
from tests.fleetgen import make_fleet  # noqa: E402


@contextlib.contextmanager
def _fixture(fn: Any, *args: Any) -> Iterator[Any]:
    gen = fn.__wrapped__(*args)
    try:
        yield next(gen)
    finally:
        next(gen, None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=10_000)
    ap.add_argument("--jobs", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args()
    regen = str(Path(sys.executable).with_name("regen"))
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log: one line per GET
    with _fixture(servers.s3_server) as s3:
        target = servers.s3_target.__wrapped__(s3)
        store = Store.init(target.write_url, target.write_options)
        t = time.perf_counter()
        make_fleet(store, args.hosts, jobs=32)
        made = time.perf_counter() - t
        print(f"wrote {args.hosts:,} hosts' reports in {made:.1f} s", flush=True)
        base = [regen, "status", "--store", target.url, *cli_options(target.options), "--jobs", str(args.jobs)]
        env = {**os.environ, "COLUMNS": "100"}
        results: dict[str, Any] = {"hosts": args.hosts, "jobs": args.jobs, "write_s": round(made, 1)}
        for name, extra in (("table", []), ("json", ["--json"]), ("check", ["--check"])):
            times = []
            for _ in range(args.repeat):
                mark = target.log.mark() if target.log else 0
                t = time.perf_counter()
                c0, s0 = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
                proc = subprocess.run(base + extra, capture_output=True, env=env)
                times.append(time.perf_counter() - t)
                c1, s1 = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
                cpu = {"client_cpu_s": round(c1.ru_utime - c0.ru_utime + c1.ru_stime - c0.ru_stime, 1),
                       "server_cpu_s": round(s1.ru_utime - s0.ru_utime + s1.ru_stime - s0.ru_stime, 1)}
                assert proc.returncode in (0, 1), proc.stderr.decode()
                gets = [p for m, p in target.requests(mark) if m == "GET" and p.endswith("/latest.json")]
                assert len(gets) <= args.hosts, len(gets)
            results[name] = {"seconds": [round(x, 2) for x in times], "report_gets": len(gets),
                             "requests": len(target.requests(mark)), "lines": proc.stdout.count(b"\n"), **cpu}
            lines = proc.stdout.count(b"\n")
            print(f"regen status {' '.join(extra) or '(table)'}: {min(times):.1f} s best of {args.repeat}, "
                  f"{len(gets):,} report GETs, {len(target.requests(mark)):,} requests, {lines:,} lines; "
                  f"CPU: regen {cpu['client_cpu_s']} s, moto {cpu['server_cpu_s']} s", flush=True)
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
