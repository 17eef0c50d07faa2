"""Host identities and bounded reports (issue 12, steps 5 and 6): an attacker who can write the
store but holds no key cannot make `regen status` believe a report the host did not write.

Real `regend run --once` clients (their keys made on the first run), real `regen host enroll`
and `regen status --json`; the attacker writes reports/<host>/latest.json directly.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from regen.store import Policy, Report, SecretKey, Store, format_time, generate, layout, sign_report, utcnow

from ..conftest import run_cli
from .conftest import Client, publish


@pytest.fixture
def world(tmp_path: Path, signing_key: SecretKey, key_files: tuple[Path, Path]) -> dict[str, Any]:
    store = Store.init(f"file://{tmp_path / 'store'}")
    publish(store, signing_key, {"etc/app.conf": "v1\n"}, number=1, policy=Policy())
    clients = []
    for host in ("host1", "host2"):
        c = Client(tmp_path / host, store.url, key_files[1], host=host)
        c.root.mkdir(parents=True)
        c.write_config()
        clients.append(c)
    env = {"REGEN_STORE": store.url, "REGEN_KEY": str(key_files[0])}
    return {"store": store, "clients": clients, "env": env, "tmp": tmp_path}


def _status(env: dict[str, str]) -> dict[str, Any]:
    res = run_cli("regen", "status", "--json", env=env)
    data: dict[str, Any] = json.loads(res.stdout)
    return data


def _host(data: dict[str, Any], host: str) -> dict[str, Any]:
    return next(h for h in data["hosts"] if h["host"] == host)


def _enroll(c: Client, env: dict[str, str]) -> None:
    pub = c.base / "host.pub"
    pub.write_text(c.regend("host-key").stdout)
    run_cli("regen", "host", "enroll", c.host, str(pub), env=env)


def test_host_key_is_made_on_first_run_private_and_printed(world: dict[str, Any]) -> None:
    c = world["clients"][0]
    c.regend("run", "--once")
    key = c.state / "host.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    printed = c.regend("host-key").stdout
    assert printed.startswith("regen-ed25519-public:") and printed == (c.state / "host.key.pub").read_text()
    assert printed.strip() in c.regend("status").stdout  # `regend status` shows it too
    c.regend("run", "--once")
    assert c.regend("host-key").stdout == printed  # never replaced


def test_signed_reports_verify_and_forged_or_replayed_ones_are_flagged(world: dict[str, Any]) -> None:
    store, (h1, h2), env = world["store"], world["clients"], world["env"]
    for c in (h1, h2):
        c.regend("run", "--once")
    # before enrolling: readable, marked unsigned, no action (compatibility with older clients)
    data = _status(env)
    assert _host(data, "host1")["report_auth"] == "unsigned" and _host(data, "host1")["state"] == "updated"
    assert data["actions"]["untrusted_reports"] == []
    _enroll(h1, env)
    h1.regend("run", "--once")
    first = store.backend.read(layout.report_latest_path("host1"))
    h1.regend("run", "--once")
    data = _status(env)
    assert _host(data, "host1")["report_auth"] == "signed" and _host(data, "host1")["state"] == "ok"
    latest = json.loads(store.backend.read(layout.report_latest_path("host1")))
    assert latest["counter"] == 3  # the first run (before enrolment) signed too

    # forged: the attacker rewrites what the host said (a quarantined host made to look ok)
    doc = json.loads(store.backend.read(layout.report_latest_path("host1")))
    doc["outcome"], doc["generation_after"] = "updated", 99
    store.backend.write(layout.report_latest_path("host1"), json.dumps(doc).encode())
    data = _status(env)
    h = _host(data, "host1")
    assert (h["report_auth"], h["state"]) == ("forged", "failing")
    assert data["actions"]["untrusted_reports"] == [
        {"host": "host1", "auth": "forged", "message": "report signature does not verify with the enrolled key"}]
    # a report signed by another key (the attacker's own) is forged too
    report = Report.from_json(first)
    store.backend.write(layout.report_latest_path("host1"), sign_report(report, generate(), 50).to_json())
    assert _host(_status(env), "host1")["report_auth"] == "forged"
    # the signature stripped: unsigned, but the host is enrolled
    bare = replace(report, counter=None, signature=None, signed_body=None)
    store.backend.write(layout.report_latest_path("host1"), bare.to_json())
    data = _status(env)
    assert (_host(data, "host1")["report_auth"], _host(data, "host1")["state"]) == ("unsigned", "failing")
    # replayed: the host's own, genuinely signed, older report put back
    store.backend.write(layout.report_latest_path("host1"), first)
    data = _status(env)
    h = _host(data, "host1")
    assert (h["report_auth"], h["state"]) == ("replayed", "failing")
    assert "counter 2 is not above the last one seen (3)" in h["errors"][0]
    text = run_cli("regen", "status", env={**env, "COLUMNS": "200"}).stdout
    assert "untrusted report  host1: replayed" in text
    assert run_cli("regen", "status", "--check", env=env, exit_code=1).stdout.startswith("REGEN WARNING")
    # the host's next genuine report is believed again
    h1.regend("run", "--once")
    assert _host(_status(env), "host1")["report_auth"] == "signed"
    # host2, never enrolled, stays readable and merely marked
    assert (_host(data, "host2")["report_auth"], _host(data, "host2")["state"]) == ("unsigned", "updated")


def test_host_key_record_cannot_be_swapped_by_the_store(world: dict[str, Any]) -> None:
    store, (h1, _h2), env = world["store"], world["clients"], world["env"]
    h1.regend("run", "--once")
    _enroll(h1, env)
    h1.regend("run", "--once")
    assert _host(_status(env), "host1")["report_auth"] == "signed"  # this manager has seen it signed
    attacker = generate()
    pub = world["tmp"] / "attacker.pub"
    pub.write_text(attacker.public.text())
    # without the admin key the attacker can only write an unsigned or self-signed record
    from regen.store import HostKey, sign_envelope

    forged = HostKey("host1", store.store_id, attacker.public, format_time(utcnow()))
    store.backend.write(layout.host_key_path("host1"), sign_envelope(forged.to_record(), [attacker]))
    report = Report.from_json(store.backend.read(layout.report_latest_path("host1")))
    store.backend.write(layout.report_latest_path("host1"), sign_report(report, attacker, 1000).to_json())
    h = _host(_status(env), "host1")
    assert (h["report_auth"], h["state"]) == ("forged", "failing")
    assert "key record does not verify" in h["errors"][0]
    # deleting the record does not turn the host back into an unenrolled one for this manager
    os.unlink(world["tmp"] / "store" / layout.host_key_path("host1"))
    assert _host(_status(env), "host1")["report_auth"] == "forged"


def test_a_report_dated_in_the_future_does_not_keep_a_dead_host_fresh(world: dict[str, Any]) -> None:
    """A client clock a week ahead: the store's modification time of latest.json says when it was written."""
    store, (h1, _h2), env = world["store"], world["clients"], world["env"]
    h1.regend("run", "--once")
    doc = json.loads(store.backend.read(layout.report_latest_path("host1")))
    doc["finished"] = format_time(utcnow() + timedelta(days=7))
    path = world["tmp"] / "store" / layout.report_latest_path("host1")
    path.write_text(json.dumps(doc))
    two_days_ago = (utcnow() - timedelta(days=2)).timestamp()
    os.utime(path, (two_days_ago, two_days_ago))  # the host died two days ago
    h = _host(_status(env), "host1")
    assert h["state"] == "stale" and 2 * 86400 - 60 < h["age_seconds"] < 2 * 86400 + 60, h
    assert "stale" in {k for k, v in _status(env)["actions"].items() if v and isinstance(v, list)}


def test_an_oversized_report_is_refused_not_read(world: dict[str, Any]) -> None:
    store, (h1, _h2), env = world["store"], world["clients"], world["env"]
    h1.regend("run", "--once")
    doc = json.loads(store.backend.read(layout.report_latest_path("host1")))
    doc["warnings"] = ["x" * 1000] * 1100  # 1.1 MB
    store.backend.write(layout.report_latest_path("host1"), json.dumps(doc).encode())
    h = _host(_status(env), "host1")
    assert h["state"] == "failing" and "over the limit of 1048576" in h["errors"][0], h
