"""Sealed host overlays (issue 12 item 4): a host's overlay files are encrypted to its own key,
so a client that can list and read the whole store learns nothing of another host's secrets.

A two-host fleet on a folder store: host1 and host2 made their keys (`regend host-key`) and were
enrolled with the real `regen host enroll`; host2's overlay, set with the real `regen host set`,
holds a Wi-Fi PSK and a TLS key. The store is created with compression "none", so every byte a
writer stored lies in the files as written and a plain byte search over the store (loose objects,
packs, indexes, records) would find any plaintext copy.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.public
import nacl.signing
import pytest

from regen.store import ObjectCorrupt, SecretKey, Store, layout, load_secret_key, object_id, seal
from tests.servers import S3Server, Target

from ..conftest import make_tree, run_cli
from ..manager.conftest import one_error_line
from .conftest import Client

PSK = b"psk=" + secrets.token_hex(24).encode() + b"\n"
TLS = b"-----BEGIN PRIVATE KEY-----\n" + secrets.token_hex(48).encode() + b"\n-----END PRIVATE KEY-----\n"
OWN = {"etc/wifi/psk.conf": PSK, "etc/ssl/private/host2.pem": TLS, "etc/hostname": b"host2\n",
       "etc/wifi/empty.conf": b""}  # (the empty content is never stored nor fetched: not sealed)


@pytest.fixture
def fleet(request: pytest.FixtureRequest, tmp_path: Path, key_files: tuple[Path, Path]) -> dict[str, Any]:
    """A packed (param False: loose) folder store with one published generation; host1 and host2
    enrolled, nothing installed."""
    packed = getattr(request, "param", True)
    store = Store.init(f"file://{tmp_path / 'store'}", compression="none", packed=packed)
    env = {"REGEN_STORE": store.url, "REGEN_KEY": str(key_files[0])}
    ref = tmp_path / "ref"
    (ref / "etc").mkdir(parents=True)
    (ref / "etc" / "app.conf").write_bytes(b"shared setting\n")
    (ref / "etc" / "hostname").write_bytes(b"generic\n")
    run_cli("regen", "snapshot", str(ref), "-c", "stable", "-m", "base", "--publish", "-q", env=env)
    clients = {}
    for host in ("host1", "host2"):
        c = Client(tmp_path / host, store.url, key_files[1], host=host)
        c.root.mkdir(parents=True)
        c.write_config()
        pub = c.base / "host.pub"
        pub.write_text(c.regend("host-key").stdout)  # (made on first use)
        run_cli("regen", "host", "enroll", host, str(pub), env=env)
        clients[host] = c
    own = tmp_path / "own-host2"
    for rel, data in OWN.items():
        (own / rel).parent.mkdir(parents=True, exist_ok=True)
        (own / rel).write_bytes(data)
    (own / "etc/ssl/private/host2.pem").chmod(0o600)
    return {"store": store, "env": env, "clients": clients, "own": own, "tmp": tmp_path}


def _set(fleet: dict[str, Any]) -> dict[str, Any]:
    res = run_cli("regen", "host", "set", "host2", str(fleet["own"]), "-m", "secrets", "--json", env=fleet["env"])
    out: dict[str, Any] = json.loads(res.stdout)
    return out


def _key(c: Client) -> SecretKey:
    return load_secret_key(c.state / "host.key")


def _stored_files(store: Store) -> list[Path]:
    root = Path(store.url.removeprefix("file://"))
    return [p for p in root.rglob("*") if p.is_file()]


def _opens(key: SecretKey, box: bytes) -> bytes | None:
    private = nacl.signing.SigningKey(key.seed).to_curve25519_private_key()
    try:
        return bytes(nacl.public.SealedBox(private).decrypt(box))
    except nacl.exceptions.CryptoError:
        return None


def _blobs(store: Store) -> dict[str, bytes]:
    """Every object a client could list or locate: loose objects and every blob of every pack."""
    fresh = Store.open(store.url)
    out = {oid: fresh.get(oid) for oid in fresh.list_objects()}
    for loc in fresh.packs:
        out[loc.oid] = fresh.get(loc.oid)
    return out


@pytest.mark.slow
def test_the_overlay_reaches_its_host_and_no_one_else(fleet: dict[str, Any]) -> None:
    store, env, h1, h2 = fleet["store"], fleet["env"], fleet["clients"]["host1"], fleet["clients"]["host2"]
    result = _set(fleet)
    assert result["sealed_to"] == _key(h2).public.keyid
    # (a) host2 installs its files byte for byte, modes kept
    for c in (h1, h2):
        c.regend("run", "--once")
    for rel, data in OWN.items():
        assert (h2.root / rel).read_bytes() == data
    assert oct((h2.root / "etc/ssl/private/host2.pem").stat().st_mode & 0o777) == "0o600"
    assert (h1.root / "etc/hostname").read_bytes() == b"generic\n"
    assert not (h1.root / "etc/wifi").exists()

    # (b) no plaintext byte of host2's files, nor their names, anywhere in the store
    files = _stored_files(store)
    assert any("packs" in p.parts for p in files)  # the channel's content is packed
    for p in files:
        data = p.read_bytes()
        for needle in (PSK.strip(), TLS.splitlines()[1], b"psk.conf", b"host2.pem"):
            assert needle not in data, f"{needle[:12]!r} found in {p}"
    # host1's key opens nothing it can list; host2's opens exactly the overlay's boxes
    k1, k2 = _key(h1), _key(h2)
    blobs = _blobs(store)
    assert all(_opens(k1, b) is None for b in blobs.values())
    opened = {oid: _opens(k2, b) for oid, b in blobs.items()}
    plain = {object_id(p): p for p in opened.values() if p is not None}
    assert object_id(PSK) in plain and object_id(TLS) in plain and len(plain) == 5  # 3 files, manifest, table
    # host1's own state never held them either
    for p in h1.state.rglob("*"):
        if p.is_file():
            assert PSK.strip() not in p.read_bytes()
    # gc keeps the boxes (it cannot open them: the record lists them); fsck verifies them by their own ids
    time.sleep(1.1)
    run_cli("regen", "gc", "--grace", "1s", "-q", env=env)
    assert {o for o, p in opened.items() if p is not None} <= set(Store.open(store.url).list_objects())
    fsck = run_cli("regen", "fsck", "--json", env=env)
    assert json.loads(fsck.stdout)["damaged"] is False

    # (d) drift of a sealed file is repaired: from the cache, then (cache lost) fetched and opened again
    psk = h2.root / "etc/wifi/psk.conf"
    psk.write_bytes(b"psk=changed-locally-by-someone\n")
    h2.regend("run", "--once")
    assert psk.read_bytes() == PSK
    shutil.rmtree(h2.state / "objects")  # (the object cache: CACHE_DIR)
    psk.write_bytes(b"psk=changed again, and no cache\n")
    report = json.loads(h2.regend("run", "--once", "--json").stdout)
    assert psk.read_bytes() == PSK
    assert report["outcome"] == "repaired"


def test_an_unchanged_overlay_set_again_reuses_its_boxes(fleet: dict[str, Any]) -> None:
    """The manager remembers its boxes (cache dir): the same files give the same signed `sealed`
    member, so host2 sees no new tree; a changed file costs its box, the manifest's and the table's."""
    store, h2, own = fleet["store"], fleet["clients"]["host2"], fleet["own"]

    def sealed() -> dict[str, Any]:
        from regen.store import peek_envelope

        data = store.read_overlay("host2")
        assert data is not None
        return dict(peek_envelope(data)["sealed"])

    first = _set(fleet)
    assert first["uploaded"]["objects"] == 5  # 3 files, the manifest, the table
    one = sealed()
    pending = json.loads(h2.regend("check", "--json", exit_code=None).stdout)  # a dry run reads the sealed manifest
    assert pending["update"]["objects_to_fetch"] == 4, pending  # 3 overlay files + etc/app.conf
    h2.regend("run", "--once")
    again = _set(fleet)
    assert again["uploaded"]["objects"] == 0 and sealed() == one
    report = json.loads(h2.regend("run", "--once", "--verify", "--json").stdout)
    assert report["outcome"] == "ok", report
    (own / "etc/hostname").write_bytes(b"host2.example\n")
    assert _set(fleet)["uploaded"]["objects"] == 3
    two = sealed()
    assert len(set(two["objects"]) - set(one["objects"])) == 2 and two["box"] != one["box"]
    report = json.loads(h2.regend("run", "--once", "--verify", "--json").stdout)
    assert (h2.root / "etc/hostname").read_bytes() == b"host2.example\n" and report["outcome"] == "updated"


def test_boxes_collected_after_a_reseal_elsewhere_are_found_again(fleet: dict[str, Any]) -> None:
    """The overlay is set again from another admin machine (no remembered boxes: all new), gc removes
    the boxes host2 installed from, host2 lost its cache and its file drifted: the failed repair makes
    the run read the overlay record again (the update records its current boxes), and the next run
    repairs the file from them."""
    store, env, h2 = fleet["store"], fleet["env"], fleet["clients"]["host2"]
    _set(fleet)
    h2.regend("run", "--once")
    elsewhere = {**env, "XDG_CACHE_HOME": str(fleet["tmp"] / "other-admin-cache")}
    run_cli("regen", "host", "set", "host2", str(fleet["own"]), "-q", env=elsewhere)
    time.sleep(1.1)
    run_cli("regen", "gc", "--grace", "1s", "-q", env=env)
    shutil.rmtree(h2.state / "objects")
    psk = h2.root / "etc/wifi/psk.conf"
    psk.write_bytes(b"psk=drifted\n")
    first = json.loads(h2.regend("run", "--once", "--json", exit_code=None).stdout)
    assert first["steps"]["repair"]["outcome"] == "failed" and first["steps"]["update"]["outcome"] == "done"
    second = json.loads(h2.regend("run", "--once", "--json").stdout)  # from the boxes the overlay names now
    assert psk.read_bytes() == PSK and second["outcome"] == "repaired", second


def test_a_resealed_object_is_refused(fleet: dict[str, Any]) -> None:
    """(c) The attacker can write the store and knows host2's public key (hosts/host2/key.json): it
    seals its own PSK to host2 and puts the box where host2's PSK box lies. host2 refuses it."""
    store, h2 = fleet["store"], fleet["clients"]["host2"]
    _set(fleet)
    k2 = _key(h2)
    victim = next(oid for oid, b in _blobs(store).items() if _opens(k2, b) == PSK)
    evil = b"psk=attacker-network\n"
    path = Path(store.url.removeprefix("file://")) / layout.object_path(victim)
    path.write_bytes(b"r" + seal(evil, k2.public))
    res = h2.regend("run", "--once", exit_code=None)
    assert res.returncode == 1, res.stderr
    assert not (h2.root / "etc/wifi/psk.conf").exists()  # nothing of the overlay's files half-installed
    assert all(evil not in p.read_bytes() for p in h2.root.rglob("*") if p.is_file())
    assert victim in json.dumps(h2.last_report())
    # fsck (no host key) finds the box that does not hash to its sealed id, and only that one
    found = json.loads(run_cli("regen", "fsck", "--json", env=fleet["env"], exit_code=1).stdout)
    assert [f["subject"] for f in found["findings"] if f["severity"] == "error"] == [victim], found
    # the rule behind it, where only the plaintext id can catch it: a box that opens fine with
    # host2's key (sealed by anyone) is refused unless it hashes to the id the signed overlay names
    fresh = Store.open(store.url)
    forged = fresh.put(seal(evil, k2.public))
    fresh.add_sealed({object_id(PSK): forged}, k2)
    with pytest.raises(ObjectCorrupt, match="does not hash to"):
        fresh.get(object_id(PSK))


def test_an_overlay_for_a_host_not_enrolled_is_refused_unless_plaintext(fleet: dict[str, Any]) -> None:
    store, env, own = fleet["store"], fleet["env"], fleet["own"]
    before = sorted(map(str, _stored_files(store)))
    res = run_cli("regen", "host", "set", "host3", str(own), env=env, exit_code=2)
    line = one_error_line(res.stderr)
    assert "host 'host3' is not enrolled" in line and "regen host enroll host3" in line and "--plaintext" in line
    assert sorted(map(str, _stored_files(store))) == before  # nothing uploaded, no record
    out = json.loads(run_cli("regen", "host", "set", "host3", str(own), "--plaintext", "--json", env=env).stdout)
    assert out["sealed_to"] is None
    shown = json.loads(run_cli("regen", "host", "show", "host3", "--json", env=env).stdout)
    assert shown["sealed_to"] is None and len(shown["entries"]) == 8  # 4 files, 4 dirs
    _set(fleet)
    shown = json.loads(run_cli("regen", "host", "show", "host2", "--json", env=env).stdout)
    assert shown["sealed_to"] == _key(fleet["clients"]["host2"]).public.keyid and shown["entries"] == []


def test_a_host_whose_key_changed_is_told_to_reenroll(fleet: dict[str, Any]) -> None:
    """host2 re-imaged (a new key) but its overlay is still sealed to the old one: a one-line refusal."""
    h2 = fleet["clients"]["host2"]
    _set(fleet)
    os.unlink(h2.state / "host.key")
    os.unlink(h2.state / "host.key.pub")
    h2.regend("host-key")
    res = h2.regend("run", "--once", exit_code=None)
    assert res.returncode == 1
    text = json.dumps(h2.last_report())
    assert "is sealed to host key" in text and "regen host enroll host2" in text
    assert not (h2.root / "etc/wifi/psk.conf").exists()
    # the admin re-enrolls it (and is told to set the overlay again), sets it: host2 installs it
    pub = h2.base / "host.pub"
    pub.write_text(h2.regend("host-key").stdout)
    res = run_cli("regen", "host", "enroll", "host2", str(pub), env=fleet["env"])
    assert "regen: warning: the overlay of host2 is sealed to its old key: run 'regen host set host2 DIR'" in res.stderr
    _set(fleet)
    h2.regend("run", "--once")
    assert (h2.root / "etc/wifi/psk.conf").read_bytes() == PSK


@pytest.mark.slow
def test_sealed_overlay_on_s3_with_the_documented_policies(s3_server: S3Server, s3_target: Target,
                                                           tmp_path: Path) -> None:
    """On moto with IAM on: the admin (admin policy) enrolls host1 and seals its overlay; host1 (client
    policy) installs it; no object of the bucket decodes to anything holding the secret."""
    from tests.e2e.conftest import Site
    from tests.hardening.test_least_privilege import HOST, user_options

    admin = user_options(s3_server, s3_target, "s3-admin-policy.json", "admin")
    client = user_options(s3_server, s3_target, "s3-client-policy.json", "client")
    s = Site(replace(s3_target, options=client, write_options=admin), tmp_path, HOST)
    s.create()
    make_tree(s.ref, {"etc/app.conf": "v1\n"})
    s.snapshot("one")
    s.install_client()
    pub = tmp_path / "host.pub"
    pub.write_text(s.regend("host-key").stdout)
    s.regen("host", "enroll", HOST, str(pub), "--key", str(s.key))
    own = make_tree(tmp_path / "own", {"etc/wifi/psk.conf": PSK, "etc/ssl/private/host.pem": TLS})
    s.regen("host", "set", HOST, str(own), "--key", str(s.key))
    report, _ = s.run_once()
    assert report["outcome"] == "updated", report
    assert (s.root / "etc/wifi/psk.conf").read_bytes() == PSK
    assert (s.root / "etc/ssl/private/host.pem").read_bytes() == TLS
    store = Store.open(s.target.write_url, s.target.write_options)
    oids = store.list_objects()
    assert len(oids) >= 6  # the channel's 2 (content, manifest) + 4 boxes (2 files, manifest, table)
    for oid in oids:  # decoded (stores compress): plaintext would show here
        data = store.get(oid)
        assert PSK.strip() not in data and b"psk.conf" not in data and TLS.splitlines()[1] not in data
    assert json.loads(s.regen("fsck", "--key", str(s.key), "--json").stdout)["damaged"] is False


@pytest.mark.slow
@pytest.mark.parametrize("fleet", [False], indirect=True, ids=["loose"])
def test_migrate_packs_the_boxes_as_opaque_blobs(fleet: dict[str, Any]) -> None:
    """`regen migrate` packs the sealed objects like any loose object; host2 reads them from packs."""
    store, env, h2 = fleet["store"], fleet["env"], fleet["clients"]["host2"]
    _set(fleet)
    run_cli("regen", "migrate", "-q", env=env)
    packed = Store.open(store.url)
    boxes = {oid for oid, b in _blobs(store).items() if _opens(_key(h2), b) is not None}
    assert len(boxes) == 5 and all(packed.locate(o) is not None for o in boxes)
    assert not boxes & set(packed.list_objects())  # the loose copies are gone
    h2.regend("run", "--once")
    for rel, data in OWN.items():
        assert (h2.root / rel).read_bytes() == data
    for p in _stored_files(store):
        assert PSK.strip() not in p.read_bytes(), p
    time.sleep(1.1)
    run_cli("regen", "gc", "--grace", "1s", "-q", env=env)  # referenced: kept (not repacked away)
    assert all(Store.open(store.url).locate(o) is not None for o in boxes)
    assert json.loads(run_cli("regen", "fsck", "--json", env=env).stdout)["damaged"] is False
