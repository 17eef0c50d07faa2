"""The `regen serve` application: read-only pages over the store (aiohttp + Jinja2).

Every route is a GET that reads the store and renders; there is no form, no POST, nothing that
writes, so read-only store credentials suffice. The fleet (one read per host) is read at most
once per `refresh` and shared by all pages; a host's timeline and a channel's log likewise.
Blocking store calls run in worker threads, so the event loop keeps answering.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import jinja2
from aiohttp import web
from aiohttp.typedefs import Middleware

from regen.store import Store, format_time, utcnow
from regen.store.errors import RegenError

from .. import reports
from ..fleet import ATTENTION_STATES, STATES, FleetStatus
from ..history import ChannelLog, channel_log
from ..metrics import fleet_metrics
from ..scan import shown
from ..timeline import Timeline, host_timeline
from . import auth, svg, views

T = TypeVar("T")
TEMPLATES = Path(__file__).with_name("templates")
CACHED_TIMELINES = 256
WARMING = web.AppKey("warming", asyncio.Task)


@dataclass(frozen=True, slots=True)
class ServeOptions:
    refresh: timedelta = timedelta(seconds=30)
    stale_after: timedelta = timedelta(days=1)
    jobs: int = reports.DEFAULT_JOBS
    token: str | None = None


class Cached:
    """One value per key, recomputed in a thread when older than `ttl`; one computation at a time per key."""

    def __init__(self, ttl: float, limit: int = 1024) -> None:
        self.ttl = ttl
        self.limit = limit
        self._values: dict[str, tuple[float, Any]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, key: str, compute: Callable[[], T]) -> T:
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            hit = self._values.get(key)
            if hit is not None and time.monotonic() - hit[0] < self.ttl:
                return hit[1]  # type: ignore[no-any-return]
            value = await asyncio.to_thread(compute)
            if len(self._values) >= self.limit:
                self._values.pop(next(iter(self._values)))
            self._values[key] = (time.monotonic(), value)
            return value


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["shown"] = shown
    env.globals.update(STATES=STATES, ATTENTION_STATES=ATTENTION_STATES)
    return env


class Dashboard:
    def __init__(self, store: Store, options: ServeOptions) -> None:
        self.store = store
        self.options = options
        self.env = environment()
        ttl = options.refresh.total_seconds()
        self._fleet = Cached(ttl, 1)
        self._timelines = Cached(ttl, CACHED_TIMELINES)
        self._channels = Cached(ttl, 64)

    async def fleet(self) -> FleetStatus:
        return await self._fleet.get("fleet", lambda: reports.fleet_status(
            self.store, stale_after=self.options.stale_after, jobs=self.options.jobs))

    def render(self, template: str, http_status: int = 200, **context: Any) -> web.Response:
        html = self.env.get_template(template).render(generated=context.pop("generated", ""), **context)
        return web.Response(text=html, status=http_status, content_type="text/html", charset="utf-8",
                            headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
                                     "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                                                                "img-src 'self' data:"})

    async def overview(self, request: web.Request) -> web.Response:
        fleet = await self.fleet()
        q = views.parse_query(request.query)
        page = views.host_page(fleet, q)
        channels = sorted({h.channel for h in fleet.hosts if h.channel})
        return self.render("overview.html", fleet=fleet, page=page, q=q, channels=channels,
                           counts=fleet.counts(), generated=fleet.generated)

    async def host(self, request: web.Request) -> web.Response:
        name = request.match_info["host"]
        fleet = await self.fleet()
        status = next((h for h in fleet.hosts if h.host == name), None)
        timeline: Timeline = await self._timelines.get(name, lambda: host_timeline(
            self.store, name, jobs=self.options.jobs))
        entries = list(reversed(timeline.entries))[:500]
        repaired = sorted({p for e in timeline.entries for p in e.repaired})
        return self.render("host.html", name=name, status=status, entries=entries, repaired=repaired,
                           drift=views.drift_by_kind(timeline), plots=svg.plots(views.host_series(timeline)),
                           findings=timeline.entries[-1].findings if timeline.entries else (),
                           generated=fleet.generated)

    async def channel(self, request: web.Request) -> web.Response:
        name = request.match_info["channel"]
        fleet = await self.fleet()
        log: ChannelLog = await self._channels.get(name, lambda: channel_log(self.store, name))
        rows, unknown = views.channel_rows(fleet, log)
        return self.render("channel.html", name=name, log=log, rows=rows, unknown=unknown,
                           generated=fleet.generated)

    async def drift(self, request: web.Request) -> web.Response:
        fleet = await self.fleet()
        return self.render("drift.html", fleet=fleet, generated=fleet.generated)

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(text=fleet_metrics(await self.fleet()), content_type="text/plain",
                            charset="utf-8", headers={"Cache-Control": "no-store"})


def _errors(dash: Dashboard) -> Middleware:
    @web.middleware
    async def handle(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                     ) -> web.StreamResponse:
        try:
            return await handler(request)
        except RegenError as exc:
            status = 404 if exc.exit_code == 2 else 503
            return dash.render("error.html", http_status=status, message=exc.one_line(),
                               generated=format_time(utcnow()))

    return handle


def make_app(store: Store, options: ServeOptions) -> web.Application:
    """The application; GET routes only (aiohttp answers 405 to anything else)."""
    dash = Dashboard(store, options)
    middlewares: list[Middleware] = [auth.middleware(options.token)] if options.token else []
    app = web.Application(middlewares=[*middlewares, _errors(dash)])
    async def warm(_app: web.Application) -> None:
        # read the fleet in the background at start: at 10,000 hosts on S3 that takes a minute,
        # which the first visitor would otherwise wait for (errors surface on the first page)
        task = asyncio.get_running_loop().create_task(dash.fleet())
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        _app[WARMING] = task

    app.on_startup.append(warm)
    app.add_routes([web.get("/", dash.overview), web.get("/host/{host}", dash.host),
                    web.get("/channel/{channel}", dash.channel), web.get("/drift", dash.drift),
                    web.get("/metrics", dash.metrics)])
    return app


async def _serve(app: web.Application, host: str, port: int, ready: Callable[[str], None]) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server  # the bound sockets: the port actually chosen when 0 was asked for
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    ready(f"http://{host if ':' not in host else f'[{host}]'}:{bound}/")
    try:
        while True:
            await asyncio.sleep(3600)
    finally:
        await runner.cleanup()


def serve(app: web.Application, host: str, port: int, ready: Callable[[str], None]) -> None:
    """Serve until interrupted; `ready` gets the URL once the socket listens."""
    asyncio.run(_serve(app, host, port, ready))
