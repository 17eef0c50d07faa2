"""`regen status` against the moto S3 server: one GET per host at most, counted server-side."""

from __future__ import annotations

import pytest

from regen.store import Store

from ..e2e.conftest import cli_options
from ..fleetgen import make_fleet, states_of
from ..servers import Target

pytestmark = pytest.mark.backend


def test_status_reads_each_report_once(cli, s3_target: Target) -> None:
    store = Store.init(s3_target.write_url, s3_target.write_options)
    reports = make_fleet(store, 60)
    mark = s3_target.log.mark() if s3_target.log else 0
    data = cli("status", "--json", "--jobs", "8", "--store", s3_target.url, *cli_options(s3_target.options),
               exit_code=0).json()
    assert {h["host"]: h["state"] for h in data["hosts"]} == dict(states_of(reports))
    gets = [p for m, p in s3_target.requests(mark) if m == "GET" and p.endswith("/latest.json")]
    hosts_read = {p.split("/reports/")[1].split("/")[0] for p in gets}
    assert hosts_read == set(reports) and len(gets) == len(reports)  # one GET per host, no more
    # a glob reads only the hosts it names
    mark = s3_target.log.mark() if s3_target.log else 0
    data = cli("status", "kiosk-0001*", "--json", "--store", s3_target.url, *cli_options(s3_target.options)).json()
    assert [h["host"] for h in data["hosts"]] == [f"kiosk-{i:05d}" for i in range(10, 20)]
    gets = [p for m, p in s3_target.requests(mark) if m == "GET" and p.endswith("/latest.json")]
    assert len(gets) == 10
