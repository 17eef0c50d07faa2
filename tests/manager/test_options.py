"""Command-line values: storage options, durations (pure parsers, property-tested)."""

from __future__ import annotations

import json
import os
import re
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regen.manager.errors import BadOption
from regen.manager.options import default_cache_dir, parse_duration, parse_storage_options, parse_value
from regen.manager.scan import reusable, shown
from regen.manager.statcache import CachedFile


def test_storage_option_values_are_typed() -> None:
    assert parse_storage_options(["anon=true", "port=445", "endpoint_url=http://h:9000", "client_kwargs={\"a\": 1}",
                                  "ratio=0.5", "name=x=y", "empty="]) == {
        "anon": True, "port": 445, "endpoint_url": "http://h:9000", "client_kwargs": {"a": 1}, "ratio": 0.5,
        "name": "x=y", "empty": ""}
    assert parse_storage_options(None) == {}
    for bad in ("novalue", "=x"):
        with pytest.raises(BadOption):
            parse_storage_options([bad])


@given(st.text())
def test_any_value_parses_without_error(text: str) -> None:
    """Never an error; text that looks like no boolean, number or JSON is passed on unchanged."""
    value = parse_value(text)
    low = text.strip().lower()
    typed = (low in ("true", "false") or text[:1] in ("{", "[", '"')
             or re.fullmatch(r"[+-]?\d+(\.\d*(e[+-]?\d+)?)?", low))
    if not typed:
        assert value == text and type(value) is str


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
                           max_leaves=8)


@given(st.lists(json_values, max_size=3) | st.dictionaries(st.text(), json_values, max_size=3))
def test_json_lists_and_tables_arrive_as_given(value: object) -> None:
    assert parse_value(json.dumps(value)) == value


@given(st.integers(min_value=1, max_value=10**6), st.sampled_from(["", "s", "m", "h", "d", "w"]))
def test_durations(n: int, unit: str) -> None:
    seconds = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit]
    assert parse_duration(f"{n}{unit}", "--x") == timedelta(seconds=n * seconds)


@pytest.mark.parametrize("bad", ["", "0d", "-1h", "1y", "d", "1.5h"])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(BadOption, match="is not a duration"):
        parse_duration(bad, "--stale")


def test_cache_dir_follows_xdg() -> None:
    assert str(default_cache_dir({"XDG_CACHE_HOME": "/c", "HOME": "/h"})) == "/c/regen"
    assert str(default_cache_dir({"HOME": "/h"})) == "/h/.cache/regen"


def test_reusable_needs_equal_stat_and_an_old_enough_mtime() -> None:
    real = os.lstat(__file__)
    row = CachedFile(real.st_size, real.st_mtime_ns, real.st_ctime_ns, real.st_ino, real.st_mode, "o", "x")
    assert reusable(real, row, safe_before_ns=real.st_mtime_ns + 1)
    assert not reusable(real, row, safe_before_ns=real.st_mtime_ns)  # racy: not safely older
    assert not reusable(real, None, safe_before_ns=2**63)
    for field in ("size", "mtime_ns", "ctime_ns", "ino", "mode"):
        changed = CachedFile(**{**{f: getattr(row, f) for f in row.__slots__}, field: getattr(row, field) + 1})
        assert not reusable(real, changed, safe_before_ns=2**63), field


def test_paths_are_shown_on_one_line() -> None:
    assert shown("a\nb\tc") == "a\\nb\\tc"
    assert shown(os.fsdecode(b"bad\xffname")) == "bad\\xffname"
