"""Hostile file names in the reference tree: `regen snapshot` (a real subprocess) either carries them
faithfully to a client (`regend`, a real subprocess), or refuses them with one clear line and writes no
generation. Never a generation a client cannot apply.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from regen.store import Store, fsck

from ..conftest import Mode, Symlink, make_tree, run_cli
from .conftest import Client, Recorder, files_in, tree_state


@pytest.fixture
def admin(tmp_path: Path, key_files: tuple[Path, Path]) -> dict[str, str]:
    url = f"file://{tmp_path / 'store'}"
    Store.init(url)
    return {"REGEN_STORE": url, "REGEN_KEY": str(key_files[0])}


def make_deep(root: Path, names: list[str], leaf: bytes) -> bytes:
    """Directories `names` nested in order with a file `leaf-file` at the bottom, made with directory
    descriptors (so the whole path may exceed PATH_MAX); returns the file's relative path."""
    flags = os.O_RDONLY | os.O_DIRECTORY
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root, flags)
    try:
        for name in names:
            os.mkdir(name, 0o755, dir_fd=fd)
            nfd = os.open(name, flags, dir_fd=fd)
            os.close(fd)
            fd = nfd
        out = os.open("leaf-file", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(out, leaf)
        os.close(out)
    finally:
        os.close(fd)
    return "/".join([*names, "leaf-file"]).encode()


def snapshot_and_install(admin: dict[str, str], ref: Path, client_base: Path, pub: Path) -> Client:
    run_cli("regen", "snapshot", str(ref), "-c", "stable", "-m", "hostile names", "--publish", "-q", env=admin)
    c = Client(client_base, admin["REGEN_STORE"], pub)
    c.root.mkdir(parents=True)
    c.write_config()
    c.regend("run", "--once")
    return c


ODD = {
    "line\nbreak": b"newline in a name", "tab\there": b"tab", "cr\rhere": b"carriage return",
    'quote"and\\backslash': b"quote and backslash", "spaces  and trailing ": b"spaces",
    "emoji-\U0001f600-日本語": b"unicode", "-dash-first": b"dash", "n" * 255: b"255-byte name",
    "dir\nwith newline/inner\nfile": Mode(b"inner", 0o600), "link\nname": Symlink("target\nwith newline"),
    "\u2028sep": b"line separator U+2028", "del\x7f": b"DEL byte",
}


def test_odd_names_travel_faithfully(admin, tmp_path: Path, key_files, record: Recorder) -> None:
    """Scenario: newlines, tabs, CR, quotes, backslashes, U+2028, DEL, emoji, 255-byte names."""
    ref = make_tree(tmp_path / "ref", ODD)
    c = snapshot_and_install(admin, ref, tmp_path / "client", key_files[1])
    assert tree_state(c.root) == tree_state(ref)
    assert c.regend("run", "--once").stdout.startswith("ok:")  # and it stays converged (no drift loop)
    record.intact(files_in(tree_state(ref)))


def test_deep_nesting_200_levels(admin, tmp_path: Path, key_files, record: Recorder) -> None:
    """Scenario: a file 200 directories deep."""
    ref = tmp_path / "ref"
    make_deep(ref, [f"d{i}" for i in range(200)], b"deep down")
    c = snapshot_and_install(admin, ref, tmp_path / "client", key_files[1])
    assert tree_state(c.root) == tree_state(ref)
    record.intact(1)


def test_path_near_4096_on_a_client_with_a_longer_root(admin, tmp_path: Path, key_files, record: Recorder) -> None:
    """Scenario: a 4000-byte relative path (legal in a manifest) snapshotted from a short root and installed
    under a longer client root, where the absolute path passes PATH_MAX (4096): either installed and
    stable, or refused up front with a clear error and nothing changed."""
    ref = tmp_path / "r"
    rel = make_deep(ref, ["p" * 249] * 15 + ["q" * 200], b"far down")
    assert 3900 < len(rel) <= 4096
    run_cli("regen", "snapshot", str(ref), "-c", "stable", "-m", "deep", "--publish", "-q", env=admin)
    c = Client(tmp_path / ("client-with-a-much-longer-root-" + "x" * 100), admin["REGEN_STORE"], key_files[1])
    c.root.mkdir(parents=True)
    c.write_config()
    assert len(os.fsencode(c.root)) + len(rel) > 4096
    first = c.regend("run", "--once", exit_code=None)
    if first.returncode != 0:  # refused: clearly, and before changing anything
        assert "too long" in " ".join(c.last_report()["errors"]) and c.tree() == {}, first
        return
    assert tree_state(c.root) == tree_state(ref)
    again = c.regend("run", "--once", exit_code=None)  # the next run scans that deep path too
    assert again.returncode == 0 and again.stdout.startswith("ok:"), (again.stdout[:300], again.stderr[:300])
    record.intact(1)


def _refused(admin: dict[str, str], ref: Path, *words: str, code: int = 2) -> str:
    """A snapshot refused with one line and exit status `code` (2: the input is invalid), nothing written."""
    res = run_cli("regen", "snapshot", str(ref), "-c", "stable", "-m", "m", "--publish", env=admin, exit_code=None)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == code and len(lines) == 1 and lines[0].startswith("regen: error: "), res.stderr
    assert all(w in lines[0] for w in words), lines[0]
    store = Store.open(admin["REGEN_STORE"])
    assert store.read_ref("stable") is None and not store.generation_numbers("stable")  # nothing written
    assert not fsck(store).damaged
    return lines[0]


def test_invalid_utf8_name_refused(admin, tmp_path: Path) -> None:
    """Scenario: a name with bytes that are not UTF-8: refused, the name shown escaped, no generation."""
    ref = make_tree(tmp_path / "ref", {"etc/ok": b"ok"})
    (Path(os.fsdecode(os.fsencode(ref / "etc") + b"/bad\xff\xfename"))).write_bytes(b"x")
    line = _refused(admin, ref, "not valid UTF-8", "bad\\xff\\xfename")
    assert "\n" not in line


def test_invalid_utf8_symlink_target_refused(admin, tmp_path: Path) -> None:
    """Scenario: a symlink whose target is not UTF-8: refused, no generation."""
    ref = make_tree(tmp_path / "ref", {"etc/ok": b"ok"})
    os.symlink(b"/opt/\xc3\x28broken", os.fsencode(ref / "etc/link"))
    _refused(admin, ref, "not valid UTF-8")


def test_path_over_4096_bytes_refused(admin, tmp_path: Path) -> None:
    """Scenario: a path longer than a manifest (and PATH_MAX) allows: one clear line, no generation."""
    ref = tmp_path / "r"
    make_deep(ref, ["p" * 250] * 17, b"too far")
    line = _refused(admin, ref)
    assert "is too long" in line and "no generation was written" in line and len(line) < 400, line
