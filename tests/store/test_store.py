"""The Store facade on memory:// and file://: init/open, objects in batches, the publish
order, the one-read ref, overlays, reports and publisher keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from regen.store import (
    Entry,
    Generation,
    GenerationNotFound,
    HardwareFinding,
    IntegrityError,
    InvalidInput,
    InvalidName,
    ObjectCorrupt,
    ObjectMissing,
    Overlay,
    RecordInvalid,
    Report,
    SecretKey,
    Store,
    StoreExists,
    StoreNotFound,
    UnsupportedFormat,
    build_manifest,
    format_time,
    object_id,
    sign_envelope,
    trust_map,
    utcnow,
    verify_generation,
    verify_overlay,
)
from tests.store.conftest import Publisher, tree_entries

FILES = {"etc/hosts": b"127.0.0.1 localhost\n", "etc/motd": b"welcome\n", "usr/bin/tool": b"\x7fELF" + b"\0" * 100}


# -- init and open -----------------------------------------------------------------------------------

def test_init_writes_a_config_that_open_reads(store: Store) -> None:
    reopened = Store.open(store.url)
    assert reopened.config == store.config
    assert len(store.store_id) == 32 and store.config.compression == "zstd"
    raw = json.loads(store.backend.read("regen.json"))
    assert raw["type"] == "regen-store" and raw["format"] == 1 and raw["hash"] == "blake3"


def test_init_refuses_an_existing_store(store: Store) -> None:
    before = store.backend.read("regen.json")
    with pytest.raises(StoreExists) as err:
        Store.init(store.url)
    assert store.store_id in str(err.value) and err.value.exit_code == 2
    assert store.backend.read("regen.json") == before


def test_init_refuses_a_foreign_regen_json(file_url: str, tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    (root / "regen.json").write_text('{"name": "some other tool"}')
    with pytest.raises(StoreExists, match="not a regen store"):
        Store.init(file_url)
    assert (root / "regen.json").read_text() == '{"name": "some other tool"}'


def test_init_refuses_a_newer_store(store: Store) -> None:
    cfg = json.loads(store.backend.read("regen.json"))
    cfg["format"] = 2
    store.backend.write("regen.json", json.dumps(cfg).encode())
    with pytest.raises(UnsupportedFormat):
        Store.init(store.url)
    with pytest.raises(UnsupportedFormat, match="format 2"):
        _ = Store.open(store.url).store_id


def test_init_refuses_unknown_compression(mem_url: str) -> None:
    with pytest.raises(InvalidInput, match="brotli"):
        Store.init(mem_url, compression="brotli")


def test_open_of_a_missing_store_says_so(file_url: str, mem_url: str) -> None:
    for url in (file_url, mem_url):
        s = Store.open(url)  # lazy: nothing read yet
        with pytest.raises(StoreNotFound) as err:
            _ = s.store_id
        assert url.split("://")[1] in str(err.value) and "regen init" in err.value.hint and err.value.exit_code == 2


@pytest.mark.parametrize("content", [b"not json", b'{"type": "regen-store", "format": 1, "features": [], '
                                                  b'"hash": "blake3", "compression": "zstd"}'])
def test_damaged_regen_json_is_one_clear_error(store: Store, content: bytes) -> None:
    store.backend.write("regen.json", content)
    with pytest.raises(StoreNotFound, match="regen.json"):
        _ = Store.open(store.url).store_id


# -- objects -----------------------------------------------------------------------------------------

def test_put_get_has_missing(store: Store) -> None:
    a, b = b"alpha" * 100, b"beta"
    oid_a = store.put(a)
    assert oid_a == object_id(a) and store.get(oid_a) == a and store.has(oid_a)
    assert store.missing([oid_a, object_id(b), object_id(b)]) == {object_id(b)}
    with pytest.raises(ObjectMissing) as err:
        store.get(object_id(b))
    assert object_id(b) in str(err.value) and "fsck" in err.value.hint


def test_put_is_write_once(store: Store) -> None:
    oid = store.put(b"content")
    writes = store.counters.writes
    assert store.put(b"content") == oid
    assert store.counters.writes == writes  # already there: checked, not rewritten


def test_put_file_uploads_once_and_refuses_a_file_that_changed(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"x" * 5000)
    digest = store.put_file(str(f))
    assert digest is not None and digest.oid == object_id(b"x" * 5000) and store.get(digest.oid) == b"x" * 5000
    assert store.put_file(str(f)) is None and store.put_file(str(f), digest.oid) is None
    f.write_bytes(b"y" * 5000)  # the file changed between scan and upload
    with pytest.raises(IntegrityError, match="changed while it was read"):
        store.put_file(str(f), object_id(b"z"))
    assert not store.has(object_id(b"y" * 5000))


def test_put_many_and_fetch_many_report_progress_and_collect_errors(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    contents = {f"f{i}": f"file {i} ".encode() * (i + 1) for i in range(20)}
    items = []
    for name, data in contents.items():
        (src / name).write_bytes(data)
        items.append((object_id(data), str(src / name)))
    store.put(contents["f0"])  # one already present
    ticks: list[tuple[int, int]] = []
    res = store.put_many(items, progress=lambda n, b: ticks.append((n, b)))
    assert not res.errors and res.skipped == [object_id(contents["f0"])]
    assert sorted(res.done) == sorted(object_id(d) for n, d in contents.items() if n != "f0")
    assert sum(n for n, _ in ticks) == 19 and sum(b for _, b in ticks) == res.bytes
    assert res.bytes == sum(len(d) for n, d in contents.items() if n != "f0")

    out = tmp_path / "out"
    out.mkdir()
    missing = object_id(b"not in the store")
    wanted = [oid for oid, _ in items] + [missing]
    ticks.clear()
    got = store.fetch_many(wanted, lambda oid: str(out / oid), progress=lambda n, b: ticks.append((n, b)))
    assert set(got.done) == {oid for oid, _ in items} and set(got.errors) == {missing}
    assert isinstance(got.errors[missing], ObjectMissing)
    assert sum(n for n, _ in ticks) == 20 and sum(b for _, b in ticks) == got.bytes == sum(map(len, contents.values()))
    for oid, path in items:
        assert (out / oid).read_bytes() == Path(path).read_bytes()
    assert not (out / missing).exists()


def test_open_manifest_verifies_before_yielding_anything(store: Store) -> None:
    data, moid, _ = build_manifest(tree_entries(FILES))
    store.put(data)
    with store.open_manifest(moid) as entries:
        assert [e.path for e in entries] == ["etc", "etc/hosts", "etc/motd", "usr", "usr/bin", "usr/bin/tool"]
    other, _, _ = build_manifest(tree_entries({"x": b"1"}))
    store.backend.write(f"objects/{moid[:2]}/{moid[2:]}", b"r" + other)  # valid manifest, wrong id
    with pytest.raises(ObjectCorrupt):
        with store.open_manifest(moid) as entries:
            pytest.fail(f"yielded {next(entries)} from a corrupt manifest")


# -- generations and the publish order ----------------------------------------------------------------

def _gen(store: Store, manifest: str, number: int = 1, channel: str = "stable") -> Generation:
    return Generation(store.store_id, channel, number, manifest, format_time(utcnow()))


def test_publish_round_trip(publisher: Publisher, signing_key: SecretKey) -> None:
    store = publisher.store
    g = publisher.generation(FILES)
    ref = store.read_ref("stable")
    assert ref == store.read_generation("stable", 1) == publisher.envelopes[("stable", 1)]
    assert verify_generation(ref, trust_map([signing_key.public]), store_id=store.store_id, channel="stable") == g
    assert store.read_manifest(g.manifest) == sorted(tree_entries(FILES), key=lambda e: e.path.replace("/", "\0"))
    assert store.channels() == ["stable"] and store.generation_numbers("stable") == [1]
    assert store.peek_generation(ref).number == 1
    assert store.backend.list("generations") == ["generations/stable/0000000001.json"]


def test_write_generation_refuses_a_manifest_not_yet_stored(store: Store, signing_key: SecretKey) -> None:
    data, moid, _ = build_manifest([Entry("a", "dir", 0o755)])
    with pytest.raises(ObjectMissing, match="refusing to publish"):
        store.write_generation(_gen(store, moid), [signing_key])
    assert store.generation_numbers("stable") == [] and store.read_ref("stable") is None


def test_generation_numbers_are_taken_once(publisher: Publisher, signing_key: SecretKey, other_key: SecretKey) -> None:
    store = publisher.store
    g = publisher.generation(FILES)
    first = store.read_generation("stable", 1)
    with pytest.raises(StoreExists, match="generation 1 of channel 'stable' already exists"):
        store.write_generation(_gen(store, g.manifest), [other_key])
    assert store.read_generation("stable", 1) == first


def test_write_generation_refuses_unsigned_and_foreign_records(publisher: Publisher, signing_key: SecretKey) -> None:
    store = publisher.store
    moid = publisher.manifest(FILES)
    with pytest.raises(InvalidInput, match="signing key"):
        store.write_generation(_gen(store, moid), [])
    foreign = Generation("f" * 32, "stable", 1, moid, format_time(utcnow()))
    with pytest.raises(InvalidInput, match="is for store"):
        store.write_generation(foreign, [signing_key])
    assert store.generation_numbers("stable") == []


def test_set_ref_only_to_a_stored_record(publisher: Publisher, signing_key: SecretKey) -> None:
    store = publisher.store
    publisher.generation(FILES, number=1)
    unstored = Generation(store.store_id, "stable", 2, publisher.manifest({"a": b"b"}), format_time(utcnow()))
    env = sign_envelope(unstored.to_record(), [signing_key])  # signed, never written to generations/
    with pytest.raises(GenerationNotFound):
        store.set_ref("stable", env)
    with pytest.raises(InvalidInput, match="channel 'stable'"):
        store.set_ref("lab", publisher.envelopes[("stable", 1)])
    with pytest.raises(RecordInvalid):
        store.set_ref("stable", b"garbage")
    assert store.read_ref("stable") == publisher.envelopes[("stable", 1)]
    assert store.read_ref("lab") is None


def test_reading_a_ref_is_one_request(publisher: Publisher) -> None:
    """A client with nothing to do reads one small file: no config read, no listing, no stat."""
    store = publisher.store
    publisher.generation(FILES)
    client = Store.open(store.url, config=store.config)
    assert client.read_ref("stable") == publisher.envelopes[("stable", 1)]
    c = client.counters.as_dict()
    assert (c["reads"], c["lists"], c["stats"], c["writes"]) == (1, 0, 0, 0)
    assert c["bytes_read"] == len(publisher.envelopes[("stable", 1)])
    fresh = Store.open(store.url, config=store.config)
    assert fresh.read_ref("never-published") is None and fresh.counters.reads == 1


def test_missing_generation_and_bad_names(store: Store) -> None:
    with pytest.raises(GenerationNotFound, match="generation 3 of channel 'stable'"):
        store.read_generation("stable", 3)
    for bad in ("../x", "a/b", "", ".hidden", "x" * 65, "stable.json"):
        with pytest.raises(InvalidName):
            store.read_ref(bad)


# -- overlays ------------------------------------------------------------------------------------------

def test_overlay_and_tombstone(publisher: Publisher, signing_key: SecretKey) -> None:
    store = publisher.store
    ov = publisher.overlay("pc-01", {"etc/hostname": b"pc-01\n"})
    trusted = trust_map([signing_key.public])
    data = store.read_overlay("pc-01")
    assert data is not None
    assert verify_overlay(data, trusted, store_id=store.store_id, host="pc-01") == ov
    assert [e.path for e in store.read_manifest(ov.manifest)] == ["etc", "etc/hostname"]  # type: ignore[arg-type]
    publisher.overlay("pc-01", None, number=2)
    tomb = verify_overlay(store.read_overlay("pc-01"), trusted, store_id=store.store_id, host="pc-01",  # type: ignore[arg-type]
                          min_number=1)
    assert tomb.manifest is None and tomb.number == 2
    assert store.overlay_hosts() == ["pc-01"] and store.read_overlay("pc-02") is None


def test_overlay_needs_its_manifest_stored(store: Store, signing_key: SecretKey) -> None:
    ov = Overlay(store.store_id, "pc-01", 1, object_id(b"nothing"), format_time(utcnow()))
    with pytest.raises(ObjectMissing):
        store.write_overlay(ov, [signing_key])
    assert store.read_overlay("pc-01") is None


# -- reports -------------------------------------------------------------------------------------------

def _report(host: str, run: str, outcome: str = "ok") -> Report:
    return Report(host, run, "2025-01-02T03:04:05Z", "2025-01-02T03:04:09Z", outcome, 0, channel="stable",
                  generation_before=1, generation_after=2,
                  findings=(HardwareFinding("disk", "warn", "reallocated sectors", {"count": 8}),))


def test_reports_history_and_latest(store: Store) -> None:
    p1 = store.put_report(_report("pc-01", "run-1"))
    p2 = store.put_report(_report("pc-01", "run-2", "repaired"))
    store.put_report(_report("pc-02", "run-1"))
    assert p1 is not None and p2 is not None
    assert p1.startswith("reports/pc-01/") and p1.endswith("-ok.json") and p1 < p2
    assert store.put_report(_report("pc-01", "run-3", "repaired"), history=False) is None  # latest.json only
    assert store.report_hosts() == ["pc-01", "pc-02"]
    assert store.report_paths("pc-01") == [p1, p2]
    assert store.read_report(p1).run_id == "run-1"
    reader = Store.open(store.url, config=store.config)
    latest = reader.read_latest_report("pc-01")
    assert latest == _report("pc-01", "run-3", "repaired")
    assert reader.counters.reads == 1 and reader.counters.lists == 0  # one read per host, whatever the history
    assert reader.read_latest_report("pc-03") is None


def test_a_damaged_latest_report_is_record_invalid(store: Store) -> None:
    store.backend.write("reports/pc-01/latest.json", b'{"type": "regen-report", "format": 1}')
    with pytest.raises(RecordInvalid, match="pc-01"):
        store.read_latest_report("pc-01")


def test_report_json_round_trip() -> None:
    r = _report("pc-01", "run-1")
    assert Report.from_json(r.to_json()) == r
    with pytest.raises(RecordInvalid, match="outcome"):
        Report.from_json(r.to_json().replace(b'"ok"', b'"great"'))
    with pytest.raises(RecordInvalid, match="exit_code"):
        Report.from_json(r.to_json().replace(b'"exit_code": 0', b'"exit_code": true'))


# -- publisher keys --------------------------------------------------------------------------------------

def test_public_keys_of_signers_are_recorded(publisher: Publisher, signing_key: SecretKey,
                                             other_key: SecretKey) -> None:
    store = publisher.store
    moid = publisher.manifest(FILES)
    store.write_generation(_gen(store, moid), [signing_key, other_key])
    store.write_generation(_gen(store, moid, number=2), [signing_key])  # recorded once
    assert store.public_keys() == {k.public.keyid: k.public for k in (signing_key, other_key)}
    store.backend.write("keys/garbage.pub", b"not a key")
    store.backend.write("keys/0000000000000000.pub", other_key.public.text().encode())  # under a false name
    assert set(store.public_keys()) == {signing_key.public.keyid, other_key.public.keyid}


@pytest.mark.parametrize("field, value", [("number", -1), ("created", "today"), ("expires", "2025-01-01 00:00")])
def test_write_generation_refuses_what_clients_would_refuse(publisher: Publisher, signing_key: SecretKey,
                                                            field: str, value: object) -> None:
    store = publisher.store
    moid = publisher.manifest(FILES)
    fields = dict(store_id=store.store_id, channel="stable", number=1, manifest=moid, created=format_time(utcnow()))
    fields[field] = value
    with pytest.raises(InvalidInput, match="malformed record"):
        store.write_generation(Generation(**fields), [signing_key])  # type: ignore[arg-type]
    assert store.backend.list("generations") == []
