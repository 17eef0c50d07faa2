"""An update planned from the manifests' differing lines (delta.py) is the full plan.

regend plans an update from the delta only when the tree is exactly the installed generation
(plus kept unmanaged paths); on any such tree and any new generation, the plan must be the one
the full merge of every entry with every path gives -- same operations, same order.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regen.daemon.tree.index import path_key
from regen.daemon.tree.plan import Observed, plan
from regen.store import Entry, Policy, Store, build_manifest, manifest_delta, matches, sort_key

from .conftest import Client, expected, publish, publish_overlay, snapshot
from .test_cycle import GEN1

NAMES = st.sampled_from(["a", "b", "c", "d.so", "é"])
OIDS = st.sampled_from(["1" * 64, "2" * 64, "3" * 64])
XXH = {"1" * 64: "1" * 32, "2" * 64: "2" * 32, "3" * 64: "3" * 32}
LEAVES = st.one_of(
    st.tuples(st.just("file"), st.sampled_from([0o644, 0o755]), OIDS),
    st.tuples(st.just("symlink"), st.just(0o777), st.sampled_from(["a", "../b"])),
)
TREES = st.recursive(st.dictionaries(NAMES, LEAVES, max_size=3),
                     lambda sub: st.dictionaries(NAMES, st.one_of(LEAVES, st.tuples(
                         st.just("dir"), st.sampled_from([0o755, 0o700]), sub)), max_size=3),
                     max_leaves=14)
POLICIES = st.builds(Policy, preserve=st.sampled_from([(), ("b/**",), ("a",)]),
                     base=st.sampled_from([(), ("c*",)]), junk=st.sampled_from(["quarantine", "keep"]))


def entries_of(tree: dict, prefix: str = "") -> list[Entry]:
    out: list[Entry] = []
    for name, value in tree.items():
        path = prefix + name
        if value[0] == "dir":
            out.append(Entry(path, "dir", value[1]))
            out.extend(entries_of(value[2], path + "/"))
        elif value[0] == "file":
            out.append(Entry(path, "file", value[1], 3, value[2], XXH[value[2]]))
        else:
            out.append(Entry(path, "symlink", value[1], target=value[2]))
    return sorted(out, key=lambda e: sort_key(e.path))


def disk(installed: list[Entry], junk: list[str], policy: Policy) -> list[Observed]:
    """The tree as the index knows it after a clean repair: every installed entry (a store
    object), plus unmanaged files kept in installed directories; preserved paths never seen."""
    seen = [Observed(e.path, e.kind, e.mode, e.size, e.xxh, e.target, in_store=True) for e in installed]
    dirs = {e.path for e in installed if e.kind == "dir"}
    taken = {e.path for e in installed}
    for path in junk:
        parent = path.rpartition("/")[0]
        if path not in taken and (not parent or parent in dirs):
            taken.add(path)
            seen.append(Observed(path, "file", 0o600, 5, "9" * 32))
    seen = [o for o in seen if not (policy.preserve and matches(o.path, policy.preserve))]
    return sorted(seen, key=lambda o: path_key(o.path))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(old=TREES, new=TREES, policy=POLICIES,
       junk=st.lists(st.sampled_from(["x", "a/x", "b/x", "c/x", "a/b/x"]), max_size=3))
def test_the_delta_plan_is_the_full_plan(old: dict, new: dict, policy: Policy, junk: list[str]) -> None:
    installed, target = entries_of(old), entries_of(new)
    if policy.junk == "quarantine":
        junk = []  # a clean repair under "quarantine" leaves no unmanaged file
    observed = disk(installed, junk, policy)
    full = plan(target, observed, policy)

    delta = manifest_delta(io.BytesIO(build_manifest(installed)[0]), io.BytesIO(build_manifest(target)[0]))
    touched = {e.path for e in delta.added} | set(delta.removed)
    at = [o for o in observed if o.path in touched or not o.in_store]  # (Index.observed_facts_at)
    assert plan(delta.added, at, policy) == full
    assert delta.objects == {e.oid: e.size for e in target if e.kind == "file"}


def _update(c: Client) -> dict[str, Any]:
    out = json.loads(c.regend("run", "--once", "--json").stdout)
    assert out["outcome"] == "updated", out
    return out


def test_updates_are_planned_from_the_delta_with_kept_junk_and_a_directory_replaced(
        make_client: Callable[..., Client], file_store: Store, signing_key) -> None:
    publish(file_store, signing_key, GEN1, number=1)
    c = make_client(file_store.url, junk="keep")
    c.regend("run", "--once")
    (c.root / "lib/data/mine.txt").write_text("kept junk")  # unmanaged, in a directory the update removes
    (c.root / "etc/local.conf").write_text("kept junk")     # unmanaged, in a directory that stays
    c.regend("run", "--once")
    gen2 = {k: v for k, v in GEN1.items() if not k.startswith("lib/")}
    gen2.update({"etc/app.conf": "port = 9090\n", "var/empty": "a file where a directory was", "lib": "a file"})
    publish(file_store, signing_key, gen2, number=2)
    out = _update(c)
    assert out["steps"]["update"]["planned"] == "delta"
    # lib/ goes for the file "lib" with all below it, whatever the junk mode: the kept file is
    # quarantined first (nothing lost), as a full plan does
    assert c.tree() == {**expected(gen2), "etc/local.conf": ("file", 0o644, b"kept junk")}
    assert out["steps"]["update"]["quarantine"] == 1 and out["steps"]["update"]["keep"] == 1
    runs = json.loads(c.regend("recover", "--list", "--json").stdout)
    assert [r["items"] for r in runs] == [1]
    again = json.loads(c.regend("check", "--json").stdout)
    assert again["drift"]["modified"]["count"] == 0


def test_an_update_is_planned_in_full_when_the_tree_is_not_known_clean(client: Client, file_store: Store,
                                                                      signing_key) -> None:
    publish(file_store, signing_key, GEN1, number=1)
    client.regend("run", "--once")
    gen2 = {**GEN1, "etc/app.conf": "port = 9090\n"}
    publish(file_store, signing_key, gen2, number=2)
    publish_overlay(file_store, signing_key, client.host, {"etc/host.conf": "mine\n"}, number=1)
    out = _update(client)  # an overlay: the tree is a merge of two manifests
    assert out["steps"]["update"]["planned"] == "full"
    assert client.tree() == expected({**gen2, "etc/host.conf": "mine\n"})
    publish_overlay(file_store, signing_key, client.host, None, number=2)
    gen3 = {**gen2, "etc/motd": "hi\n"}
    publish(file_store, signing_key, gen3, number=3)
    out = _update(client)
    assert out["steps"]["update"]["planned"] == "full"  # (from a tree with an overlay)
    gen4 = {**gen3, "etc/motd": "hello\n"}
    publish(file_store, signing_key, gen4, number=4)
    out = _update(client)
    assert out["steps"]["update"]["planned"] == "delta"
    assert client.tree() == expected(gen4)
