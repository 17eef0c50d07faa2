"""`regen init --packs` and what a regen does with a store whose features it does not know."""

from __future__ import annotations

import json
from pathlib import Path

from regen.store import UnsupportedFormat
from tests.conftest import run_cli


def test_init_packs_writes_the_feature_and_pack_size(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/store"
    out = json.loads(run_cli("regen", "init", url, "--packs", "--pack-size", "1048576", "--json").stdout)
    assert out["features"] == ["packs"]
    config = json.loads((tmp_path / "store" / "regen.json").read_text())
    assert config["features"] == ["packs"] and config["pack_size"] == 1 << 20
    plain = json.loads(run_cli("regen", "init", f"file://{tmp_path}/plain", "--json").stdout)
    assert plain["features"] == []  # without --packs: a store of loose objects, as before


def test_a_store_needing_an_unknown_feature_is_refused_with_exit_2(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/store"
    run_cli("regen", "init", url, "--packs")
    path = tmp_path / "store" / "regen.json"
    config = json.loads(path.read_text())
    config["features"] = ["packs", "teleport"]  # what a newer regen might write
    path.write_text(json.dumps(config))
    res = run_cli("regen", "log", "--store", url, exit_code=UnsupportedFormat.exit_code)
    assert "teleport" in res.stderr and "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
