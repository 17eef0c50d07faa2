"""Tree order has one key (regen.store.sort_key): the index, the walks and the manifests order
every name alike, names that are not UTF-8 included (issue 11: two keys disagreed on them)."""

from __future__ import annotations

import os

from hypothesis import given
from hypothesis import strategies as st

from regen.daemon.tree.index import key_path, path_key
from regen.store import merge_join, sort_key

names = st.binary(min_size=1, max_size=12).filter(lambda b: b"\x00" not in b)
paths = st.lists(names, min_size=1, max_size=3).map(lambda parts: b"/".join(parts))


@given(st.lists(paths, max_size=20))
def test_the_key_orders_paths_as_their_bytes_with_slash_lowest(raw: list[bytes]) -> None:
    decoded = [os.fsdecode(b) for b in raw]
    assert sorted(decoded, key=sort_key) == [os.fsdecode(b) for b in sorted(raw, key=lambda b: b.replace(b"/", b"\0"))]


@given(paths)
def test_the_index_and_the_store_share_the_key(raw: bytes) -> None:
    path = os.fsdecode(raw)
    assert path_key(path) == sort_key(path) == raw.replace(b"/", b"\0")
    assert key_path(path_key(path)) == path


def test_a_directory_is_followed_by_its_descendants() -> None:
    assert sorted(["a.b", "a/z", "a", "a/b/c", "ab"], key=sort_key) == ["a", "a/b/c", "a/z", "a.b", "ab"]


@given(st.sets(paths, max_size=15), st.sets(paths, max_size=15))
def test_merge_join_pairs_every_key_once_in_tree_order(left: set[bytes], right: set[bytes]) -> None:
    lp = sorted((os.fsdecode(b) for b in left), key=sort_key)
    rp = sorted((os.fsdecode(b) for b in right), key=sort_key)
    pairs = list(merge_join(lp, rp, sort_key, sort_key))
    keys = [sort_key(a if a is not None else b) for a, b in pairs]  # type: ignore[arg-type]
    assert keys == sorted(set(keys)) and len(keys) == len(left | right)
    assert all((a is None or a in lp) and (b is None or b in rp) and (a is None or b is None or a == b)
               for a, b in pairs)
    assert {a for a, _ in pairs if a is not None} == set(lp) and {b for _, b in pairs if b is not None} == set(rp)
