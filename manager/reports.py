"""Collecting what `regen status` analyses: one read of latest.json per host, one ref per channel (I/O).

Reports are read concurrently by `jobs` threads (issue 16: 1,001 reports one after another
took 12-15 s on a loopback S3); each host costs exactly one GET, and hosts not named by the
patterns are not read at all.

A report that cannot be used (not JSON, wrong shape, too large, under a bad name) becomes a
HostInput with the reason, so one broken client never hides the rest of the fleet. Only a
store that cannot be reached at all stops the command.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from regen.store import Store, utcnow
from regen.store.errors import StoreAccessDenied, StoreError, StoreUnreachable

from .fleet import DEFAULT_DRIFT_MIN_HOSTS, DEFAULT_STALE, ChannelHead, FleetStatus, HostInput, analyse, match_hosts
from .hostkeys import Seen, enrolled_key, judge
from .options import check_channel
from .progress import NoProgress, Progress
from .trust import Trust

DEFAULT_JOBS = 16  # 2,000 hosts on moto: 10.2 s with 8 threads, 12.1 s with 32 (GIL contention)


def read_host(store: Store, host: str, trust: Trust | None = None,
              seen: Mapping[str, tuple[int, str]] | None = None) -> HostInput:
    """The host's latest report, when the store wrote it and, with `trust`, what its signature says."""
    try:
        report = store.read_latest_report(host)
        stored = store.latest_report_mtime(host) if report is not None else None
    except (StoreUnreachable, StoreAccessDenied):
        raise
    except StoreError as exc:
        return HostInput(host, None, exc.message)
    if report is None:
        return HostInput(host, None, "no latest.json in its reports folder")
    item = HostInput(host, report, stored=stored)
    if trust is not None and trust.keys:
        try:
            key, problem = enrolled_key(store, host, trust)
        except (StoreUnreachable, StoreAccessDenied):
            raise
        except StoreError as exc:
            key, problem = None, f"its key record cannot be read: {exc.message}"
        item = replace(item, verdict=judge(report, key, problem, (seen or {}).get(host)))
    if report.host != host:
        return replace(item, error=f"the report names host {report.host!r} but is stored under {host!r}")
    return item


def channel_heads(store: Store) -> dict[str, ChannelHead]:
    heads: dict[str, ChannelHead] = {}
    for channel in store.channels():
        try:
            ref = store.read_ref(channel)
            if ref is not None:
                gen = store.peek_generation(ref, where=f"ref of channel {channel!r}")
                heads[channel] = ChannelHead(channel, gen.number, gen.created)
        except (StoreUnreachable, StoreAccessDenied):
            raise
        except StoreError:
            continue  # a damaged ref is fsck's business; status still shows the hosts
    return heads


def read_hosts(store: Store, hosts: Sequence[str], *, jobs: int = DEFAULT_JOBS, progress: Progress | None = None,
               trust: Trust | None = None, seen: Mapping[str, tuple[int, str]] | None = None) -> list[HostInput]:
    """Every host's latest report, `jobs` at a time, in the order of `hosts`."""
    progress = progress or NoProgress()
    progress.start("reading reports", total_items=len(hosts))
    out: list[HostInput] = []
    pool = ThreadPoolExecutor(max(1, jobs))
    try:
        for item in pool.map(lambda h: read_host(store, h, trust, seen), hosts):
            out.append(item)
            progress.advance(1)
    finally:
        pool.shutdown(cancel_futures=True)  # an unreachable store: do not wait for 10,000 doomed reads
        progress.finish()
    return out


def fleet_status(store: Store, *, channel: str | None = None, stale_after: timedelta = DEFAULT_STALE,
                 drift_min_hosts: int = DEFAULT_DRIFT_MIN_HOSTS, now: datetime | None = None,
                 hosts: Sequence[str] = (), jobs: int = DEFAULT_JOBS, progress: Progress | None = None,
                 trust: Trust | None = None, cache_dir: Path | None = None) -> FleetStatus:
    """The fleet (or the hosts matching `hosts`, names or globs) from each one's latest report.

    With `trust` (the admin keys) each report is checked against its host's enrolled key, and the
    counters of good signed reports are remembered under `cache_dir` to catch replays.
    """
    if channel is not None:
        check_channel(channel)
    _ = store.config
    counters = Seen(cache_dir, store.store_id) if cache_dir is not None and trust is not None and trust.keys else None
    seen = counters.load() if counters is not None else {}
    inputs = read_hosts(store, match_hosts(store.report_hosts(), hosts), jobs=jobs, progress=progress, trust=trust,
                        seen=seen)
    if counters is not None:
        counters.save(seen, {i.host: i.verdict.seen for i in inputs if i.verdict is not None and i.verdict.seen})
    return analyse(inputs, channel_heads(store), now=now or utcnow(), stale_after=stale_after, channel=channel,
                   drift_min_hosts=drift_min_hosts)
