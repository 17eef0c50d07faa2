"""The backend contract on s3:// against moto's S3 server (IAM authentication on), and what
S3 alone promises: requests per operation counted by the server, and the documented client
policy (contrib/backends/s3-client-policy.json) enforced."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from regen.store import (
    NotFound,
    Report,
    SecretKey,
    Store,
    StoreAccessDenied,
    StoreExists,
    format_time,
    open_backend,
    utcnow,
)
from tests.servers import BUCKET, S3Server, Target
from tests.store.backend_contract import BackendContract, NetworkContract, _publish

POLICY = Path(__file__).resolve().parents[2] / "contrib" / "backends" / "s3-client-policy.json"


class TestS3Backend(BackendContract, NetworkContract):
    scheme = "s3"


def test_requests_per_operation(s3_target: Target) -> None:
    """One request per operation, as the server counts them: no HEAD before GET, no LIST to find a miss."""
    b = open_backend(s3_target.url, s3_target.options)

    def sent(op: Callable[[], object]) -> list[str]:
        mark = s3_target.log.mark() if s3_target.log else 0
        try:
            op()
        except (NotFound, StoreExists):
            pass
        return [method for method, _ in s3_target.requests(mark)]

    assert sent(lambda: b.write("objects/ab/cd", b"x" * 1000)) == ["PUT"]
    assert sent(lambda: b.create_exclusive("locks/writer.json", b"lease")) == ["PUT"]
    assert sent(lambda: b.create_exclusive("locks/writer.json", b"lease 2")) == ["PUT"]  # 412
    assert sent(lambda: b.read("objects/ab/cd")) == ["GET"]
    assert sent(lambda: b.read("objects/ab/cd", max_bytes=100)) == ["GET"]
    assert sent(lambda: b.read("refs/missing")) == ["GET"]
    assert sent(lambda: b.stat("objects/ab/cd")) == ["HEAD"]
    assert sent(lambda: b.stat("objects/ab/missing")) == ["HEAD"]
    assert sent(lambda: b.list("objects")) == ["GET"]  # one page of ListObjectsV2
    assert sent(lambda: b.list_dirs("objects")) == ["GET"]
    assert sent(lambda: b.delete("objects/ab/cd")) == ["DELETE"]


def test_documented_client_policy(s3_server: S3Server, s3_target: Target, signing_key: SecretKey) -> None:
    """A client holding only the documented policy reads the store and writes only its own reports."""
    prefix = s3_target.url.split(f"s3://{BUCKET}/", 1)[1]
    policy = json.loads(POLICY.read_text().replace("BUCKET", BUCKET).replace("PREFIX", prefix)
                        .replace("HOST", "host1"))
    key, secret = s3_server.create_user(f"client-{prefix}", policy)
    admin = Store.init(s3_target.url, s3_target.options)
    _publish(admin, signing_key, {"a": b"content"})
    admin.backend.write("hosts/host2/overlay.json", b"{}")
    client = Store.open(s3_target.url, s3_server.options(key=key, secret=secret))
    assert client.store_id == admin.store_id
    assert client.read_ref("stable") is not None
    assert client.read_ref("never-published") is None  # 403, then a listing of exactly that key says missing
    assert client.read_overlay("host1") is None
    now = format_time(utcnow())
    client.put_report(Report("host1", "run-1", now, now, "ok", 0))
    assert admin.read_latest_report("host1") is not None
    refused = [
        lambda: client.backend.write("objects/ab/cdef", b"x"),
        lambda: client.backend.write("refs/stable", b"x"),
        lambda: client.backend.write("reports/host2/latest.json", b"{}"),
        lambda: client.backend.delete("regen.json"),
        lambda: client.backend.read("hosts/host2/overlay.json"),
    ]
    for attempt in refused:
        with pytest.raises(StoreAccessDenied):
            attempt()
