"""`regen log`, `show`, `diff`: reading a channel's history."""

from __future__ import annotations

import os
from pathlib import Path

from regen.manager.errors import BadOption
from regen.store import Store
from regen.store.errors import GenerationNotFound, StoreNotFound

from ..conftest import Symlink, make_tree
from .conftest import one_error_line


def two_generations(cli, tmp_path: Path) -> Path:
    src = make_tree(tmp_path / "ref", {"keep": b"k", "change": b"old", "drop": b"d", "mode": b"m",
                                       "link": Symlink("keep")})
    cli("snapshot", src, "-c", "stable", "-m", "first one", "--publish")
    (src / "change").write_bytes(b"new content")
    (src / "drop").unlink()
    (src / "new\nline").write_bytes(b"n")
    os.chmod(src / "mode", 0o700)
    (src / "link").unlink()
    (src / "link").symlink_to("change")
    cli("snapshot", src, "-c", "stable", "-m", "second one")
    return src


def test_log_lists_generations_and_marks_the_current_one(cli, admin: Store, tmp_path: Path) -> None:
    two_generations(cli, tmp_path)
    data = cli("log", "--json").json()
    (ch,) = data["channels"]
    assert ch["channel"] == "stable" and ch["ref"] == 1
    assert [(g["number"], g["message"], g["current"], g["parent"]) for g in ch["generations"]] == [
        (1, "first one", True, None), (2, "second one", False, 1)]
    assert ch["generations"][0]["files"] == 4
    text = cli("log", "--channel", "stable").stdout
    assert "channel stable (current: 1)" in text and "first one" in text and "second one" in text
    assert cli("log", "-q").stdout.split() == ["1", "2"]


def test_show_gives_record_signature_stats_and_policy(cli, admin: Store, tmp_path: Path, key_files) -> None:
    two_generations(cli, tmp_path)
    info = cli("show", "2", "--json").json()  # the store's only channel is found without --channel
    assert info["number"] == 2 and info["channel"] == "stable" and info["parent"] == 1
    assert info["verified"] is True and info["current"] is False and info["store_id"] == admin.store_id
    assert info["stats"]["files"] == 4 and info["policy"]["junk"] == "quarantine"
    assert len(info["signed_by"]) == 1
    text = cli("show", "1", "-c", "stable").stdout
    assert "(current)" in text and "verifies" in text and "first one" in text


def test_diff_lists_path_level_changes(cli, admin: Store, tmp_path: Path) -> None:
    two_generations(cli, tmp_path)
    data = cli("diff", "1", "2", "--json").json()
    kinds = {c["path"]: c["kind"] for c in data["changes"]}
    assert kinds == {"change": "modified", "drop": "removed", "new\nline": "added", "mode": "meta", "link": "modified"}
    assert data["stats"] == {"added": 1, "removed": 1, "modified": 2, "meta": 1}
    link = next(c for c in data["changes"] if c["path"] == "link")
    assert link["old"]["target"] == "keep" and link["new"]["target"] == "change"
    text = cli("diff", "1", "2").stdout.splitlines()
    assert "+ new\\nline" in text and "- drop" in text and "M change" in text and "m mode  (mode 644 -> 700)" in text
    assert text[-1] == "generation 1 -> 2: 1 added, 1 removed, 2 modified, 1 metadata changes"
    assert cli("diff", "1", "2", "-q").stdout.splitlines() == [text[-1]]


def test_history_errors_are_one_line(cli, admin: Store, tmp_path: Path) -> None:
    res = cli("show", "1", exit_code=BadOption.exit_code)
    assert "has no channel yet" in one_error_line(res.stderr)
    two_generations(cli, tmp_path)
    res = cli("diff", "1", "5", exit_code=GenerationNotFound.exit_code)
    assert "generation 5 of channel 'stable' does not exist" in one_error_line(res.stderr)
    res = cli("show", "9", "-c", "stable", exit_code=GenerationNotFound.exit_code)
    assert "regen log" in one_error_line(res.stderr)
    cli("snapshot", tmp_path / "ref", "-c", "testing", "-m", "t")
    res = cli("show", "1", exit_code=BadOption.exit_code)
    assert "several channels (stable, testing)" in one_error_line(res.stderr)
    res = cli("log", "--store", f"file://{tmp_path}/nothing", exit_code=StoreNotFound.exit_code)
    assert "no regen store at" in one_error_line(res.stderr)


def test_show_lists_the_generations_procedures(cli, admin: Store, tmp_path: Path) -> None:
    src = tmp_path / "ref"
    (src / "etc/nginx").mkdir(parents=True)
    (src / "etc/nginx/nginx.conf").write_text("events {}\n")
    policy = tmp_path / "policy.toml"
    policy.write_text('[[procedure]]\nname = "reload nginx"\nwhen = ["etc/nginx/**"]\n'
                      'run = ["/usr/sbin/nginx", "-s", "reload"]\ntimeout = "30s"\n'
                      '[[procedure]]\nname = "ldconfig"\nwhen = ["usr/lib"]\nrun = ["/sbin/ldconfig"]\n'
                      'stage = "before"\non = ["update"]\nfailure = "quarantine"\nchroot = true\n')
    out = cli("snapshot", src, "-c", "stable", "-m", "with procedures", "--policy", policy, "--publish").stdout
    assert "procedure reload nginx: after install/update/repair of etc/nginx/** -> /usr/sbin/nginx -s reload" in out
    info = cli("show", "1", "--json").json()
    assert [p["name"] for p in info["policy"]["procedure"]] == ["reload nginx", "ldconfig"]
    assert info["policy"]["procedure"][0]["timeout"] == 30
    text = cli("show", "1").stdout
    assert ("procedure   reload nginx: after install/update/repair of etc/nginx/** -> /usr/sbin/nginx -s reload "
            "(timeout 30 s, on failure report)") in text
    assert "procedure   ldconfig: before update of usr/lib -> /sbin/ldconfig (timeout 300 s, on failure quarantine, " \
           "chroot)" in text
