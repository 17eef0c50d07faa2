"""The benchmark harness (contrib/bench.sh) runs end to end on the tiny size.

A smoke test only: it proves every operation and every anchor runs and lands in the table
and the JSON; it asserts no timing (speed is measured by contrib/bench.sh, not by tests).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_tiny_produces_every_row(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "bench" / "bench.py"), "--size", "tiny", "--repeat", "1",
         "--work", str(tmp_path / "work"), "--json", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads(out.read_text())
    rows = {(r["op"], r["tool"]) for r in data["results"]}
    expected_ops = {"snapshot (first)", "snapshot (unchanged)", "no-change check", "full verify", "update A->B (1%)",
                    "first install"}
    assert {op for op, _ in rows} == expected_ops
    tools = {tool for _, tool in rows}
    for anchor in ("git status", "xxhsum -H2 (2 workers)", "ostree fsck", "restic backup", "ostree commit",
                   "rsync -a --delete", "ostree pull-local+checkout", "rsync -aHAX + sync", "restic restore + sync"):
        assert anchor in tools, f"{anchor} missing from the benchmark table"
    for r in data["results"]:
        assert r["samples"] and all(s > 0 for s in r["samples"]), r
    assert data["facts"]["files"] >= 300
    # the update pulled content from the store (only what the client lacked)
    assert data["facts"].get("update_bytes_fetched") is not None
    assert "| update A->B (1%) | regend run --once |" in proc.stdout
