"""Attacks on a client by someone who can write to the store, or even sign with the trusted key.

Hostile generations are crafted directly with the regen.store API (bypassing the manager's
checks); most are signed with the trusted key, so only the daemon's own validation (manifest
validator, verify_generation, object verification, confined apply) stands between them and
the disk. Every one must be refused with a clear error in the run's report and output, and
leave the client tree -- and everything outside it -- exactly as it was (bytes and modes).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import zstandard

from regen.store import (
    Generation,
    Overlay,
    Policy,
    SecretKey,
    Store,
    build_manifest,
    format_time,
    generate,
    layout,
    object_id,
    sign_envelope,
    utcnow,
    xxh,
)
from regen.store.errors import EXIT_DAMAGED

from ..conftest import Mode, Symlink, make_tree
from .conftest import Client, Recorder, assert_same_tree, expected_state, files_in, publish, spec_entries, tree_state

POLICY = Policy(preserve=("home",))
G1 = {"etc/a.conf": "a1\n", "etc/b.conf": "b1\n", "app/bin/run": Mode(b"#!/bin/sh\necho run\n", 0o755),
      "app/lib/libx.so": b"lib v1", "home": None}
HEADER = b'{"features":[],"format":1,"type":"regen-manifest"}\n'
PWNED = b"pwned by a hostile generation"


# -- the world: a store, the trusted key, an installed client, a directory outside its root -----------
@dataclass
class World:
    store: Store
    key: SecretKey
    client: Client
    outside: Path
    number: int = 1
    installed: int = 1

    def next_number(self) -> int:
        self.number += 1
        return self.number

    def states(self) -> tuple[dict, dict]:  # type: ignore[type-arg]
        return tree_state(self.client.root), tree_state(self.outside)

    def publish_manifest(self, manifest: bytes, *, blobs: tuple[bytes, ...] = (PWNED,), **record: Any) -> bytes:
        """Store `manifest` as it is (no validation) and point the ref at a signed generation naming it."""
        for b in blobs:
            self.store.put(b)
        moid = self.store.put(manifest)
        return self.publish_record(self.record(moid, **record))

    def record(self, manifest: str, **fields: Any) -> Generation:
        gen = Generation(self.store.store_id, "stable", self.next_number(), manifest, format_time(utcnow()), 1,
                         "hostile", POLICY, {})
        return replace(gen, **fields)

    def publish_record(self, gen: Generation, key: SecretKey | None = None) -> bytes:
        env = self.store.write_generation(gen, [key or self.key])
        self.store.set_ref(gen.channel, env)
        return env

    def write_ref(self, data: bytes, channel: str = "stable") -> None:
        """A ref written directly into the store's files: what an attacker with write access can do."""
        path = Path(self.store.url.removeprefix("file://")) / layout.ref_path(channel)
        path.write_bytes(data)

    def valid_manifest(self, spec: dict[str, Any] | None = None) -> tuple[bytes, str, dict[str, bytes]]:
        entries, blobs = spec_entries(spec or {**G1, "etc/a.conf": "a2\n"})
        data, moid, _ = build_manifest(entries)
        for b in blobs.values():
            self.store.put(b)
        self.store.put(data)
        return data, moid, blobs


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("attacks")
    store = Store.init(f"file://{base / 'store'}")
    key = generate()
    pub = base / "admin.pub"
    pub.write_text(key.public.text())
    publish(store, key, G1, number=1, policy=POLICY)
    client = Client(base / "client", store.url, pub)
    client.root.mkdir(parents=True)
    client.write_config(failures={"max_consecutive": 1000})
    make_tree(client.root, {"home/alice/notes": b"alice's notes"})
    outside = make_tree(base / "outside", {"secret": b"outside root", "lib/libx.so": b"the outside lib"})
    with pytest.MonkeyPatch.context() as mp:  # (module scope: set up before the autouse clean_env)
        for var in [v for v in os.environ if v.startswith(("REGEN_", "FSSPEC_", "AWS_"))]:
            mp.delenv(var)
        client.regend("run", "--once")
    yield World(store, key, client, outside)


def run_refused(w: World, record: Recorder, *words: str, exit_codes: tuple[int, ...] = (0, 1)) -> dict[str, Any]:
    """One regend run that must refuse: clear error, tree and outside untouched, still on its generation."""
    before, outside = w.states()
    res = w.client.regend("run", "--once", exit_code=None)
    assert res.returncode in exit_codes, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr and "internal error" not in res.stderr, res.stderr
    report = w.client.last_report()
    text = " ".join(report["errors"]).lower()
    assert report["errors"] and any(word.lower() in text for word in words), (words, report["errors"])
    assert report["outcome"] == "failing" and report["generation_after"] == w.installed, report
    assert "error: " in res.stdout and any(word.lower() in res.stdout.lower() for word in words), res.stdout
    after, outside_after = w.states()
    assert_same_tree(before, after, "the client tree")
    assert_same_tree(outside, outside_after, "the directory outside root")
    assert not (w.outside / "pwned").exists() and not Path("/pwned").exists() and not os.path.lexists(OUT)
    record.intact(files_in(after) + files_in(outside_after))
    return report


# -- hostile manifests, signed with the trusted key ---------------------------------------------------
def line(**d: Any) -> bytes:
    return json.dumps(d, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass") + b"\n"


def f(path: str, data: bytes = PWNED, mode: int = 0o644) -> bytes:
    return line(k="f", m=mode, o=object_id(data), p=path, s=len(data), x=xxh(data))


def d(path: str, mode: int = 0o755) -> bytes:
    return line(k="d", m=mode, p=path)


def sl(path: str, target: str) -> bytes:
    return line(k="l", m=0o777, p=path, t=target)


def g1_lines() -> list[bytes]:
    entries, _ = spec_entries(G1)
    data, _, _ = build_manifest(entries)
    return data.splitlines(keepends=True)[1:]


def around(*hostile: bytes, after: str = "app/lib/libx.so") -> bytes:
    """G1's entries with `hostile` lines inserted after the entry of `after` (tree order kept around it)."""
    out = [HEADER]
    for ln in g1_lines():
        out.append(ln)
        if json.loads(ln)["p"] == after:
            out.extend(hostile)
    return b"".join(out)


def long_path_lines() -> list[bytes]:
    lines, path = [], ""
    for _ in range(21):  # 21 x 200-byte names: past 4096 bytes
        path = f"{path}/{'d' * 199}" if path else "d" * 199
        lines.append(d(path))
    return lines


OUT = "/tmp/regen-hardening-outside"
MANIFEST_ATTACKS = {
    "dotdot-inside": (around(f("etc/../../outside/pwned"), after="etc/b.conf"), ["not normalized"]),
    "dotdot-leading": (HEADER + f("../outside/pwned") + b"".join(g1_lines()), ["not normalized"]),
    "absolute-path": (around(f(f"{OUT}/pwned"), after="app/lib/libx.so"), ["absolute"]),
    "nul-in-path": (around(f("etc/pw\x00ned"), after="etc/b.conf"), ["nul"]),
    "dot-component": (around(f("etc/./pwned"), after="etc/b.conf"), ["not normalized"]),
    "empty-component": (around(f("etc//pwned"), after="etc/b.conf"), ["not normalized"]),
    "name-over-255-bytes": (around(f("etc/" + "n" * 256), after="etc/b.conf"), ["longer than 255"]),
    "path-over-4096-bytes": (around(*long_path_lines(), after="app/lib/libx.so"), ["longer than 4096"]),
    "file-below-own-symlink": (around(sl("etc/lnk", OUT), f("etc/lnk/pwned"), after="etc/b.conf"),
                               ["not a directory entry"]),
    "dir-over-own-symlink": (around(sl("etc/lnk", OUT), d("etc/lnk"), f("etc/lnk/pwned"), after="etc/b.conf"),
                             ["duplicate"]),
    "file-below-a-file": (around(f("etc/b.conf/pwned"), after="etc/b.conf"), ["not a directory entry"]),
    "parent-without-entry": (around(f("nodir/pwned"), after="home"), ["not a directory entry"]),
    "duplicate-path": (around(f("etc/b.conf"), after="etc/b.conf"), ["duplicate"]),
    "unsorted": (HEADER + b"".join(sorted(g1_lines(), reverse=True)), ["tree order", "not a directory entry"]),
    "extra-key-owner": (around(line(k="f", m=0o4755, o=object_id(PWNED), p="etc/suid", s=len(PWNED), u=0,
                                    x=xxh(PWNED)), after="etc/b.conf"), ["unexpected keys"]),
    "mode-out-of-range": (around(f("etc/pwned", mode=0o170644), after="etc/b.conf"), ["invalid mode"]),
    "size-negative": (around(line(k="f", m=0o644, o=object_id(PWNED), p="etc/pwned", s=-1, x=xxh(PWNED)),
                             after="etc/b.conf"), ["invalid size"]),
    "symlink-target-nul": (around(sl("etc/lnk", "/etc/\x00passwd"), after="etc/b.conf"), ["invalid target"]),
    "header-newer-format": (HEADER.replace(b'"format":1', b'"format":9') + b"".join(g1_lines()), ["format"]),
    "header-unknown-feature": (HEADER.replace(b'"features":[]', b'"features":["setuid-root"]')
                               + b"".join(g1_lines()), ["features"]),
    "not-a-manifest": (b"#!/bin/sh\nrm -rf /\n", ["not a regen manifest", "not json"]),
    "truncated-line": (around(b'{"k":"f","m":420,"p":"etc/trunc', after="etc/b.conf").rstrip(b"\n"),
                       ["truncated", "not json"]),
    "line-over-64k": (around(line(k="l", m=0o777, p="etc/big", t="x" * 70000), after="etc/b.conf"),
                      ["truncated or longer", "invalid target"]),
}


@pytest.mark.parametrize("name", list(MANIFEST_ATTACKS))
def test_hostile_manifest_refused(world: World, record: Recorder, name: str) -> None:
    manifest, words = MANIFEST_ATTACKS[name]
    world.publish_manifest(manifest)
    run_refused(world, record, *words, "manifest")


def test_case_colliding_paths_on_case_sensitive_fs(world: World, tmp_path: Path, record: Recorder) -> None:
    """Scenario: README and readme are two files on a case-sensitive target: installed faithfully."""
    store = Store.init(f"file://{tmp_path / 'store'}")
    spec = {"doc/README": b"upper", "doc/readme": b"lower", "doc/ReadMe": Mode(b"mixed", 0o600)}
    publish(store, world.key, spec, number=1)
    c = Client(tmp_path / "client", store.url, world.client.pub_key)
    c.root.mkdir(parents=True)
    c.write_config()
    c.regend("run", "--once")
    assert c.tree() == {b"doc": ("dir", 0o755, b""), b"doc/README": ("file", 0o644, b"upper"),
                        b"doc/ReadMe": ("file", 0o600, b"mixed"), b"doc/readme": ("file", 0o644, b"lower")}
    record.intact(3)


def test_case_colliding_paths_on_a_case_insensitive_target(world: World, tmp_path: Path, casefold_mount: Path,
                                                           record: Recorder) -> None:
    """Scenario: the client root is on a case-insensitive filesystem (README and readme are one
    file there). An honest generation installs and stays clean; a generation with doc/README and
    doc/readme (or Etc/ next to etc/) is refused before anything changes, instead of one path
    overwriting the other on every run; fixing the reference tree lets the client move on."""
    store = Store.init(f"file://{tmp_path / 'store'}")
    gen1 = {"etc/app.conf": b"port = 1\n", "doc/README": b"upper", "bin/tool": Mode(b"#!/bin/sh\n", 0o755)}
    publish(store, world.key, gen1, number=1)
    c = Client(tmp_path / "client", store.url, world.client.pub_key, root_dir=casefold_mount)
    c.state.mkdir(parents=True)
    c.write_config()
    c.regend("run", "--once")
    installed = c.tree()
    assert installed == expected_state(gen1)
    again = c.regend("run", "--once")  # stable on that filesystem: no drift found, nothing rewritten
    assert again.stdout.startswith("ok:") and c.last_report()["outcome"] == "ok", again.stdout
    for number, extra in ((2, {"doc/readme": b"lower"}), (3, {"ETC/app.conf": b"port = 666\n"}),
                          (4, {"doc/Rea\u0301dme": b"x", "doc/Re\u00e1dme": b"y"})):
        publish(store, world.key, {**gen1, "etc/app.conf": b"port = 2\n", **extra}, number=number)
        res = c.regend("run", "--once", exit_code=None)
        assert res.returncode in (0, 1) and "Traceback" not in res.stderr, (res.stdout, res.stderr)
        assert res.stdout.startswith("failing:") and "letter case" in res.stdout, res.stdout
        report = c.last_report()
        assert any("letter case" in e for e in report["errors"]), report["errors"]
        assert report["outcome"] == "failing" and report["generation_after"] == 1, report
        assert c.tree() == installed  # refused before anything changed (etc/app.conf still port = 1)
        assert not c.temp_files()
    fixed = {**gen1, "etc/app.conf": b"port = 2\n", "doc/readme-lower": b"lower"}
    publish(store, world.key, fixed, number=5)
    c.regend("run", "--once")
    assert c.tree() == expected_state(fixed)
    record.intact(len(fixed))


# -- hostile records ----------------------------------------------------------------------------------
def test_forged_signature(world: World, record: Recorder) -> None:
    _, moid, _ = world.valid_manifest()
    env = json.loads(world.publish_record(world.record(moid)))
    sig = bytearray(base64.b64decode(env["signatures"][0]["sig"]))
    sig[10] ^= 0x01
    env["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    world.write_ref(json.dumps(env).encode())
    run_refused(world, record, "does not verify")


def test_unsigned_record(world: World, record: Recorder) -> None:
    _, moid, _ = world.valid_manifest()
    env = json.loads(world.publish_record(world.record(moid)))
    env["signatures"] = []
    world.write_ref(json.dumps(env).encode())
    run_refused(world, record, "not signed")


def test_signed_with_unknown_key(world: World, record: Recorder) -> None:
    _, moid, _ = world.valid_manifest()
    world.publish_record(world.record(moid), key=generate())
    run_refused(world, record, "unknown key")


def test_tampered_after_signing(world: World, record: Recorder) -> None:
    """The manifest id swapped for an empty tree's after signing: would wipe the machine."""
    empty = world.store.put(HEADER)
    _, moid, _ = world.valid_manifest()
    env = json.loads(world.publish_record(world.record(moid)))
    env["signed"]["manifest"] = empty
    world.write_ref(json.dumps(env, sort_keys=True, separators=(",", ":")).encode())
    run_refused(world, record, "does not verify")


def test_record_of_another_channel(world: World, record: Recorder) -> None:
    _, moid, _ = world.valid_manifest()
    gen = world.record(moid, channel="beta")
    world.write_ref(world.store.write_generation(gen, [world.key]))
    run_refused(world, record, "channel 'beta'")


def test_record_of_another_store(world: World, record: Recorder) -> None:
    _, moid, _ = world.valid_manifest()
    rec = world.record(moid, store_id="f" * 32).to_record()
    world.write_ref(sign_envelope(rec, [world.key]))
    run_refused(world, record, "signed for store")


def test_expired_record(world: World, record: Recorder) -> None:
    _, moid, _ = world.valid_manifest()
    world.publish_record(world.record(moid, expires=format_time(utcnow() - timedelta(hours=1))))
    run_refused(world, record, "expired")


def test_rollback_to_an_older_generation(world: World, record: Recorder) -> None:
    """The ref moved back to generation 1 after the client accepted a higher one (freeze / rollback)."""
    gen = world.record(world.valid_manifest()[1])
    world.publish_record(gen)  # a newer one the client accepts...
    world.client.regend("run", "--once")
    world.installed = gen.number
    world.write_ref(world.store.read_generation("stable", 1))  # ...then the ref points back at 1
    run_refused(world, record, "older than generation")


def test_record_over_the_size_limit(world: World, record: Recorder) -> None:
    """A ref of 2 MiB (over the 1 MiB limit): refused without being parsed."""
    _, moid, _ = world.valid_manifest()
    rec = world.record(moid, message="x" * (2 << 20)).to_record()
    world.write_ref(sign_envelope(rec, [world.key]))
    run_refused(world, record, "over the limit")


def test_endless_ref(world: World, record: Recorder) -> None:
    """A ref of 64 MiB of garbage ("endless data"): at most the limit + 1 byte is read."""
    path = Path(world.store.url.removeprefix("file://")) / layout.ref_path("stable")
    with open(path, "wb") as fp:
        fp.truncate(64 << 20)
    run_refused(world, record, "over the limit")


def test_manifest_over_the_configured_limit(world: World, record: Recorder) -> None:
    """max_manifest_bytes = 4K and a (valid, signed) manifest of ~300 KB."""
    spec = {**G1, **{f"many/f{i:05}": f"{i}" for i in range(2500)}}
    _, moid, _ = world.valid_manifest(spec)
    world.publish_record(world.record(moid))
    world.client.write_config(limits={"max_manifest_bytes": "4K"})
    try:
        run_refused(world, record, "larger than the limit")
    finally:
        world.client.extra.pop("limits")
        world.client.write_config()


def _corrupt_object(world: World, oid: str, stored: bytes) -> None:
    (Path(world.store.url.removeprefix("file://")) / layout.object_path(oid)).write_bytes(stored)


def test_object_content_does_not_match_its_id(world: World, record: Recorder) -> None:
    data = b"new content of a.conf, then corrupted in the store\n"
    _, moid, _ = world.valid_manifest({**G1, "etc/a.conf": data})
    _corrupt_object(world, object_id(data), b"r" + data.replace(b"new", b"bad"))
    world.publish_record(world.record(moid))
    run_refused(world, record, "does not hash", "does not match", "corrupt", "damaged",
                exit_codes=(EXIT_DAMAGED,))  # a damaged store: the machine may start


def test_manifest_object_corrupted(world: World, record: Recorder) -> None:
    data, moid, _ = world.valid_manifest({**G1, "etc/new": b"new"})
    _corrupt_object(world, moid, b"r" + data.replace(b"etc/new", b"etc/pwn"))
    world.publish_record(world.record(moid))
    run_refused(world, record, "does not hash", "does not match", "corrupt", "damaged",
                exit_codes=(EXIT_DAMAGED,))  # a damaged store: the machine may start


def test_decompression_bomb_object(world: World, record: Recorder) -> None:
    """An object whose zstd frame inflates to 256 MiB for an entry of 11 bytes: refused at its size."""
    data = b"small file\n"
    _, moid, _ = world.valid_manifest({**G1, "etc/a.conf": data})
    _corrupt_object(world, object_id(data), b"z" + zstandard.ZstdCompressor().compress(b"\0" * (256 << 20)))
    world.publish_record(world.record(moid))
    run_refused(world, record, "bytes its manifest gives", "larger than the limit", exit_codes=(EXIT_DAMAGED,))
    cache = world.client.state / "objects"
    assert sum(p.stat().st_size for p in cache.rglob("*") if p.is_file()) < 1 << 20


def test_overlay_for_another_host(world: World, record: Recorder) -> None:
    """A (signed) overlay record of another host replayed into this host's overlay file."""
    _, moid, _ = world.valid_manifest()
    ov = Overlay(world.store.store_id, "other-host", 1, world.valid_manifest({"etc/hostname": b"pwned\n"})[1],
                 format_time(utcnow()))
    path = Path(world.store.url.removeprefix("file://")) / layout.overlay_path(world.client.host)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(sign_envelope(ov.to_record(), [world.key]))
    world.publish_record(world.record(moid))
    try:
        run_refused(world, record, "host 'other-host'")
    finally:
        path.unlink()


def pwn_procedure(w: World) -> dict[str, Any]:
    """A procedure that would prove it ran, as a store writer without the key would add it."""
    return {"chroot": False, "failure": "report", "name": "pwn", "on": ["install", "update", "repair"],
            "run": ["/bin/sh", "-c", f"echo pwned > {w.outside / 'pwned'}"], "stage": "after", "timeout": 30,
            "when": ["**"]}


def test_procedure_added_to_a_signed_record(world: World, record: Recorder) -> None:
    """Only signed procedures run: one added to a record after signing breaks the signature."""
    _, moid, _ = world.valid_manifest()
    env = json.loads(world.publish_record(world.record(moid)))
    env["signed"]["policy"]["procedure"] = [pwn_procedure(world)]
    env["signed"]["features"] = ["procedures"]
    world.write_ref(json.dumps(env, sort_keys=True, separators=(",", ":")).encode())
    run_refused(world, record, "does not verify")


def test_procedure_in_a_record_signed_by_an_unknown_key(world: World, record: Recorder) -> None:
    from regen.store import Procedure

    _, moid, _ = world.valid_manifest()
    p = pwn_procedure(world)
    proc = Procedure(p["name"], tuple(p["when"]), tuple(p["run"]))
    world.publish_record(world.record(moid, policy=replace(POLICY, procedures=(proc,))), key=generate())
    run_refused(world, record, "unknown key")


def test_overlay_cannot_add_procedures(world: World, record: Recorder) -> None:
    """Even signed with the trusted key, an overlay record carrying procedures is refused unless
    the channel's signed policy allows them (`overlay_procedures`): by default a host's overlay
    adds files, never commands."""
    _, moid, _ = world.valid_manifest()
    ov = Overlay(world.store.store_id, world.client.host, 1, world.valid_manifest({"etc/hostname": b"h\n"})[1],
                 format_time(utcnow()))
    rec = {**ov.to_record(), "features": ["procedures"], "procedure": [pwn_procedure(world)]}
    path = Path(world.store.url.removeprefix("file://")) / layout.overlay_path(world.client.host)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(sign_envelope(rec, [world.key]))
    world.publish_record(world.record(moid))
    try:
        run_refused(world, record, "does not allow them")
    finally:
        path.unlink()


def test_overlay_procedures_without_the_feature(world: World, record: Recorder) -> None:
    """An overlay record with procedures that does not list the feature is malformed (an old
    client would otherwise install its files and silently skip its commands)."""
    _, moid, _ = world.valid_manifest()
    ov = Overlay(world.store.store_id, world.client.host, 1, world.valid_manifest({"etc/hostname": b"h\n"})[1],
                 format_time(utcnow()))
    rec = {**ov.to_record(), "procedure": [pwn_procedure(world)]}
    path = Path(world.store.url.removeprefix("file://")) / layout.overlay_path(world.client.host)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(sign_envelope(rec, [world.key]))
    world.publish_record(world.record(moid, policy=replace(POLICY, overlay_procedures=True)))
    try:
        run_refused(world, record, "not the 'procedures' feature")
    finally:
        path.unlink()


def test_client_still_updates_after_the_attacks(world: World, record: Recorder) -> None:
    """Scenario: after all of the above, an honest generation installs normally."""
    spec = {**G1, "etc/a.conf": "honest a2\n"}
    _, moid, _ = world.valid_manifest(spec)
    world.publish_record(world.record(moid))
    world.client.regend("run", "--once")
    state = world.client.tree()
    assert state[b"etc/a.conf"] == ("file", 0o644, b"honest a2\n")
    assert state[b"home/alice/notes"] == ("file", 0o644, b"alice's notes")
    record.intact(files_in(state))


# -- symlinks planted in the client tree -------------------------------------------------------------
@pytest.mark.parametrize("where", ["app/lib", "app"], ids=["planted-lib-dir-symlink", "planted-app-dir-symlink"])
def test_planted_symlink_not_followed(file_store: Store, signing_key: SecretKey, make_client, tmp_path: Path,
                                      record: Recorder, where: str) -> None:
    """root/app/lib -> a directory outside root, then an update writing under app/lib: nothing outside
    root is written, read as ours or removed; the link is set aside and the real directory made."""
    publish(file_store, signing_key, G1, number=1, policy=POLICY)
    c: Client = make_client(file_store.url)
    c.regend("run", "--once")
    outside = make_tree(tmp_path / "outside", {"lib/libx.so": b"the outside lib", "bin/run": b"outside run",
                                               "keep": b"outside file"})
    planted = str(outside / "lib") if where == "app/lib" else str(outside)
    shutil.rmtree(c.root / where)
    os.symlink(planted, c.root / where)
    before_outside = tree_state(outside)
    g2 = {**G1, "app/lib/libx.so": b"lib v2", "app/lib/liby.so": b"new lib", "app/bin/run": Mode(b"v2", 0o755)}
    publish(file_store, signing_key, g2, number=2, policy=POLICY)
    res = c.regend("run", "--once", exit_code=None)
    assert "Traceback" not in res.stderr
    assert_same_tree(before_outside, tree_state(outside), "the directory outside root")
    record.intact(files_in(before_outside))
    state = c.tree()
    assert state[os.fsencode(where)][0] == "dir", state  # the link was replaced by the real directory
    assert state[b"app/lib/libx.so"] == ("file", 0o644, b"lib v2") and res.returncode == 0, (res.stdout, res.stderr)
    links = [os.readlink(p) for p in (c.state / "quarantine").rglob("*") if p.is_symlink()]
    assert links == [planted], links  # the planted link itself is kept in quarantine
    record.intact(files_in(state))


def test_manifest_symlink_then_directory(file_store: Store, signing_key: SecretKey, make_client, tmp_path: Path,
                                         record: Recorder) -> None:
    """Generation 2 makes app/lib a symlink to a directory outside root (symlinks are data); generation 3
    makes it a directory with files again: the update replaces the link, never writes through it."""
    outside = make_tree(tmp_path / "outside", {"libx.so": b"the outside lib"})
    publish(file_store, signing_key, G1, number=1, policy=POLICY)
    c: Client = make_client(file_store.url)
    c.regend("run", "--once")
    g2 = {k: v for k, v in G1.items() if not k.startswith("app/lib")}
    g2["app/lib"] = Symlink(str(outside))
    publish(file_store, signing_key, g2, number=2, policy=POLICY)
    c.regend("run", "--once")
    assert os.readlink(c.root / "app/lib") == str(outside)
    before_outside = tree_state(outside)
    publish(file_store, signing_key, {**G1, "app/lib/libx.so": b"inside lib v3"}, number=3, policy=POLICY)
    c.regend("run", "--once")
    assert_same_tree(before_outside, tree_state(outside), "the directory outside root")
    assert c.tree()[b"app/lib/libx.so"] == ("file", 0o644, b"inside lib v3")
    record.intact(files_in(before_outside) + files_in(c.tree()))


def test_corrupt_object_on_the_http_store(http_target, signing_key: SecretKey, make_client, record: Recorder) -> None:
    """Scenario: the same corrupt-object attack through the HTTP server fixture (a read-only https-style
    mirror): refused, client tree unchanged; an honest retry after the repair installs."""
    store = Store.init(http_target.write_url)
    publish(store, signing_key, G1, number=1, policy=POLICY)
    c: Client = make_client(http_target.url, failures={"max_consecutive": 100})
    c.regend("run", "--once")
    data = b"a.conf v2 over http\n"
    publish(store, signing_key, {**G1, "etc/a.conf": data}, number=2, policy=POLICY)
    obj = Path(http_target.write_url.removeprefix("file://")) / layout.object_path(object_id(data))
    good = obj.read_bytes()
    obj.write_bytes(b"r" + data.replace(b"v2", b"XX"))
    before = c.tree()
    res = c.regend("run", "--once", exit_code=None)
    errors = " ".join(c.last_report()["errors"])
    assert res.returncode == EXIT_DAMAGED and ("damaged" in errors or "does not hash" in errors), (res, errors)
    assert c.tree() == before and "Traceback" not in res.stderr
    obj.write_bytes(good)  # the administrator repairs the store: the next run updates
    c.regend("run", "--once")
    assert c.tree()[b"etc/a.conf"] == ("file", 0o644, data)
    record.intact(files_in(before))
