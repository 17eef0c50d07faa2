"""regend at scale: install, no-change run, dry-run check and --verify on an N-file tree.

    .venv/bin/python tests/bench/daemon_scale.py [N]      (default 20000 files of 1-4 KiB, 100 per directory)

In-process (Agent with a FakeProbe, so the numbers are regend's and not psutil's), on a
file:// store in a temporary directory. Prints one line per phase with its wall time.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from regen.daemon.run.agent import Agent, RunOptions
from regen.daemon.config import load_config
from regen.daemon.run.dryrun import check
from regen.daemon.gate.hardware import FakeProbe
from regen.store import Entry, Generation, Store, build_manifest, format_time, generate, object_id, utcnow, xxh


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        store = Store.init(f"file://{base / 'store'}")
        key = generate()
        (base / "admin.pub").write_text(key.public.text())
        entries, blobs = [], {}
        for i in range(n):
            d = f"d{i // 100:04d}"
            if i % 100 == 0:
                entries.append(Entry(d, "dir", 0o755))
            data = os.urandom(1024 + (i % 4) * 1024)
            oid = object_id(data)
            blobs[oid] = data
            entries.append(Entry(f"{d}/f{i:06d}", "file", 0o644, len(data), oid, xxh(data)))
        t = time.perf_counter()
        for data in blobs.values():
            store.put(data, check=False)
        mdata, moid, _ = build_manifest(entries)
        store.put(mdata)
        env = store.write_generation(Generation(store.store_id, "stable", 1, moid, format_time(utcnow())), [key])
        store.set_ref("stable", env)
        print(f"publish (store API)         {time.perf_counter() - t:7.2f} s")
        (base / "root").mkdir()
        (base / "regend.toml").write_text(
            f'store = "file://{base / "store"}"\nchannel = "stable"\nhost = "bench"\nroot = "{base / "root"}"\n'
            f'state_dir = "{base / "state"}"\ntrusted_keys = ["{base / "admin.pub"}"]\n')
        cfg = load_config(str(base / "regend.toml"), {})
        agent = Agent(cfg, FakeProbe({}))

        def timed(label: str, fn):  # type: ignore[no-untyped-def]
            t0 = time.perf_counter()
            out = fn()
            print(f"{label:28}{time.perf_counter() - t0:7.2f} s")
            return out

        r = timed(f"install ({n} files)", lambda: agent.run(RunOptions()))
        assert r.exit_code == 0, r.report.errors
        time.sleep(2.1)  # out of the racy window, as a real machine between runs
        timed("first run (racy re-hash)", lambda: agent.run(RunOptions()))
        r = timed("no-change run", lambda: agent.run(RunOptions()))
        assert r.report.outcome == "ok"
        c = timed("no-change check (dry run)", lambda: check(cfg))
        assert c["repair"]["operations"] == 0
        import subprocess

        regend = str(Path(sys.executable).parent / "regend")
        timed("`regend check` (process)", lambda: subprocess.run([regend, "check", "--config", str(base / "regend.toml")],
                                                                   check=True, capture_output=True))
        timed("run --verify", lambda: agent.run(RunOptions(verify=True)))
        for i in range(0, n, n // 10):
            p = base / "root" / f"d{i // 100:04d}" / f"f{i:06d}"
            p.write_bytes(b"damage")
        r = timed("repair 10 damaged files", lambda: agent.run(RunOptions()))
        assert r.report.outcome == "repaired", r.report.errors


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20000)
