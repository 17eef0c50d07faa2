"""`regen host set/show/rm`: signed host overlays with increasing versions and tombstones."""

from __future__ import annotations

from pathlib import Path

from regen.manager.errors import OverlayNotFound
from regen.store import Store, load_secret_key, trust_map, verify_overlay
from regen.store.errors import InvalidName

from ..conftest import Mode, make_tree
from .conftest import one_error_line


def test_set_show_rm_cycle(cli, admin: Store, tmp_path: Path, key_files) -> None:
    trusted = trust_map([load_secret_key(key_files[0]).public])
    own = make_tree(tmp_path / "kiosk", {"etc/hostname": b"kiosk-01\n", "etc/wifi.key": Mode(b"k", 0o600)})
    res = cli("host", "set", "kiosk-01", own, "-m", "its own name", "--plaintext", "--json").json()
    assert res["number"] == 1 and res["removed"] is False and res["stats"]["files"] == 2

    data = admin.read_overlay("kiosk-01")
    assert data is not None
    ov = verify_overlay(data, trusted, store_id=admin.store_id, host="kiosk-01")
    assert ov.number == 1 and ov.manifest == res["manifest"] and ov.message == "its own name"

    info = cli("host", "show", "kiosk-01", "--json").json()
    assert info["verified"] is True and info["number"] == 1
    assert {(e["path"], e["kind"], e["mode"]) for e in info["entries"]} == {
        ("etc", "dir", 0o755), ("etc/hostname", "file", 0o644), ("etc/wifi.key", "file", 0o600)}
    assert "etc/wifi.key" in cli("host", "show", "kiosk-01").stdout

    (own / "etc/hostname").write_bytes(b"kiosk-one\n")
    assert cli("host", "set", "kiosk-01", own, "--plaintext", "-q").stdout.strip() == "2"

    res = cli("host", "rm", "kiosk-01", "--json").json()
    assert res == {"host": "kiosk-01", "number": 3, "manifest": None, "removed": True}
    data = admin.read_overlay("kiosk-01")
    assert data is not None
    tomb = verify_overlay(data, trusted, store_id=admin.store_id, host="kiosk-01", min_number=2)
    assert tomb.manifest is None and tomb.number == 3
    assert "removed" in cli("host", "show", "kiosk-01").stdout


def test_host_errors(cli, admin: Store, tmp_path: Path) -> None:
    res = cli("host", "show", "nobody", exit_code=OverlayNotFound.exit_code)
    assert "host 'nobody' has no overlay" in one_error_line(res.stderr)
    res = cli("host", "rm", "nobody", exit_code=OverlayNotFound.exit_code)
    assert "regen host set" in one_error_line(res.stderr)
    own = make_tree(tmp_path / "own", {"a": b"a"})
    res = cli("host", "set", "bad/host", own, exit_code=InvalidName.exit_code)
    assert "invalid host 'bad/host'" in one_error_line(res.stderr)
    res = cli("host", "set", "h1", tmp_path / "missing", exit_code=2)
    assert "does not exist" in one_error_line(res.stderr)
    res = cli("host", exit_code=2)  # no subcommand: the group's help
    assert "set" in res.stdout + res.stderr
