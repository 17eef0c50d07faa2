"""The documented S3 policies are the minimum, and they are what is tested (issue 12, step 4).

Each test loads the policy file shipped in contrib/backends/ (BUCKET, PREFIX and HOST filled
in), gives it to a fresh IAM user on moto with authentication on -- made faithful to AWS where
least privilege depends on it (tests/s3_iam.py: `s3:prefix` conditions, 403 for a missing key
to a caller that may not list) -- and drives the real `regen` and `regend` with those keys.

A client installs, updates and reports; with the same keys it cannot list `objects/` (so it
cannot find another host's overlay manifest), cannot write what the publisher signs (refs,
generations, keys, root, objects, the lock) nor another host's reports, nor read another
host's overlay. A missing key it may legitimately miss (its overlay, a channel never published)
still reads as missing: a 403 followed by one listing of exactly that key.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from regen.store import Store, open_backend
from regen.store.errors import StoreAccessDenied
from tests.conftest import make_tree
from tests.e2e.conftest import Site
from tests.servers import BUCKET, S3Server, Target

BACKENDS = Path(__file__).resolve().parents[2] / "contrib" / "backends"
HOST = "host1"


def documented(name: str, target: Target, host: str = HOST) -> dict[str, Any]:
    prefix = target.url.split(f"s3://{BUCKET}/", 1)[1]
    text = (BACKENDS / name).read_text()
    return json.loads(text.replace("BUCKET", BUCKET).replace("PREFIX", prefix).replace("HOST", host))


def user_options(s3_server: S3Server, target: Target, policy: str, user: str) -> dict[str, Any]:
    key, secret = s3_server.create_user(f"{user}-{target.prefix}", documented(policy, target))
    return s3_server.options(key=key, secret=secret)


def refused(op: Callable[[], object]) -> bool:
    try:
        op()
    except StoreAccessDenied:
        return True
    return False


@pytest.fixture
def site(s3_server: S3Server, s3_target: Target, tmp_path: Path) -> Site:
    """A store on moto administered with the documented admin policy; the client holds the client policy."""
    admin = user_options(s3_server, s3_target, "s3-admin-policy.json", "admin")
    client = user_options(s3_server, s3_target, "s3-client-policy.json", "client")
    return Site(replace(s3_target, options=client, write_options=admin), tmp_path, HOST)


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["loose", "packs"])
def test_client_policy_installs_reports_and_nothing_more(site: Site, layout: str, s3_target: Target) -> None:
    s = site
    s.create(*(["--packs", "--pack-size", "65536"] if layout == "packs" else []))
    make_tree(s.ref, {"etc/app.conf": "v1\n", "usr/bin/tool": b"#!/bin/sh\n" + b"x" * 70_000})
    s.snapshot("one")
    s.install_client()
    report, _ = s.run_once()  # no overlay for host1: its absence is read through the 403 + listing
    assert report["outcome"] == "updated", report
    s.assert_converged()
    assert s3_target.log is not None
    mark = s3_target.log.mark()
    report, _ = s.run_once()
    assert report["outcome"] == "ok", report
    sent = [(m, p.split(s3_target.prefix, 1)[1]) for m, p in s3_target.requests(mark)]
    assert [r for r in sent if r[0] != "PUT"] == [("GET", "/refs/stable")], sent  # nothing to do: one GET
    assert all(p.startswith(f"/reports/{HOST}/") for m, p in sent if m == "PUT"), sent
    make_tree(s.ref, {"etc/app.conf": "v2\n"})
    s.snapshot("two")
    report, _ = s.run_once()
    assert report["outcome"] == "updated" and report["generation_after"] == 2, report
    s.assert_converged()
    fleet = s.fleet()  # the admin policy reads the reports
    assert [h["host"] for h in fleet["hosts"]] == [HOST] and fleet["hosts"][0]["state"] == "updated", fleet

    admin = Store.open(s.target.url, s.target.write_options)
    admin.backend.write("hosts/host2/overlay.json", b"{}")
    client = open_backend(s.target.url, s.target.options)
    assert refused(lambda: client.list("objects")), "a client must not list objects/"
    assert refused(lambda: client.list("")) and refused(lambda: client.list_dirs("hosts"))
    assert refused(lambda: client.list("reports")) and refused(lambda: client.list("hosts/host2"))
    assert refused(lambda: client.read("hosts/host2/overlay.json"))
    for path in ("objects/ab/" + "c" * 62, "refs/stable", "generations/stable/0000000003.json",
                 "keys/evil.pub", "root/0000000001.json", "regen.json", "locks/writer.json",
                 "index/current.json", "reports/host2/latest.json", "hosts/host1/overlay.json"):
        assert refused(lambda path=path: client.write(path, b"{}")), f"a client could write {path}"
    assert refused(lambda: client.delete("refs/stable"))
    client.write(f"reports/{HOST}/20250101T000000000000Z-ok.json", b"{}")  # its own prefix: allowed


def test_missing_keys_read_as_missing_with_one_listing(site: Site, s3_target: Target) -> None:
    """AWS answers 403 for a missing key here; regen lists exactly that key (allowed by the policy's
    prefix condition) and only an answer without it makes it missing."""
    s = site
    s.create()
    store = Store.open(s.target.url, s.target.options)
    assert s3_target.log is not None
    mark = s3_target.log.mark()
    assert store.read_ref("never-published") is None
    assert store.read_overlay(HOST) is None
    lists = s3_target.log.since(mark, "list-type=2")
    assert len(lists) == 2, s3_target.requests(mark)  # one listing of exactly each missing key
    assert all(m == "GET" for m, _ in s3_target.requests(mark))
    with pytest.raises(StoreAccessDenied):  # outside the listable prefixes a refusal stays a refusal
        store.backend.read("generations/stable/0000000001.json")


@pytest.mark.slow
def test_admin_policy_runs_the_manager(site: Site, s3_target: Target) -> None:
    """init, snapshot --publish, host set, status, gc, fsck with exactly the documented admin policy."""
    s = site
    s.create()
    make_tree(s.ref, {"etc/app.conf": "v1\n"})
    s.snapshot("one")
    files = make_tree(s.tmp / "host-files", {"etc/hostname": f"{HOST}\n"})
    s.regen("host", "set", HOST, str(files), "--key", str(s.key), "--plaintext")  # (sealed: test_sealed_overlay)
    assert json.loads(s.regen("fsck", "--key", str(s.key), "--json").stdout)["damaged"] is False
    s.regen("gc", "--key", str(s.key), "--dry-run")
    other = open_backend(s.target.url.rsplit("/", 1)[0] + "/elsewhere", s.target.write_options)
    assert refused(lambda: other.write("x", b"x")), "the admin policy reaches beyond its prefix"
