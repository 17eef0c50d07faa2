"""fsck: every kind of damage is found, all of it in one run, and a clean store is clean."""

from __future__ import annotations

import json

import pytest

from regen.store import SecretKey, Store, fsck, layout, object_id, sign_envelope, trust_map
from tests.store.conftest import Publisher


@pytest.fixture
def published(publisher: Publisher) -> Publisher:
    """stable 1 and 2 (ref), an overlay for pc-01."""
    publisher.generation({"etc/a": b"alpha", "etc/b": b"beta"}, number=1)
    publisher.generation({"etc/a": b"alpha 2", "etc/b": b"beta", "etc/c": b"gamma"}, number=2)
    publisher.overlay("pc-01", {"etc/hostname": b"pc-01\n"})
    return publisher


def kinds(findings: tuple[object, ...]) -> list[tuple[str, str]]:
    return sorted((f.kind, f.subject) for f in findings)  # type: ignore[attr-defined]


def test_clean_store_has_no_findings(published: Publisher, signing_key: SecretKey) -> None:
    result = fsck(published.store, trust_map([signing_key.public]))
    assert result.findings == () and not result.damaged
    assert result.generations_checked == 2 and result.objects_checked == len(published.store.list_objects())


def test_corrupt_object_is_found(published: Publisher, signing_key: SecretKey) -> None:
    store = published.store
    oid = object_id(b"beta")
    store.backend.write(layout.object_path(oid), b"r" + b"bit rot")
    result = fsck(store, trust_map([signing_key.public]))
    assert kinds(result.findings) == [("corrupt", oid)] and result.damaged
    assert oid in result.findings[0].detail


def test_missing_object_is_found_with_the_path_that_needs_it(published: Publisher, signing_key: SecretKey) -> None:
    store = published.store
    oid = object_id(b"gamma")
    store.delete_object(oid)
    result = fsck(store, trust_map([signing_key.public]), read_data=False)
    assert kinds(result.findings) == [("missing", oid)]
    assert "etc/c" in result.findings[0].detail and "generations/stable/0000000002.json" in result.findings[0].detail


def test_bad_signature_is_found(published: Publisher, signing_key: SecretKey) -> None:
    store = published.store
    path = layout.generation_path("stable", 1)
    env = json.loads(store.backend.read(path))
    env["signed"]["message"] = "rewritten by someone"
    store.backend.write(path, json.dumps(env).encode())
    result = fsck(store, trust_map([signing_key.public]))
    assert kinds(result.findings) == [("signature", path)]


def test_records_must_verify_with_the_trusted_keys(published: Publisher, other_key: SecretKey) -> None:
    """Given trusted keys, a record signed by any other key is a finding (clients would refuse it)."""
    result = fsck(published.store, trust_map([other_key.public]))
    subjects = {f.subject for f in result.findings if f.kind in ("signature", "ref") and f.severity == "error"}
    assert subjects == {"generations/stable/0000000001.json", "generations/stable/0000000002.json",
                        "refs/stable", "hosts/pc-01/overlay.json"}
    # the publisher's key file under keys/ confers no trust: it is listed as not trusted
    assert {(f.subject, f.severity) for f in result.findings if f.subject.startswith("keys/")} == \
        {(layout.key_path(published.key.public.keyid), "warning")}
    # without trusted keys, signatures are not checked, and fsck says so (keys/ is never used instead)
    assert [(f.subject, f.detail) for f in fsck(published.store).findings] == \
        [("keys", "signatures not checked: no trusted key given")]


def test_ref_that_differs_from_its_record_is_found(published: Publisher, signing_key: SecretKey,
                                                  other_key: SecretKey) -> None:
    store = published.store
    gen2 = store.peek_generation(store.read_generation("stable", 2))
    resigned = sign_envelope(gen2.to_record(), [signing_key, other_key])  # valid, but not the stored record
    store.backend.write("refs/stable", resigned)
    result = fsck(store, trust_map([signing_key.public]))
    assert kinds(result.findings) == [("ref", "refs/stable")]
    assert "differs" in result.findings[0].detail


def test_record_out_of_place_is_found(published: Publisher, signing_key: SecretKey) -> None:
    store = published.store
    store.backend.write(layout.generation_path("stable", 7), store.read_generation("stable", 2))
    result = fsck(store, trust_map([signing_key.public]))
    assert kinds(result.findings) == [("record", "generations/stable/0000000007.json")]


def test_all_problems_are_reported_in_one_run(published: Publisher, signing_key: SecretKey,
                                             other_key: SecretKey) -> None:
    store = published.store
    corrupt, missing = object_id(b"alpha"), object_id(b"gamma")
    store.backend.write(layout.object_path(corrupt), b"r" + b"not alpha")
    store.delete_object(missing)
    path1 = layout.generation_path("stable", 1)
    env = json.loads(store.backend.read(path1))
    env["signed"]["message"] = "tampered"
    store.backend.write(path1, json.dumps(env).encode())
    gen2 = store.peek_generation(store.read_generation("stable", 2))
    store.backend.write("refs/stable", sign_envelope(gen2.to_record(), [signing_key, other_key]))
    store.backend.write("hosts/pc-01/overlay.json", b"{not json")

    result = fsck(store, trust_map([signing_key.public]))
    assert kinds(result.findings) == sorted([
        ("corrupt", corrupt),
        ("missing", missing),
        ("signature", path1),
        ("ref", "refs/stable"),
        ("record", "hosts/pc-01/overlay.json"),
    ])
    assert result.damaged


def test_repair_sets_corrupt_objects_aside(published: Publisher, signing_key: SecretKey) -> None:
    store = published.store
    oid = object_id(b"beta")
    store.backend.write(layout.object_path(oid), b"r" + b"bit rot")
    fsck(store, trust_map([signing_key.public]), repair=True)
    assert store.backend.read(f"corrupt/{oid}") == b"r" + b"bit rot"
    assert oid not in store.list_objects()
    after = fsck(store, trust_map([signing_key.public]))
    assert ("missing", oid) in kinds(after.findings)  # now absent: the next snapshot re-uploads it


def test_progress_counts_every_object_read(published: Publisher, signing_key: SecretKey) -> None:
    store: Store = published.store
    ticks: list[int] = []
    fsck(store, trust_map([signing_key.public]), progress=lambda n, b: ticks.append(n))
    assert sum(ticks) == len(store.list_objects())
