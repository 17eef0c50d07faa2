"""apply(): atomic, verified, confined to root -- also against a disk that changes under it."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from regen.daemon.errors import Interrupted
from regen.daemon.tree.apply import Applier, Ticker
from regen.daemon.tree.cache import ObjectCache
from regen.daemon.tree.plan import Observed, plan
from regen.daemon.tree.quarantine import Quarantine
from regen.store import Entry, Policy, object_id, xxh


def f(path: str, data: bytes, mode: int = 0o644) -> Entry:
    return Entry(path, "file", mode, len(data), object_id(data), xxh(data))


def cache_put(cache: ObjectCache, oid: str, data: bytes) -> Path:
    """An entry as a fetch writes it: one zstd frame at cache.dest."""
    with open(cache.dest(oid), "wb") as fp, cache.compressing(fp) as out:
        out.write(data)
    return Path(cache.dest(oid))


def setup(tmp_path: Path, contents: list[bytes]) -> tuple[Path, ObjectCache, Quarantine]:
    root = tmp_path / "root"
    root.mkdir()
    state = tmp_path / "state"
    cache = ObjectCache(str(state))
    for data in contents:
        cache_put(cache, object_id(data), data)
    return root, cache, Quarantine(str(state))


def applier(root: Path, the_plan, cache: ObjectCache, q: Quarantine, **kw) -> Applier:
    return Applier(str(root), the_plan, cache=cache, store=None, quarantine=q, run_id="r1", **kw)


def test_a_symlink_planted_after_the_plan_is_not_followed(tmp_path: Path) -> None:
    root, cache, q = setup(tmp_path, [b"payload"])
    (root / "a").mkdir()
    the_plan = plan([Entry("a", "dir", 0o755), f("a/x", b"payload")], [Observed("a", "dir", 0o755, in_store=True)],
                    Policy())
    outside = tmp_path / "etc"
    outside.mkdir()
    (root / "a").rmdir()
    (root / "a").symlink_to(outside)  # the attacker wins the race
    res = applier(root, the_plan, cache, q).run()
    assert list(outside.iterdir()) == []
    assert res.errors and res.errors[0][0] == "a/x" and "not a directory" in res.errors[0][1]


def test_a_corrupt_cache_entry_is_never_installed(tmp_path: Path) -> None:
    good = b"the real content"
    root, cache, q = setup(tmp_path, [good])
    cache_put(cache, object_id(good), b"the real c0ntent")  # bit rot in the cache
    (root / "x").write_bytes(b"old")
    the_plan = plan([f("x", good)], [Observed("x", "file", 0o644, 3, xxh(b"old"), in_store=True)], Policy())
    res = applier(root, the_plan, cache, q).run()
    assert (root / "x").read_bytes() == b"old"
    assert res.cache_discarded == 1 and not cache.has(object_id(good))
    assert "cannot be reached" in res.errors[0][1]
    assert sorted(p.name for p in root.iterdir()) == ["x"]  # no temp file left


@pytest.mark.parametrize("damage", [b"not a zstd frame", b"truncated"])
def test_a_damaged_frame_is_a_corrupt_entry(tmp_path: Path, damage: bytes) -> None:
    good = b"the real content " * 1000
    root, cache, q = setup(tmp_path, [good])
    frame = Path(cache.dest(object_id(good)))
    frame.write_bytes(damage if damage != b"truncated" else frame.read_bytes()[:-8])
    res = applier(root, plan([f("x", good)], [], Policy()), cache, q).run()
    assert not (root / "x").exists() and res.cache_discarded == 1 and not cache.has(object_id(good))
    assert sorted(p.name for p in root.iterdir()) == []  # no temp file left


def test_a_cache_written_before_compression_is_still_read(tmp_path: Path) -> None:
    """Upgrade path: objects/<2 hex>/<62 hex> holding the content itself stays a valid entry."""
    old = b"cached by an older regend\n"
    root, cache, q = setup(tmp_path, [])
    Path(cache.dest(object_id(old))).parent.mkdir(parents=True, exist_ok=True)
    Path(cache.path(object_id(old))).write_bytes(old)
    assert cache.has(object_id(old)) and cache.missing([object_id(old)]) == []
    res = applier(root, plan([f("x", old)], [], Policy()), cache, q).run()
    assert (root / "x").read_bytes() == old and not res.errors and res.cache_discarded == 0


def test_something_that_appeared_after_the_scan_is_kept(tmp_path: Path) -> None:
    root, cache, q = setup(tmp_path, [b"ours"])
    the_plan = plan([f("new", b"ours")], [], Policy())
    (root / "new").write_bytes(b"written by someone meanwhile")
    res = applier(root, the_plan, cache, q).run()
    assert (root / "new").read_bytes() == b"ours"
    assert res.quarantined == ["new"]
    [item] = q.items("r1")
    assert Path(q.stored_path(item)).read_bytes() == b"written by someone meanwhile"


def test_sigterm_stops_after_the_current_operation_without_temp_files(tmp_path: Path) -> None:
    datas = [bytes([i]) * 100 for i in range(5)]
    root, cache, q = setup(tmp_path, datas)
    the_plan = plan([f(f"f{i}", d) for i, d in enumerate(datas)], [], Policy())
    stop = threading.Event()

    class StopAfter(Ticker):
        def tick(self) -> None:
            if self.n == 2:
                stop.set()
            super().tick()

    with pytest.raises(Interrupted):
        applier(root, the_plan, cache, q, ticker=StopAfter(stop=stop)).run()
    assert not [p for p in root.iterdir() if p.name.startswith(".regen-tmp-")]


def test_modes_are_exact_and_read_only_directories_are_filled_first(tmp_path: Path) -> None:
    root, cache, q = setup(tmp_path, [b"s"])
    target = [Entry("ro", "dir", 0o555), f("ro/suid", b"s", 0o4755), Entry("ro/sub", "dir", 0o700)]
    res = applier(root, plan(target, [], Policy()), cache, q).run()
    assert not res.errors
    assert (root / "ro").stat().st_mode & 0o7777 == 0o555
    assert (root / "ro/suid").stat().st_mode & 0o7777 == 0o4755
    assert (root / "ro/sub").stat().st_mode & 0o7777 == 0o700
    (root / "ro").chmod(0o755)


def test_an_install_moves_objects_fetched_by_this_run_and_copies_the_others(tmp_path: Path) -> None:
    """`move`: the last path using an object this process fetched (cache.fresh) gets the cache's copy
    by rename (the content is written once); an earlier path with the same object, and an object
    cached by an earlier run (not fresh: hashed as it is copied), are copies."""
    shared, fetched, older = b"in two places", b"fetched now", b"cached before"
    root, cache, q = setup(tmp_path, [older])
    for data in (shared, fetched):  # as an install's fetch writes them: uncompressed, noted fresh
        Path(cache.raw_dest(object_id(data))).write_bytes(data)
        cache.fresh.add(object_id(data))
    entries = [f("a/1", shared), f("a/2", shared, 0o600), f("b", fetched, 0o755), f("c", older)]
    the_plan = plan([Entry("a", "dir", 0o755), *entries], [], Policy())
    res = applier(root, the_plan, cache, q, move=True).run()
    assert not res.errors
    assert {p: ((root / p).read_bytes(), (root / p).stat().st_mode & 0o7777) for p in ("a/1", "a/2", "b", "c")} == {
        "a/1": (shared, 0o644), "a/2": (shared, 0o600), "b": (fetched, 0o755), "c": (older, 0o644)}
    assert res.moved == {object_id(shared): "a/2", object_id(fetched): "b"}
    assert cache.missing([object_id(d) for d in (shared, fetched, older)]) == sorted(
        [object_id(shared), object_id(fetched)])
    assert (root / "a/1").stat().st_ino != (root / "a/2").stat().st_ino
    assert sorted(p.name for p in root.rglob(".regen-tmp-*")) == []
