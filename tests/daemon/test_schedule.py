"""The daemon's schedule: per-host splay, backoff, and the APScheduler loop with tiny intervals."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regen.daemon.errors import ScheduleConfigInvalid
from regen.daemon.schedule import (
    RETRY_AFTER_LIMIT,
    ScheduleConfig,
    next_delay,
    next_run,
    parse_duration,
    run_forever,
    splay,
)
from regen.store.errors import EXIT_USAGE

LIVENESS = 30.0  # seconds a loop may take before the test calls it hung; far above what it needs


def run_until_stopped(job: Callable[[bool], int], config: ScheduleConfig, stop: threading.Event,
                      **kwargs: Any) -> None:
    """run_forever in a thread; the job sets `stop`. Fails (instead of hanging) if it never returns."""
    worker = threading.Thread(target=run_forever, args=(job, config, "host-a", stop), kwargs=kwargs, daemon=True)
    worker.start()
    worker.join(LIVENESS)
    if worker.is_alive():
        stop.set()
        worker.join(LIVENESS)
        pytest.fail("run_forever did not return after stop was set")


@given(st.text(max_size=64), st.floats(min_value=1e-3, max_value=1e7))
def test_splay_is_deterministic_and_inside_the_interval(host: str, interval: float) -> None:
    s = splay(host, interval)
    assert 0.0 <= s < interval and s == splay(host, interval)


def test_splay_spreads_a_fleet_over_the_interval() -> None:
    buckets = [0] * 10
    for n in range(1000):
        buckets[int(splay(f"kiosk-{n:04d}", 3600.0) // 360)] += 1
    assert min(buckets) > 50  # no tenth of the hour is left empty or crowded out
    assert splay("kiosk-0001", 3600.0) != splay("kiosk-0002", 3600.0)


def test_next_delay_grows_exponentially_up_to_the_cap() -> None:
    assert next_delay(0, 30, 3600, rand=0.5) == 0.0
    lows = [next_delay(n, 30, 3600, rand=0.0) for n in range(1, 10)]
    assert lows[:4] == [15.0, 30.0, 60.0, 120.0]
    assert lows[-1] == 1800.0 and max(next_delay(n, 30, 3600, rand=0.999) for n in range(1, 100)) <= 3600
    assert next_delay(10_000, 30, 3600, rand=0.5) <= 3600  # no overflow after a very long outage


@given(st.integers(min_value=1, max_value=50), st.floats(min_value=0, max_value=1, exclude_max=True))
def test_next_delay_jitter_stays_between_half_and_the_full_step(failures: int, rand: float) -> None:
    step = min(600.0, 10.0 * 2 ** (failures - 1))
    assert step / 2 <= next_delay(failures, 10, 600, rand=rand) <= step


def test_next_delay_honours_retry_after() -> None:
    assert next_delay(1, 30, 3600, rand=0.0, retry_after=900) == 900  # the server asks for longer
    assert next_delay(8, 30, 3600, rand=0.0, retry_after=5) == 1800  # a short hint does not shorten backoff
    assert next_delay(1, 30, 3600, rand=0.0, retry_after=10 * RETRY_AFTER_LIMIT) == RETRY_AFTER_LIMIT


@given(st.floats(min_value=0, max_value=2e9), st.floats(min_value=0.5, max_value=1e5),
       st.floats(min_value=0, max_value=1))
def test_next_run_is_the_next_grid_point(now: float, interval: float, share: float) -> None:
    offset = share * interval * 0.999
    t = next_run(now, interval, offset, 0.0)
    assert now < t <= now + interval + 1e-6 * max(1.0, now)
    k = (t - offset) / interval
    assert abs(k - round(k)) < 1e-6 * max(1.0, k)
    assert next_run(now, interval, offset, 7.0) == t + 7.0


@pytest.mark.parametrize(("text", "seconds"), [(90, 90.0), (1.5, 1.5), ("90", 90.0), ("15m", 900.0),
                                               ("1h", 3600.0), ("1h30m", 5400.0), ("1d", 86400.0),
                                               ("2 h", 7200.0), ("250ms", 0.25), ("1w", 604800.0)])
def test_parse_duration(text: Any, seconds: float) -> None:
    assert parse_duration(text) == seconds


@given(st.integers(0, 99), st.integers(0, 59), st.integers(0, 59))
def test_parse_duration_compound(h: int, m: int, s: int) -> None:
    assert parse_duration(f"{h}h{m}m{s}s") == h * 3600 + m * 60 + s


def test_config_from_mapping() -> None:
    assert ScheduleConfig.from_mapping({}, "w") == ScheduleConfig()
    c = ScheduleConfig.from_mapping({"interval": "15m", "jitter": 30, "verify_every": "7d",
                                     "backoff_base": "10s", "backoff_max": "1h"}, "w")
    assert (c.interval, c.jitter, c.verify_every, c.backoff_base, c.backoff_max) == (900, 30, 604800, 10, 3600)
    assert ScheduleConfig.from_mapping({"verify_every": 0}, "w").verify_every == 0  # never


@pytest.mark.parametrize(("data", "words"), [
    ({"intervall": "1h"}, ["unknown key 'intervall'"]),
    ({"interval": "soon"}, ["interval", "duration", "'soon'"]),
    ({"interval": -5}, ["interval", "duration"]),
    ({"interval": True}, ["interval", "duration"]),
    ({"interval": 0}, ["interval", "longer than 0"]),
    ({"jitter": [1]}, ["jitter", "duration"]),
    ({"backoff_base": "1h", "backoff_max": "1m"}, ["backoff_max", "backoff_base"]),
])
def test_config_errors_name_the_file_the_key_and_what_is_expected(data: dict[str, Any], words: list[str]) -> None:
    with pytest.raises(ScheduleConfigInvalid) as info:
        ScheduleConfig.from_mapping(data, "/etc/regen/regend.toml [schedule]")
    text = info.value.one_line()
    assert info.value.exit_code == EXIT_USAGE and text.startswith("/etc/regen/regend.toml [schedule]: ")
    for word in words:
        assert word in text


def test_run_forever_runs_the_job_repeatedly_and_returns_when_stopped() -> None:
    stop = threading.Event()
    calls: list[bool] = []

    def job(verify: bool) -> int:
        calls.append(verify)
        if len(calls) == 4:
            stop.set()
        return 0

    run_until_stopped(job, ScheduleConfig(interval=0.1, jitter=0.02, verify_every=0), stop)
    assert calls == [False] * 4  # verify_every = 0: never a full verify


def test_run_forever_requests_a_verify_at_the_verify_every_cadence() -> None:
    stop = threading.Event()
    calls: list[bool] = []

    def job(verify: bool) -> int:
        calls.append(verify)
        if len(calls) == 9:
            stop.set()
        return 0

    run_until_stopped(job, ScheduleConfig(interval=0.1, jitter=0, verify_every=0.3), stop)
    assert calls[0] is False  # a (re)started daemon does not verify at once
    assert True in calls[1:]
    assert calls.count(False) > calls.count(True)  # about one run in three hashes everything


def test_a_stale_last_verify_makes_the_first_run_a_verify() -> None:
    stop = threading.Event()
    calls: list[bool] = []

    def job(verify: bool) -> int:
        calls.append(verify)
        stop.set()
        return 0

    run_until_stopped(job, ScheduleConfig(interval=0.1, jitter=0, verify_every=3600), stop, last_verify=0.0)
    assert calls == [True]


def test_failed_runs_are_retried_with_backoff_long_before_the_next_interval() -> None:
    stop = threading.Event()
    codes = iter([1, 3, 0])
    calls: list[bool] = []
    hints: list[int] = []

    def job(verify: bool) -> int:
        calls.append(verify)
        rc = next(codes)
        if rc == 0:
            stop.set()
        return rc

    def retry_after() -> float | None:
        hints.append(1)
        return 0.01  # a Retry-After hint is consulted after each failure

    # an hour between runs: only the backoff (a few hundredths of a second) can bring the retries
    config = ScheduleConfig(interval=3600, jitter=0, verify_every=0, backoff_base=0.02, backoff_max=0.05)
    run_until_stopped(job, config, stop, start_now=True, retry_after=retry_after)
    assert len(calls) == 3 and len(hints) == 2


def test_a_job_that_raises_is_a_failed_run_and_the_schedule_goes_on() -> None:
    stop = threading.Event()
    calls: list[bool] = []

    def job(verify: bool) -> int:
        calls.append(verify)
        if len(calls) == 1:
            raise RuntimeError("boom")
        stop.set()
        return 0

    config = ScheduleConfig(interval=3600, jitter=0, verify_every=0, backoff_base=0.02, backoff_max=0.05)
    run_until_stopped(job, config, stop, start_now=True)
    assert len(calls) == 2


def test_never_two_runs_at_once() -> None:
    stop = threading.Event()
    running, most, calls = [0], [0], [0]
    lock = threading.Lock()

    def job(verify: bool) -> int:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        stop.wait(0.25)  # each run outlasts two intervals
        with lock:
            running[0] -= 1
            calls[0] += 1
            if calls[0] == 3:
                stop.set()
        return 0

    run_until_stopped(job, ScheduleConfig(interval=0.1, jitter=0, verify_every=0), stop)
    assert most[0] == 1 and calls[0] == 3


def test_run_forever_returns_at_once_when_already_stopped() -> None:
    stop = threading.Event()
    stop.set()
    calls: list[bool] = []
    run_forever(calls.append, ScheduleConfig(interval=0.01), "h", stop, start_now=True)  # type: ignore[arg-type]
    assert calls == []
