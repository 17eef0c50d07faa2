"""The dashboard's pure parts: query parsing and paging (hypothesis), SVG plots (escaped, bounded)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from regen.manager.fleet import ChannelHead, HostInput, analyse
from regen.manager.web.svg import Series, line_plot
from regen.manager.web.views import MAX_PER_PAGE, host_page, parse_query
from regen.store import Report, format_time

NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)
FLEET = analyse([HostInput(f"h-{i:03d}", Report(f"h-{i:03d}", "r", format_time(NOW), format_time(NOW),
                                                 ("ok", "failing", "repaired")[i % 3], 0, "stable", 2, 2))
                 for i in range(250)], {"stable": ChannelHead("stable", 2, format_time(NOW))}, now=NOW)


@given(st.dictionaries(st.sampled_from(["state", "channel", "q", "sort", "page", "per", "x"]), st.text(max_size=30)))
def test_any_query_gives_a_valid_page(params: dict[str, str]) -> None:
    q = parse_query(params)
    page = host_page(FLEET, q)
    assert 1 <= q.per_page <= MAX_PER_PAGE and 1 <= page.page <= page.pages
    assert len(page.rows) <= q.per_page and page.matched <= len(FLEET.hosts)
    assert q.link(page=2).startswith("?")


def test_paging_and_filters() -> None:
    page = host_page(FLEET, parse_query({"state": "failing", "per": "50", "page": "2", "sort": "host"}))
    assert page.matched == 83 and page.pages == 2 and len(page.rows) == 33
    assert all(h.state == "failing" for h in page.rows) and page.rows[0].host == "h-151"
    assert host_page(FLEET, parse_query({"q": "h-00*"})).matched == 10
    assert host_page(FLEET, parse_query({"q": "H-24"})).matched == 10  # substring, any case


def test_plot_escapes_its_text_and_clamps_values() -> None:
    pts = tuple((NOW + timedelta(hours=i), float(v)) for i, v in enumerate([10, 50, 250, -5]))
    svg = line_plot(Series("<script>", "%", pts), lo=0.0, hi=100.0)
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert svg.count("<circle") == 4 and 'data-series="&lt;script&gt;"' in svg
    assert "no data" in line_plot(Series("empty", "", ()))
