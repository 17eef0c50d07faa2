"""The read contract on http:// against a static web server serving a file:// store, and
what plain HTTP adds: transient answers (5xx, 429) are retried, honouring Retry-After."""

from __future__ import annotations

import pytest

from regen.store import StoreUnreachable, open_backend
from tests.servers import HttpServer, Target
from tests.store.backend_contract import BackendReadContract, NetworkContract, ReadOnlyContract


class TestHttpBackend(BackendReadContract, ReadOnlyContract, NetworkContract):
    scheme = "http"
    gaps = {"test_stat_of_a_folder_is_not_found": "a web server answers a folder URL with an index page "
            "(python's http.server redirects to a listing); clients never stat folders"}


def test_retry_after_is_honoured(http_server: HttpServer, http_target: Target) -> None:
    open_backend(http_target.write_url).write("refs/stable", b"record")
    path = f"/{http_target.prefix}/refs/stable"
    http_server.fail_next(path, (503, {"Retry-After": "7"}), (429, {"Retry-After": "0"}))
    sleeps: list[float] = []
    b = open_backend(http_target.url, retries=3, sleep=sleeps.append)
    mark = http_target.log.mark() if http_target.log else 0
    assert b.read("refs/stable", max_bytes=100) == b"record"
    assert sleeps == [7.0, 0.0]  # the server's word, not our backoff
    assert b.counters.retries == 2
    assert [m for m, _ in http_target.requests(mark)] == ["GET", "GET", "GET"]


def test_server_errors_are_retried_then_reported(http_server: HttpServer, http_target: Target) -> None:
    open_backend(http_target.write_url).write("objects/ab/cd", b"x")
    http_server.fail_next(f"/{http_target.prefix}/objects/ab/cd", *[(500, {})] * 3)
    sleeps: list[float] = []
    b = open_backend(http_target.url, retries=2, backoff=0.5, sleep=sleeps.append)
    with pytest.raises(StoreUnreachable, match="HTTP 500"):
        b.read("objects/ab/cd")
    assert len(sleeps) == 2 and all(0.25 <= s <= 1.5 * 0.5 * 2 for s in sleeps)
    assert b.read("objects/ab/cd") == b"x"  # the server recovered: the next run goes on
