"""The store as one run uses it: opened at most once, and "offline" once it could not be read (I/O).

Why one object: every step that touches the store (install, update, the apply's base paths,
the report) must agree on whether the store is reachable. Once a read fails with an offline
error (RegenError.offline), the run goes on from its local copies and says so once in its
warnings; later steps do not try again (each try could cost a timeout; a separate
`[reports] store` is still tried). The session also keeps the worst failure class the run met
(`problem`: misconfigured before damaged before unreachable): the report's store state and the
run's exit status. The store's configuration (regen.json) is cached in the index, so it is
read once per host, not once per run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from regen.daemon.run.channel import failure_line
from regen.daemon.run.statefile import save_mirror
from regen.store import RegenError, Store, StoreConfig, open_store, redact
from regen.store.errors import DAMAGED, FAILURES, MISCONFIGURED, UNREACHABLE

if TYPE_CHECKING:
    from regen.daemon.config import DaemonConfig
    from regen.daemon.run.reporting import RunLog
    from regen.daemon.tree.index import Index

__all__ = ["StoreFactory", "StoreSession"]

_RANK = {UNREACHABLE: 1, DAMAGED: 2, MISCONFIGURED: 3}  # which failure class a run reports when it met several

StoreFactory = Callable[["DaemonConfig", "StoreConfig | None"], Store]


class StoreSession:
    """The run's store (`store`, None until opened), whether it went offline, and the
    Retry-After the store asked for (`retry_after`, seconds)."""

    def __init__(self, cfg: DaemonConfig, index: Index | None, log: RunLog, factory: StoreFactory,
                 stop: threading.Event | None = None) -> None:
        self.cfg = cfg
        self.stop = stop  # set by SIGINT/SIGTERM: batch transfers start nothing more
        self.index = index
        self.log = log
        self.factory = factory
        self.store: Store | None = None
        self.offline = False
        self.retry_after: float | None = None
        self.problem: RegenError | None = None

    def open(self) -> Store:
        """The store, opened with the cached configuration (so regen.json is read once per host)."""
        if self.store is None:
            cached = self.index.state("store") if self.index is not None else None
            config = None
            # (older caches lack "features")
            if cached and cached.get("url") == redact(self.cfg.store) and "features" in cached:
                config = StoreConfig(cached["store_id"], cached.get("compression", "zstd"),
                                     features=tuple(cached.get("features", ())))
            store = self.factory(self.cfg, config)
            self.store = store
            if config is None:
                self.remember_config()  # reads regen.json once (raises while the store is unreachable)
        return self.store

    def remember_config(self) -> None:
        """Cache the store's configuration, and again when it changed (the store learned during a run
        that `regen migrate` packed it): the next runs read packs from the start."""
        assert self.store is not None
        cfgd = self.store.config
        state = {"url": redact(self.cfg.store),  # (no password in the index)
                 "store_id": cfgd.store_id, "compression": cfgd.compression,
                 "features": list(cfgd.features)}
        if self.index is not None and self.index.state("store") != state:
            with self.index.atomic():
                self.index.set_state("store", state)
            save_mirror(self.cfg.state_dir, self.index)

    def open_quiet(self) -> Store | None:
        """The store, or None (and offline) when it cannot be opened."""
        try:
            return self.open()
        except RegenError as exc:
            self.went_offline(exc)
            return None

    def reachable(self) -> Store | None:
        """The store unless this run already found it offline (then None, without trying again)."""
        return None if self.offline else self.open_quiet()

    def went_offline(self, exc: RegenError, *, confirmed: bool = False) -> None:
        """The store cannot be read now: later steps go on from local copies without trying again.
        `confirmed`: the ref was read first (the run knows the newest generation)."""
        first = not self.offline
        self.offline = True
        self.note(exc)
        if exc.retry_after is not None:
            self.retry_after = exc.retry_after
        if first:
            self.log.warnings.append(failure_line(exc, confirmed=confirmed))

    def note(self, exc: BaseException) -> None:
        """Remember a store problem of this run (the worst failure class wins, then the first)."""
        if not isinstance(exc, RegenError) or exc.failure not in FAILURES:
            return
        if self.problem is None or _RANK[exc.failure] > _RANK[self.problem.failure or UNREACHABLE]:
            self.problem = exc

    def state(self) -> tuple[str | None, str | None]:
        """The report's store state and its one line: ok when the store was read without a problem,
        None when this run never needed it (a quarantined start). A problem that did not take the
        store offline (a damaged object, a missing channel) gets its line among the warnings here."""
        if self.problem is not None:
            line = failure_line(self.problem, confirmed=not self.offline)
            if not self.offline and line not in self.log.warnings:
                self.log.warnings.append(line)
            return self.problem.failure, line
        return ("ok", None) if self.store is not None else (None, None)

    def exit_code(self, code: int) -> int:
        """The run's exit status: a run that lets the machine start (0) says which failure class it met."""
        if code == 0 and self.problem is not None and self.problem.failure in FAILURES:
            return FAILURES[self.problem.failure]
        return code

    def report_target(self, store: Store | None) -> Store | None:
        """Where reports go: `[reports] store` when set (clients of a read-only http store), else the store."""
        if self.cfg.report_store is None:
            return store
        try:
            return open_store(self.cfg.report_store, dict(self.cfg.report_storage_options))
        except RegenError as exc:
            self.log.warnings.append(f"the report store cannot be opened: {exc.one_line()}")
            return None

    def close(self) -> None:
        """Close pooled connections (sftp); the store stays reopenable."""
        if self.store is not None:
            self.store.backend.close()
