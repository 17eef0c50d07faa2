"""One size grammar and one duration grammar for the whole of regen (issue 11: `--expires 1h30m`
failed where `interval = "1h30m"` worked; "2P" was valid in [hardware] and not in [limits]).

Every place that reads a duration or a size goes through regen.store's parser, so a value
valid in one place is valid in every other; these properties pin the grammar and check that
regend's tables and regen's options agree on every value.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regen.daemon.config import HardwareConfig, ScheduleConfig, parse_config
from regen.manager.errors import BadOption
from regen.manager.options import parse_duration as option_duration
from regen.store import parse_duration, parse_size

UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}

parts = st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(sorted(UNITS))), min_size=1, max_size=4)


def _text(ps: list[tuple[int, str]], spaced: bool, upper: bool) -> str:
    sep = " " if spaced else ""
    return sep.join(f"{n}{sep}{u.upper() if upper else u}" for n, u in ps)


@given(parts, st.booleans(), st.booleans())
def test_a_compound_duration_is_the_sum_of_its_parts(ps: list[tuple[int, str]], spaced: bool, upper: bool) -> None:
    assert parse_duration(_text(ps, spaced, upper)) == pytest.approx(sum(n * UNITS[u] for n, u in ps))


@given(parts)
def test_regend_and_regen_accept_the_same_durations(ps: list[tuple[int, str]]) -> None:
    text = _text(ps, False, False)
    seconds = parse_duration(text)
    if seconds > 0:  # (regen's options and [schedule] interval want more than nothing)
        assert option_duration(text, "--expires") == timedelta(seconds=seconds)
        assert ScheduleConfig.from_mapping({"interval": text}, "w").interval == seconds
    else:
        with pytest.raises(BadOption):
            option_duration(text, "--expires")


@pytest.mark.parametrize("text", ["1h30m", "90m", "2 h", "1d12h", "250ms", "45", "1.5"])
def test_expires_takes_what_the_schedule_takes(text: str) -> None:
    assert option_duration(text, "--expires").total_seconds() == ScheduleConfig.from_mapping(
        {"interval": text}, "w").interval


@pytest.mark.parametrize("bad", ["", "1y", "h", "1.5h", "-1h", "1h-", "inf", "nan", "1e3s", "9" * 400])
def test_what_no_duration_parser_accepts(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)
    with pytest.raises(BadOption):
        option_duration(bad, "--grace")


@given(st.integers(0, 8191), st.sampled_from(sorted(SIZE_UNITS)), st.sampled_from(["", "b", "ib", "B", "iB"]),
       st.booleans())
def test_a_size_is_its_number_times_its_binary_unit(n: int, unit: str, suffix: str, upper: bool) -> None:
    text = f"{n}{unit.upper() if upper else unit}{suffix if unit else ''}"
    assert parse_size(text) == n * SIZE_UNITS[unit]


@given(st.integers(0, 4096), st.sampled_from(["k", "M", "G", "T", "P"]))
def test_limits_and_hardware_accept_the_same_sizes(tmp_path_factory: pytest.TempPathFactory, n: int,
                                                   unit: str) -> None:
    text = f"{n}{unit}"
    assert HardwareConfig.from_mapping({"min_memory_bytes": text}, "w").min_memory_bytes == parse_size(text)
    base = tmp_path_factory.mktemp("cfg")
    (base / "k.pub").write_text("regen-ed25519-public:" + "A" * 43 + "=\n")
    data = {"store": "file:///s", "channel": "c", "root": str(base / "root"), "trusted_keys": [str(base / "k.pub")],
            "limits": {"max_manifest_bytes": text}}
    cfg = parse_config(data, str(base / "regend.toml"), {})
    assert cfg.limits.max_manifest_bytes == parse_size(text)


@pytest.mark.parametrize("bad", ["", "-1", "1x", "1.5.5M", "M", "1 E", "9" * 400 + "P", True, None, 1.5, -3])
def test_what_no_size_parser_accepts(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_size(bad)
