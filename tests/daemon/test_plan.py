"""plan() is pure: plain values in, the changes out (no disk needed)."""

from __future__ import annotations

from regen.daemon.tree.plan import Observed, plan
from regen.store import Entry, Policy, object_id, xxh


def f(path: str, data: bytes = b"x", mode: int = 0o644) -> Entry:
    return Entry(path, "file", mode, len(data), object_id(data), xxh(data))


def d(path: str, mode: int = 0o755) -> Entry:
    return Entry(path, "dir", mode)


def ln(path: str, target: str) -> Entry:
    return Entry(path, "symlink", 0o777, target=target)


def on_disk(e: Entry, *, in_store: bool = True, **over) -> Observed:
    o = dict(path=e.path, kind=e.kind, mode=e.mode, size=e.size, xxh=e.xxh, target=e.target, in_store=in_store)
    o.update(over)
    return Observed(**o)


def paths(items) -> list[str]:
    return [i.path for i in items]


def test_empty_disk_gets_everything_in_tree_order() -> None:
    target = [d("a"), f("a/x"), ln("a/y", "x"), d("b")]
    p = plan(target, [], Policy())
    assert paths(p.mkdir) == ["a", "b"] and paths(p.create) == ["a/x"] and paths(p.symlink) == ["a/y"]
    assert not p.delete and not p.quarantine
    assert p.stats()["bytes_to_write"] == 1 and p.stats()["operations"] == 4


def test_identical_disk_needs_nothing() -> None:
    target = [d("a"), f("a/x"), ln("a/y", "x")]
    p = plan(target, [on_disk(e) for e in target], Policy())
    assert p.empty and not p.adopt


def test_content_mode_and_symlink_target() -> None:
    target = [d("a"), f("a/x", b"new"), f("a/m", b"m", 0o600), ln("a/l", "x")]
    disk = [on_disk(d("a", 0o700)), on_disk(f("a/x", b"old"), in_store=False), on_disk(f("a/m", b"m", 0o666)),
            on_disk(ln("a/l", "elsewhere"), in_store=False)]
    p = plan(target, disk, Policy())
    assert paths(p.replace) == ["a/x"] and paths(p.symlink) == ["a/l"]
    assert paths(p.chmod) == ["a", "a/m"]
    assert paths(p.quarantine) == ["a/x", "a/l"]  # overwritten, content not in the store
    assert p.occupied == {"a/x", "a/l"}


def test_store_content_is_not_quarantined() -> None:
    p = plan([d("a")], [on_disk(d("a")), on_disk(f("a/old"), in_store=True)], Policy())
    assert paths(p.delete) == ["a/old"] and not p.quarantine


def test_junk_quarantine_or_keep() -> None:
    disk = [on_disk(d("j"), in_store=False), on_disk(f("j/x"), in_store=False), on_disk(f("k"), in_store=False)]
    q = plan([], disk, Policy(junk="quarantine"))
    assert paths(q.quarantine) == ["j/x", "k"] and paths(q.delete) == ["k", "j/x", "j"]  # deepest first
    k = plan([], disk, Policy(junk="keep"))
    assert k.empty and paths(k.keep) == ["j", "j/x", "k"]


def test_file_in_the_way_of_a_directory() -> None:
    p = plan([d("a"), f("a/x")], [on_disk(f("a", b"junk"), in_store=False)], Policy(junk="keep"))
    assert paths(p.quarantine) == ["a"] and paths(p.delete) == ["a"]
    assert paths(p.mkdir) == ["a"] and paths(p.create) == ["a/x"]


def test_directory_in_the_way_of_a_file_goes_whole_whatever_the_junk_mode() -> None:
    disk = [on_disk(d("a"), in_store=False), on_disk(d("a/sub"), in_store=False),
            on_disk(f("a/sub/mine"), in_store=False), on_disk(f("a/store"), in_store=True),
            on_disk(f("b"), in_store=False)]
    p = plan([f("a", b"file now")], disk, Policy(junk="keep"))
    assert paths(p.quarantine) == ["a/sub/mine"]
    assert paths(p.delete) == ["a/store", "a/sub/mine", "a/sub", "a"]
    assert paths(p.create) == ["a"] and paths(p.keep) == ["b"]


def test_preserve_is_never_touched_and_base_comes_from_the_store() -> None:
    target = [d("home"), f("home/x", b"ref"), d("bin"), f("bin/sh", b"sh")]
    disk = [on_disk(d("home")), on_disk(f("home/x", b"mine"), in_store=False),
            on_disk(f("home/y"), in_store=False)]
    p = plan(target, disk, Policy(preserve=("home",), base=("bin",)))
    assert paths(p.mkdir) == ["bin"] and paths(p.create) == ["bin/sh"]
    assert p.from_store == {"bin/sh"}
    assert not p.quarantine and not p.delete and not p.replace


def test_leftover_temp_files_are_removed_without_quarantine() -> None:
    p = plan([d("a")], [on_disk(d("a")), Observed("a/.regen-tmp-123-0", "file", 0o600, temp=True)], Policy())
    assert paths(p.delete) == ["a/.regen-tmp-123-0"] and not p.quarantine


def test_a_kept_file_keeps_its_directory() -> None:
    disk = [on_disk(d("gone")), on_disk(f("gone/store-file")), on_disk(f("gone/mine"), in_store=False)]
    p = plan([], disk, Policy(junk="keep"))
    assert paths(p.delete) == ["gone/store-file"]
    assert sorted(paths(p.keep)) == ["gone", "gone/mine"]


def test_adopt_what_is_already_right() -> None:
    p = plan([d("a"), f("a/x")], [on_disk(d("a"), in_store=False), on_disk(f("a/x"), in_store=False)], Policy())
    assert p.empty and paths(p.adopt) == ["a", "a/x"]


def test_metadata_the_index_never_recorded_is_applied_again() -> None:
    """An upgrade from a format-1 generation: rows without owners must not pass for right."""
    from regen.daemon.tree.plan import Observed
    from regen.store import Entry

    e = Entry("a", "file", 0o644, 1, "0" * 64, "0" * 32, uid=0, gid=0, mtime=5)
    unknown = Observed("a", "file", 0o644, 1, "0" * 32, in_store=True)
    known = Observed("a", "file", 0o644, 1, "0" * 32, in_store=True, uid=0, gid=0, mtime=5)
    assert [x.path for x in plan([e], [unknown], Policy()).chmod] == ["a"]
    assert plan([e], [known], Policy()).empty
