"""`regend check` is a dry run of the real thing (issue 11): it reports the plans the run's own
steps build (repair.scan_root / repair_plan, update.update_plan), so on any drift, with or
without a new generation, what a check lists is what the next `regend run --once` does."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from regen.daemon.config import load_config
from regen.daemon.run.dryrun import check
from regen.store import Store
from tests.conftest import Symlink

from .conftest import Client, expected, publish, snapshot

CHANGES = ("quarantine", "delete", "mkdir", "create", "replace", "symlink", "chmod", "link")
FILES = ("etc/a.conf", "etc/b.conf", "bin/tool", "lib/x/one.so", "lib/x/two.so", "doc/readme")
SPEC: dict[str, Any] = {**{p: f"{p} v1\n" for p in FILES}, "lib/current": Symlink("x"), "var/empty": None}
DRIFTS = {**{p: ("edit", "chmod", "delete") for p in FILES}, "lib/current": ("delete", "retarget"),
          "lib/x": ("delete",), "etc": ("chmod",)}


def drift(root: Path, path: str, how: str, n: int) -> None:
    """One change a person or a program could make to an installed tree (nothing if the path is gone)."""
    full = root / path
    if not os.path.lexists(full):
        return
    if how == "edit":
        full.write_text(f"edited {n}\n")
    elif how == "chmod":
        full.chmod(0o700 if full.is_dir() else 0o600)
    elif how == "retarget":
        full.unlink()
        full.symlink_to("elsewhere")
    elif full.is_dir() and not full.is_symlink():
        shutil.rmtree(full)
    else:
        full.unlink()


def planned(part: dict[str, Any] | None) -> set[str]:
    """Every path a check's plan (repair or update) lists under a change."""
    return {p for c in CHANGES for p in part["plan"][c]["paths"]} if part else set()


def counts(part: dict[str, Any] | None) -> dict[str, int]:
    return {c: part.get(c, 0) if part else 0 for c in CHANGES}


def test_check_lists_what_the_next_run_does(client: Client, file_store: Store, signing_key) -> None:
    """Random drift on a small installed tree (and maybe a new generation): the drift categories and
    paths `regend check --json` lists are the run's, its repair and update plans count what the run
    applies, and the paths they list are the paths the run changes on disk. (Each example's run
    converges the tree again: the next one starts from an installed tree.)"""
    publish(file_store, signing_key, SPEC, number=1)
    client.run()
    state: dict[str, Any] = {"spec": dict(SPEC), "number": 1}

    @settings(max_examples=30, deadline=None)
    @given(changes=st.lists(st.sampled_from([(p, h) for p, hs in DRIFTS.items() for h in hs]), max_size=4),
           junk=st.integers(0, 2),
           release=st.none() | st.dictionaries(st.sampled_from((*FILES, "new/file")), st.sampled_from(("v2", "gone")),
                                               min_size=1, max_size=3))
    def example(changes: list[tuple[str, str]], junk: int, release: dict[str, str] | None) -> None:
        for n, (path, how) in enumerate(changes):
            drift(client.root, path, how, n)
        for n in range(junk):
            where = client.root / "etc" if (client.root / "etc").is_dir() else client.root
            (where / f"junk{n}").write_text("j")
        if release is not None:
            state["number"] += 1
            state["spec"] = {**state["spec"], **{p: f"{p} v{state['number']}\n" for p, w in release.items()
                                                 if w == "v2"}}
            for path in (p for p, w in release.items() if w == "gone"):
                state["spec"].pop(path, None)
            publish(file_store, signing_key, state["spec"], number=state["number"])
        data = json.loads(json.dumps(check(load_config(str(client.config_path), {}))))  # what --json prints
        before = snapshot(client.root)
        report = client.run().report
        after = snapshot(client.root)
        assert report.outcome in ("ok", "repaired", "updated"), report.errors
        assert data["drift"] == dict(report.drift)
        assert counts(data["repair"]) == counts(report.steps.get("repair"))
        update = data["update"]["plan"] if data["update"] and data["update"].get("pending") else None
        assert counts(update) == counts(report.steps.get("update"))
        moved = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
        if release is None:
            assert moved == planned(data["repair"])
        else:  # (a path the repair restores and the update changes again may end as it was)
            assert moved <= planned(data["repair"]) | planned(update)
        assert {p: v for p, v in after.items() if "junk" not in p} == expected(state["spec"])

    example()
