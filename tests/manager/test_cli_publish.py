"""`regen publish` and `regen rollback`: moving a channel so that clients follow."""

from __future__ import annotations

from pathlib import Path

import pytest

from regen.manager.errors import MissingKey, NotPublishable, Untrusted
from regen.store import Generation, Store, format_time, layout, sign_envelope, utcnow
from regen.store.errors import GenerationNotFound

from ..conftest import make_tree
from .conftest import one_error_line


@pytest.fixture
def three(cli, admin: Store, tmp_path: Path) -> Path:
    """Generations 1, 2, 3 of 'stable' (1 and 2 published in turn, 3 only written)."""
    src = make_tree(tmp_path / "ref", {"v": b"1"})
    cli("snapshot", src, "-c", "stable", "-m", "one", "--publish")
    (src / "v").write_bytes(b"2")
    cli("snapshot", src, "-c", "stable", "-m", "two", "--publish")
    (src / "v").write_bytes(b"3")
    cli("snapshot", src, "-c", "stable", "-m", "three")
    return src


def current(store: Store, channel: str = "stable") -> Generation:
    ref = store.read_ref(channel)
    assert ref is not None
    return store.peek_generation(ref)


def test_publish_moves_the_ref_to_an_existing_generation(cli, admin: Store, three) -> None:
    res = cli("publish", "3", "-c", "stable", "--json").json()
    assert res == {"channel": "stable", "number": 3, "previous": 2, "content_of": None, "epoch": 0}
    assert current(admin).number == 3
    assert admin.read_ref("stable") == admin.read_generation("stable", 3)


def test_publish_of_a_bad_number_is_refused(cli, admin: Store, three) -> None:
    res = cli("publish", "7", "-c", "stable", exit_code=GenerationNotFound.exit_code)
    assert "generation 7 of channel 'stable' does not exist" in one_error_line(res.stderr)
    res = cli("publish", "1", "-c", "stable", exit_code=NotPublishable.exit_code)
    line = one_error_line(res.stderr)
    assert "older than generation 2" in line and "regen rollback --channel stable --to 1" in line
    res = cli("publish", "0", "-c", "stable", exit_code=2)
    assert one_error_line(res.stderr)
    assert current(admin).number == 2


def test_publish_refuses_a_record_no_known_key_signed(cli, admin: Store, three, other_key) -> None:
    forged = Generation(admin.store_id, "stable", 4, current(admin).manifest, format_time(utcnow()), 3, "forged")
    admin.backend.create_exclusive(layout.generation_path("stable", 4), sign_envelope(forged.to_record(), [other_key]))
    res = cli("publish", "4", "-c", "stable", exit_code=Untrusted.exit_code)
    assert "does not verify with the trusted keys" in one_error_line(res.stderr) and "signed by unknown key" in res.stderr
    assert current(admin).number == 2


def test_rollback_republishes_the_parent_as_a_new_generation(cli, admin: Store, three) -> None:
    cli("publish", "3", "-c", "stable")
    res = cli("rollback", "-c", "stable", "--json").json()
    assert res == {"channel": "stable", "number": 4, "previous": 3, "content_of": 2, "epoch": 0}
    now, old = current(admin), admin.peek_generation(admin.read_generation("stable", 2))
    assert now.number == 4 and now.parent == 3 and now.manifest == old.manifest and now.policy == old.policy
    assert "rollback to generation 2" in now.message
    res = cli("rollback", "-c", "stable", "--to", "1", "-m", "back to one")
    assert "generation 5" in res.stdout and "content of generation 1" in res.stdout
    assert current(admin).manifest == admin.peek_generation(admin.read_generation("stable", 1)).manifest


def test_rollback_errors(cli, admin: Store, three, monkeypatch: pytest.MonkeyPatch) -> None:
    res = cli("rollback", "-c", "stable", "--to", "3", exit_code=NotPublishable.exit_code)
    assert "not older than generation 2" in one_error_line(res.stderr)
    res = cli("rollback", "-c", "other", exit_code=NotPublishable.exit_code)
    assert "no published generation" in one_error_line(res.stderr)
    res = cli("rollback", "-c", "stable", "--to", "9", exit_code=GenerationNotFound.exit_code)
    assert "generation 9" in one_error_line(res.stderr)
    monkeypatch.delenv("REGEN_KEY")
    res = cli("rollback", "-c", "stable", exit_code=MissingKey.exit_code)
    assert "needs a secret key" in one_error_line(res.stderr)
    assert current(admin).number == 2


def test_rollback_of_the_first_generation_needs_a_target(cli, admin: Store, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "ref", {"v": b"1"})
    cli("snapshot", src, "-c", "stable", "-m", "one", "--publish")
    res = cli("rollback", "-c", "stable", exit_code=NotPublishable.exit_code)
    assert "has no parent" in one_error_line(res.stderr)
