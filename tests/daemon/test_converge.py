"""Property: from any tree state, one run produces exactly the target tree; preserved paths untouched."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from regen.store import Store
from tests.conftest import Mode, Symlink, make_tree

from .conftest import Client, expected, fingerprint, index_mismatches, publish, snapshot

NAMES = st.sampled_from(["a", "b", "c", "keep", "d e", "ü"])
CONTENT = st.sampled_from([b"", b"one", b"two", b"x" * 5000])
LEAF = st.one_of(
    CONTENT,
    st.builds(Mode, CONTENT, st.sampled_from([0o600, 0o644, 0o755, 0o700])),
    st.builds(Symlink, st.sampled_from(["a", "../b", "/etc/passwd", "keep"])),
)
TREE = st.recursive(LEAF, lambda kids: st.dictionaries(NAMES, kids, max_size=3), max_leaves=10)


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not isinstance(node, dict):
        return {prefix: node} if prefix else {}
    if prefix:
        out[prefix] = None
    for name, child in node.items():
        out.update(flatten(child, f"{prefix}/{name}" if prefix else name))
    return out


def trees() -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(NAMES, TREE, max_size=4).map(flatten)


def preserved(path: str) -> bool:
    return path == "keep" or path.startswith("keep/")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=trees(), disk=trees(), target=trees(), junk=st.sampled_from(["quarantine", "keep"]))
# a preserved symlink whose target the run removes: the link itself stays as it was (dangling)
@example(first={}, disk={"a": None, "b": None, "keep": Symlink("a")}, target={}, junk="quarantine")
def test_any_state_converges_to_the_target(signing_key, key_files, mem_url, first: dict, disk: dict,
                                           target: dict, junk: str) -> None:
    store = Store.init(f"memory://conv-{uuid.uuid4().hex[:8]}/store")
    with tempfile.TemporaryDirectory() as tmp:
        c = Client(Path(tmp), store.url, key_files[1])
        c.root.mkdir()
        c.write_config(preserve=["keep"], junk=junk)
        publish(store, signing_key, first, number=1)
        assert c.run().exit_code == 0
        # the disk becomes an arbitrary tree (preserved paths included)
        for child in list(c.root.iterdir()):
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        make_tree(c.root, disk)
        before_keep = fingerprint(c.root / "keep") if os.path.lexists(c.root / "keep") else None
        publish(store, signing_key, target, number=2)

        result = c.run()

        assert result.exit_code == 0, result.report.errors
        after = snapshot(c.root, skip=preserved)
        want = {p: v for p, v in expected(target).items() if not preserved(p)}
        if junk == "quarantine":
            assert after == want
        else:
            assert {p: after.get(p) for p in want} == want
            assert not [p for p in after if ".regen-tmp-" in p]
        assert index_mismatches(c, skip=preserved) == []  # after a completed run the index is the disk
        if before_keep is not None:
            assert fingerprint(c.root / "keep") == before_keep
        # and the next run has nothing left to do
        again = c.run()
        assert again.report.outcome == "ok", (again.report.drift, again.report.errors)
        os.sync()
