"""When `regend run` works: a per-host time in every interval, retries that back off (APScheduler wiring).

A fleet that boots at 08:00 must not hit the store at 08:00 all at once. Each host runs on
its own grid: the epoch plus `splay(host)` plus whole intervals, each run delayed by a fresh
random share of `jitter`. The grid is anchored to the epoch, not to the daemon's start, so
restarts and reboots keep the fleet spread. A failed run is retried after an exponential
backoff (honouring a server's Retry-After) instead of at the next grid point.

`splay`, `next_delay` and `next_run` are pure; `run_forever` is the only I/O here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from regen.daemon.tables import ScheduleConfig
from regen.store import parse_duration

if TYPE_CHECKING:  # (the rest loads with the long-running daemon: a one-shot command parses the config only)
    import random
    import threading
    from datetime import datetime

__all__ = ["RETRY_AFTER_LIMIT", "ScheduleConfig", "next_delay", "next_run",
           "parse_duration", "run_forever", "splay"]

JOB_ID = "regend-run"
RETRY_AFTER_LIMIT = 86400.0  # a server asking for more than a day is more likely wrong than serious


def splay(host_id: str, interval: float) -> float:
    """This host's fixed offset in [0, interval): the same on every boot, spread evenly over a fleet."""
    if interval <= 0:
        return 0.0
    import hashlib

    draw = int.from_bytes(hashlib.sha256(host_id.encode("utf-8")).digest()[:8], "big") >> 11  # 53 bits
    offset = draw / float(1 << 53) * interval
    return offset if offset < interval else 0.0  # float rounding could reach `interval` itself


def next_delay(failures: int, base: float, cap: float, *, rand: float,
               retry_after: float | None = None) -> float:
    """Seconds to wait after `failures` consecutive failed runs (0 after none).

    Exponential with "equal jitter": half of base*2^(failures-1) (capped) is fixed and half is
    scaled by `rand` in [0, 1), so retries of a fleet spread out yet always back off. A
    Retry-After hint from the server is a floor (at most RETRY_AFTER_LIMIT).
    """
    if failures <= 0:
        return 0.0
    step = min(cap, base * 2.0 ** min(failures - 1, 60))
    delay = step / 2 + min(max(rand, 0.0), 1.0) * step / 2
    if retry_after is not None and retry_after > 0:
        delay = max(delay, min(retry_after, RETRY_AFTER_LIMIT))
    return delay


def next_run(now: float, interval: float, offset: float, jitter_draw: float) -> float:
    """The first grid point (epoch + offset + k*interval) strictly after `now`, plus `jitter_draw`."""
    k = math.floor((now - offset) / interval) + 1
    return offset + k * interval + jitter_draw


def _grid_trigger(interval: float, offset: float, jitter: float, rng: random.Random) -> Any:
    """APScheduler trigger firing on the host's grid. Unlike IntervalTrigger, its jitter does not drift.
    (Made on demand: APScheduler is imported only by a daemon that stays running.)"""
    from apscheduler.triggers.base import BaseTrigger

    class _GridTrigger(BaseTrigger):  # type: ignore[misc]  # (APScheduler 3 ships no types)
        def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime:
            draw = rng.uniform(0, jitter) if jitter > 0 else 0.0
            return _at(next_run(now.timestamp(), interval, offset, draw))

    return _GridTrigger()


def _at(timestamp: float) -> datetime:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(timestamp, tz=UTC)


class _Runner:
    """One run of the job and its aftermath: the verify cadence and the retry backoff."""

    def __init__(self, job: Callable[[bool], int], config: ScheduleConfig, stop: threading.Event,
                 scheduler: Any, last_verify: float, rng: random.Random,
                 retry_after: Callable[[], float | None] | None) -> None:
        self.job, self.config, self.stop, self.scheduler = job, config, stop, scheduler
        self.last_verify, self.rng, self.retry_after = last_verify, rng, retry_after
        self.failures = 0

    def fire(self) -> None:
        import logging

        log = logging.getLogger(__name__)
        if self.stop.is_set():
            return
        started = time.time()
        # Half an interval of slack: runs land on a grid, so "every 3 runs" must not slip to 4.
        every = self.config.verify_every
        verify = every > 0 and started - self.last_verify >= every - self.config.interval / 2
        try:
            rc = self.job(verify)
        except Exception:
            log.exception("regend run raised; treating it as a failed run")
            rc = 1
        if rc == 0:
            self.failures = 0
            if verify:
                self.last_verify = started
            return
        self.failures += 1
        hint = self.retry_after() if self.retry_after else None
        delay = next_delay(self.failures, self.config.backoff_base, self.config.backoff_max,
                           rand=self.rng.random(), retry_after=hint)
        log.warning("regend run failed (exit %d, %d in a row); retrying in %.0f s", rc, self.failures, delay)
        if not self.stop.is_set():
            from apscheduler.jobstores.base import JobLookupError

            try:
                self.scheduler.modify_job(JOB_ID, next_run_time=_at(time.time() + delay))
            except JobLookupError:
                pass  # the scheduler is shutting down


def run_forever(job: Callable[[bool], int], config: ScheduleConfig, host_id: str, stop: threading.Event, *,
                start_now: bool = False, last_verify: float | None = None,
                retry_after: Callable[[], float | None] | None = None) -> None:
    """Call `job(verify)` on this host's schedule until `stop` is set; never two calls at once.

    job returns an exit status; non-zero is a failure, retried after `next_delay` (asking
    `retry_after()` for the server's hint, if given). `verify` is True when `verify_every` has
    passed since `last_verify` (epoch seconds; default: now, so a restart does not verify at
    once - pass the index's time of the last full verify to keep the cadence across restarts).
    The first run is at the next grid point, or immediately with `start_now`. Returns once
    `stop` is set and a run in progress has returned: the job should watch `stop` too.
    """
    if stop.is_set():
        return
    import random
    from datetime import UTC

    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.schedulers.background import BackgroundScheduler

    rng = random.Random()
    scheduler = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(max_workers=1)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        timezone=UTC,
    )
    runner = _Runner(job, config, stop, scheduler, time.time() if last_verify is None else last_verify, rng,
                     retry_after)
    trigger = _grid_trigger(config.interval, splay(host_id, config.interval), config.jitter, rng)
    extra: dict[str, Any] = {"next_run_time": _at(time.time())} if start_now else {}
    scheduler.add_job(runner.fire, trigger, id=JOB_ID, name="regend run", **extra)
    scheduler.start()
    try:
        while not stop.wait(1.0):  # a timed wait stays responsive to signal handlers in the main thread
            pass
    finally:
        scheduler.shutdown(wait=True)
