"""A host's report prefix is bounded in count (issue 12, step 6): whoever holds one host's write
access (the host itself, or its leaked credentials) writes 10,000 tiny history entries.

`regen status` still reads one report per host (latest.json), never the history; `regen history`
reads at most the newest MAX_HISTORY entries and says how many it skipped; `regen gc` prunes the
host back to MAX_HISTORY entries (its last state change kept) and leaves other hosts alone.
Reads are observed on the server's disk (atimes: tests/e2e/conftest.py::ServerReads).
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from regen.store import MAX_HISTORY, Report, SecretKey, Store, format_time, utcnow
from regen.store.history import entry_name
from tests.e2e.conftest import ServerReads, check_atime_works

from .conftest import publish

FLOOD = 10_000


def report(host: str, when: Any, outcome: str = "ok") -> Report:
    t = format_time(when)
    return Report(host, f"run-{t}", t, t, outcome, 0)


@pytest.fixture
def flooded(tmp_path: Path, signing_key: SecretKey, key_files: tuple[Path, Path]) -> dict[str, Any]:
    """host1: three real entries then 10,000 planted ones (future stamps: newer than anything real);
    host2: two real entries."""
    root = tmp_path / "store"
    store = Store.init(f"file://{root}")
    publish(store, signing_key, {"etc/app.conf": "v1\n"}, number=1)
    now = utcnow()
    for host in ("host1", "host2"):
        for days, outcome in ((3, "quarantined"), (2, "ok"), (1, "ok")):
            store.put_report(report(host, now - timedelta(days=days), outcome), now=now - timedelta(days=days))
    folder = root / "reports" / "host1"
    for i in range(FLOOD):
        (folder / entry_name(now + timedelta(days=1, microseconds=i), "ok")).write_bytes(b"{}")
    check_atime_works(tmp_path)
    return {"store": store, "root": root, "now": now,
            "env": {"REGEN_STORE": store.url, "REGEN_KEY": str(key_files[0])}}


def history_entries(root: Path, host: str) -> list[str]:
    return sorted(p.name for p in (root / "reports" / host).iterdir() if p.name != "latest.json")


@pytest.mark.slow
def test_a_flooded_report_prefix_is_read_bounded_and_pruned(flooded: dict[str, Any], run_regen: Any) -> None:
    root, env = flooded["root"], flooded["env"]
    disk = ServerReads(root)

    disk.arm()
    status = json.loads(run_regen("status", "--json", env=env, exit_code=None).stdout)
    assert sorted(h["host"] for h in status["hosts"]) == ["host1", "host2"]
    reads = [p for p in disk.traffic().reads if p.startswith("reports/")]
    assert reads == ["reports/host1/latest.json", "reports/host2/latest.json"], reads  # no history at all

    disk.arm()
    res = run_regen("history", "host1", "--json", env=env)
    timeline = json.loads(res.stdout)
    read = [p for p in disk.traffic().reads if p.startswith("reports/host1/") and not p.endswith("latest.json")]
    assert len(read) == MAX_HISTORY, len(read)  # of 10,003 entries
    assert timeline["skipped"] == FLOOD + 3 - MAX_HISTORY
    assert f"{FLOOD + 3 - MAX_HISTORY:,} older history entries of host host1 were not read" in res.stderr

    before2 = history_entries(root, "host2")
    dry = json.loads(run_regen("gc", "--dry-run", "--json", env=env).stdout)
    assert dry["stats"]["history_to_delete"] == FLOOD + 3 - MAX_HISTORY - 1  # the last state change stays
    assert dry["history_hosts_over_cap"] == ["host1"]
    assert len(history_entries(root, "host1")) == FLOOD + 3
    out = run_regen("gc", env=env)
    assert "host host1 had more than 1,000 history entries" in out.stderr
    left = history_entries(root, "host1")
    # the newest 1,000 (planted) and where the present state ("ok") began: the real entry of 2 days ago
    assert len(left) == MAX_HISTORY + 1 and left[0] == entry_name(flooded["now"] - timedelta(days=2), "ok"), left[:2]
    assert history_entries(root, "host2") == before2
