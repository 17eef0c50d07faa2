"""`regen gc` counts only records that verify (issue 12): an attacker who can write the store but
holds no key plants generation records with high numbers, so that a gc keeping "the newest N"
would drop the real generations and sweep the objects they need.

The real `regen gc` runs with the operator's key; afterwards every object a kept real generation
needs is still there, `regen fsck` finds nothing wrong with the real records, and the forged
ones are listed (not counted, not deleted).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from regen.store import Generation, Policy, SecretKey, Store, build_manifest, format_time, generate, layout, sign_envelope, utcnow

from .conftest import publish, spec_entries


def gen_spec(i: int) -> dict[str, Any]:
    return {"etc/app.conf": f"release {i}\n", f"opt/only-in-{i}": f"payload {i}\n"}


def needed_objects(store: Store, number: int) -> set[str]:
    """The manifest and file objects generation `number` of stable names."""
    gen = store.peek_generation(store.read_generation("stable", number))
    out = {gen.manifest}
    with store.open_manifest(gen.manifest) as entries:
        out.update(e.oid for e in entries if e.oid is not None)
    return out


def plant(store: Store, number: int, *, key: SecretKey | None) -> None:
    """A record at generations/stable/<number>.json: signed by a stranger's key, or plain junk."""
    if key is None:
        store.backend.write(layout.generation_path("stable", number), b'{"signed": {"number": %d}}' % number)
        return
    entries, blobs = spec_entries({"etc/app.conf": "attacker\n"})
    for data in blobs.values():
        store.put(data)
    data, moid, _ = build_manifest(entries)
    store.put(data)
    gen = Generation(store.store_id, "stable", number, moid, format_time(utcnow()), None, "forged", Policy(), {})
    store.backend.write(layout.generation_path("stable", number), sign_envelope(gen.to_record(), [key]))


def age_objects(root: Path) -> None:
    for p in (root / "objects").rglob("*"):
        if p.is_file():
            os.utime(p, (1, 1))  # older than any grace period


@pytest.mark.parametrize("forgery", ["stranger-key", "junk"])
def test_forged_high_records_do_not_push_real_generations_out(forgery: str, tmp_path: Path, signing_key: SecretKey,
                                                             key_files: tuple[Path, Path], run_regen: Any) -> None:
    root = tmp_path / "store"
    store = Store.init(f"file://{root}")
    for i in range(1, 5):
        publish(store, signing_key, gen_spec(i), number=i)
    stranger = generate()
    for n in range(1000, 1010):  # ten "newer" generations than any real one
        plant(store, n, key=stranger if forgery == "stranger-key" else None)
    age_objects(root)
    env = {"REGEN_STORE": store.url, "REGEN_KEY": str(key_files[0])}
    needed = {n: needed_objects(store, n) for n in (3, 4)}

    res = json.loads(run_regen("gc", "--keep", "2", "--grace", "1s", "--json", env=env).stdout)

    assert res["generations_dropped"] == [{"channel": "stable", "number": 1}, {"channel": "stable", "number": 2}]
    assert res["stats"]["unverified_generations"] == 10
    assert sorted(u["path"] for u in res["unverified"]) == [layout.generation_path("stable", n)
                                                            for n in range(1000, 1010)]
    assert store.generation_numbers("stable") == [3, 4, *range(1000, 1010)]  # forged ones are left in place
    for n, oids in needed.items():
        assert all(store.has(o) for o in oids), f"gc deleted objects generation {n} needs"
    _, only_in_1 = spec_entries({"opt/only-in-1": "payload 1\n"})
    assert not any(store.has(o) for o in only_in_1)  # the dropped real generation's own objects were swept

    text = run_regen("gc", "--keep", "2", "--grace", "1s", env=env)
    assert "generations/stable/0000001000.json does not verify with the trusted keys" in text.stderr
    fsck = json.loads(run_regen("fsck", "--json", env=env, exit_code=1).stdout)
    bad = {f["subject"] for f in fsck["findings"] if f["severity"] == "error"}
    assert bad and all("/000000100" in s for s in bad), bad  # only the forged records are damage


def test_gc_needs_the_operators_trust_and_stops_on_a_ref_that_does_not_verify(
        tmp_path: Path, signing_key: SecretKey, run_regen: Any) -> None:
    """Without a key gc refuses (exit 2); a ref that does not verify (tampered, or the wrong key
    given) stops it before anything is deleted: wrong trust must never sweep a published generation."""
    root = tmp_path / "store"
    store = Store.init(f"file://{root}")
    for i in range(1, 4):
        publish(store, signing_key, gen_spec(i), number=i)
    age_objects(root)
    before = sorted(p for p in root.rglob("*") if p.is_file())
    err = run_regen("gc", "--grace", "1s", env={"REGEN_STORE": store.url}, exit_code=2).stderr
    assert "'regen gc' checks signatures and no trusted key is configured" in err
    other = tmp_path / "other.key"
    run_regen("keygen", str(other))
    err = run_regen("gc", "--keep", "1", "--grace", "1s", env={"REGEN_STORE": store.url, "REGEN_KEY": str(other)},
                    exit_code=2).stderr
    assert "refs/stable does not verify with the trusted keys" in err
    assert sorted(p for p in root.rglob("*") if p.is_file()) == before
