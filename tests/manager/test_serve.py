"""`regen serve`: a real server process on loopback over a real store, read with plain HTTP."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from regen.store import HardwareFinding, Report, Store, format_time, utcnow

from ..conftest import make_tree
from ..fleetgen import make_fleet
from .serving import regen_serve


def get(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> tuple[int, str, dict[str, str]]:
    req = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read().decode(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        body = exc.read().decode()
        exc.close()
        return exc.code, body, dict(exc.headers)


@pytest.fixture
def fleet_store(cli, admin: Store, tmp_path: Path) -> Store:
    src = make_tree(tmp_path / "ref", {"etc/app.conf": b"v1"})
    cli("snapshot", src, "-c", "stable", "-m", "first", "--publish")
    make_fleet(admin, 120)
    t = format_time(utcnow() - timedelta(minutes=3))
    hostile = "<script>alert(1)</script>"
    admin.put_report(Report("evil-01", "r1", t, t, "failing", 1, "stable", 1, 1,
                            drift={"modified": {"count": 2, "paths": [hostile, "etc/<b>x</b>"]},
                                   "created": {"count": 0, "paths": []}},
                            findings=(HardwareFinding("disk <i>", "fail", hostile, {}, usable=False),),
                            errors=(f"install: {hostile}",)))
    return admin


def test_pages_show_the_fleet(fleet_store: Store) -> None:
    with regen_serve(fleet_store.url) as s:
        status, html, headers = get(s.url)
        assert status == 200 and headers["Content-Type"].startswith("text/html")
        assert "Fleet: 121 hosts" in html and 'id="actions"' in html
        assert html.count('<tr class="state-') == 100  # paged on the server: 100 rows of 121
        status, html, _ = get(s.url + "?state=quarantined")
        rows = [line for line in html.splitlines() if line.startswith('<tr class="state-')]
        assert rows and all('class="state-quarantined"' in r for r in rows)
        status, html, _ = get(s.url + "?q=kiosk-0001*&sort=host")
        assert html.count('<tr class="state-') == 10 and "10 hosts match" in html
        status, html, _ = get(s.url + "host/kiosk-00003")
        assert status == 200 and html.count("<svg") == 3 and 'id="timeline"' in html
        status, html, _ = get(s.url + "channel/stable")
        assert status == 200 and "first" in html and 'id="generations"' in html
        status, html, _ = get(s.url + "drift")
        assert status == 200 and "etc/hosts" in html
        status, html, _ = get(s.url + "host/nobody")
        assert status == 404 and "no report of host" in html


def test_every_string_from_a_report_is_escaped(fleet_store: Store) -> None:
    with regen_serve(fleet_store.url) as s:
        for page in ("", "?state=failing", "host/evil-01", "drift"):
            _status, html, _ = get(s.url + page)
            assert "<script>" not in html and "<b>x</b>" not in html and "<i>" not in html, page
        _status, html, _ = get(s.url + "host/evil-01")
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_read_only_and_loopback_by_default(fleet_store: Store, run_regen) -> None:
    with regen_serve(fleet_store.url) as s:
        assert s.url.startswith("http://127.0.0.1:")
        for method in ("POST", "PUT", "DELETE"):
            assert get(s.url, method=method)[0] == 405
    res = run_regen("serve", "--store", fleet_store.url, "--bind", "0.0.0.0", "--port", "0", exit_code=2)
    assert res.stderr.startswith("regen: error: --bind 0.0.0.0 would let any machine") and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_token_is_required_when_given(fleet_store: Store, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret-token\n")
    with regen_serve(fleet_store.url, "--token-file", str(token)) as s:
        status, _, headers = get(s.url)
        assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
        assert get(s.url, {"Authorization": "Bearer wrong"})[0] == 401
        assert get(s.url + "metrics", {"Authorization": "Bearer s3cret-token"})[0] == 200
        basic = base64.b64encode(b"admin:s3cret-token").decode()
        assert get(s.url, {"Authorization": f"Basic {basic}"})[0] == 200


def test_metrics_parse_with_prometheus_client(fleet_store: Store, cli) -> None:
    with regen_serve(fleet_store.url) as s:
        status, text, _ = get(s.url + "metrics")
    assert status == 200
    families = {f.name: f for f in text_string_to_metric_families(text)}
    states = {sample.labels["state"]: sample.value for sample in families["regen_fleet_hosts"].samples}
    data = cli("status", "--json").json()
    assert states == {k: float(v) for k, v in data["counts"].items()}
    assert families["regen_channel_generation"].samples[0].value == 1.0
    evil = [x for x in families["regen_host_state"].samples if x.labels["host"] == "evil-01" and x.value == 1]
    assert [x.labels["state"] for x in evil] == ["failing"]
    # the same exposition from the command line
    same = cli("status", "--format", "prometheus").stdout
    assert {f.name for f in text_string_to_metric_families(same)} == set(families)
    json.dumps(data)  # (the JSON view stays valid alongside)
