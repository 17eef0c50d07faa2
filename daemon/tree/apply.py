"""Carry out a Plan on the tree: atomic, verified, confined to root (I/O).

Order: save to quarantine -> delete (deepest first) -> mkdir -> files, symlinks, FIFOs and devices
-> hard links -> metadata (meta.py: owner, mode, attributes, mtime; directories deepest first, their
mtimes last). Files go in batches: each is written to `.regen-tmp-<run>-<n>` in its own directory
while the BLAKE3 of the bytes actually written is computed (a cached object is trusted only after
that check; a sparse entry's zero blocks become holes) -- or, on an install, the cache's copy that
this process just fetched and verified is renamed there instead (`move`) --, its metadata is set
on the descriptor, then one syncfs(2) per filesystem concerned for the whole batch (SafeRoot.sync:
root's, any mounted below it, the cache's), then each temp file is renamed over its path. A kill
at any moment leaves every managed path with its old content, its new content or absent, never a
partial file; leftover temp files are removed by the next run's plan. All paths go through
SafeRoot (no symlink followed, nothing outside root). Failures are collected per entry; the rest of
the plan goes on.

Every operation ticks the run's Ticker: SIGTERM is honoured between operations, and the crash
tests' harness (tests/regend_harness.py) kills a real run at every point of an apply in turn.
"""

from __future__ import annotations

import os
import stat
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from regen.daemon.errors import ContentError, QuarantineFull, UnsafePath
from regen.daemon.tree import meta
from regen.daemon.tree.cache import ObjectCache
from regen.daemon.tree.fetch import fetch_one
from regen.daemon.tree.fsops import SafeRoot
from regen.daemon.tree.index import IndexRow
from regen.daemon.tree.plan import TEMP_PREFIX, Observed, Plan
from regen.daemon.tree.quarantine import Quarantine
from regen.daemon.tree.scan import row_for
from regen.daemon.tree.sink import Sink as _Sink
from regen.daemon.tree.ticker import Ticker
from regen.store import EMPTY_ID, NODE_KINDS, Entry, RegenError, Store, decode_xattrs, encode_xattrs

_NODE_TYPE = {"fifo": stat.S_IFIFO, "chardev": stat.S_IFCHR, "blockdev": stat.S_IFBLK}

BATCH_FILES = 2000
BATCH_BYTES = 256 << 20


@dataclass(slots=True)
class ApplyResult:
    rows: list[IndexRow] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    left: list[tuple[str, str]] = field(default_factory=list)   # junk past the quarantine budget, left in place
    written: int = 0
    bytes_written: int = 0
    from_store: int = 0            # objects read from the store during apply (base paths, cache misses)
    bytes_from_store: int = 0
    cache_discarded: int = 0       # corrupt cache entries found and dropped
    ops: int = 0
    warnings: list[str] = field(default_factory=list)   # attributes a file system refused (best-effort)
    moved: dict[str, str] = field(default_factory=dict)  # object -> path: moved from the cache, not copied

    def counts(self) -> dict[str, int]:
        return {"written": self.written, "bytes_written": self.bytes_written, "removed": len(self.removed),
                "quarantined": len(self.quarantined), "errors": len(self.errors), "from_store": self.from_store,
                "cache_discarded": self.cache_discarded}


class Applier:
    def __init__(self, root: str, plan: Plan, *, cache: ObjectCache, store: Store | None, quarantine: Quarantine,
                 run_id: str, ticker: Ticker | None = None,
                 on_batch: Callable[[ApplyResult], None] | None = None,
                 known_dir: Callable[[str], IndexRow | None] | None = None,
                 batch_files: int = BATCH_FILES, batch_bytes: int = BATCH_BYTES,
                 xattrs_required: bool = True, move: bool = False) -> None:
        """`move`: an object this process fetched is moved from the cache into the tree (its last
        path), not copied (`_take`): a first install writes each content once."""
        self.xattrs_required = xattrs_required
        self.move = move
        self.root = root
        self.plan = plan
        self.cache = cache
        self.store = store
        self.quarantine = quarantine
        self.run_id = run_id
        self.ticker = ticker or Ticker()
        self.on_batch = on_batch
        self.known_dir = known_dir
        self._touched: set[str] = set()   # directories whose mtime this apply changed
        self.batch_files = batch_files
        self.batch_bytes = batch_bytes
        self.result = ApplyResult()
        self._blocked: set[str] = set()
        self._linked: list[Entry] = []
        self._failed_dirs: set[str] = set()
        self._n = 0
        self._uses: Counter[str | None] = Counter()

    # -- entry point ------------------------------------------------------------------------
    def run(self) -> ApplyResult:
        with SafeRoot(self.root) as sroot:
            self.sroot = sroot
            sroot.sync_also(self.cache.dir)  # the cache objects fetched for this apply (written unsynced)
            self._record_known()
            self._save_quarantine()
            self._deletes()
            self._mkdirs()
            self._contents()
            self._links()
            self._modes()
            for e in self._linked:
                self._row_for_entry(e)
            self._refresh_dirs()
            sroot.sync()
            self._flush()
        return self.result

    def _touch(self, path: str) -> None:
        parent = path.rpartition("/")[0]
        if parent:
            self._touched.add(parent)

    def _refresh_dirs(self) -> None:
        """Directories whose entries changed have a new mtime: their rows follow (index == disk)."""
        if self.known_dir is None:
            return
        latest = {r.path: r for r in self.result.rows}
        for d in sorted(self._touched):
            row = latest.get(d) or self.known_dir(d)
            if row is None or row.kind != "dir":
                continue
            try:
                s = self.sroot.lstat(d)
                found = meta.read_back(*self.sroot.parent(d)) if s is not None else ()
            except (OSError, UnsafePath):
                continue
            if s is not None and stat.S_ISDIR(s.st_mode):
                self.result.rows.append(row_for(d, s, managed=row.managed, meta=row.uid is not None,
                                                xattrs=encode_xattrs(found) if found else None))

    def _fail(self, path: str, exc: BaseException) -> None:
        if isinstance(exc, RegenError):
            msg = exc.one_line()
        elif isinstance(exc, OSError):
            msg = f"{exc.strerror or exc}"
        else:
            msg = str(exc)
        self.result.errors.append((path, msg))

    def _skip(self, path: str) -> bool:
        """An entry below a directory that could not be made, or one whose save failed."""
        if path in self._blocked:
            return True
        parent = path.rpartition("/")[0]
        while parent:
            if parent in self._failed_dirs:
                self.result.errors.append((path, f"skipped: its directory {parent} could not be made"))
                return True
            parent = parent.rpartition("/")[0]
        return False

    def _flush(self) -> None:
        if self.on_batch is not None:
            self.on_batch(self.result)

    # -- phases -----------------------------------------------------------------------------
    def _record_known(self) -> None:
        """Rows for paths already right (adopt) and unmanaged paths kept: the index must match the disk."""
        for e in self.plan.adopt:
            self._row_for_entry(e)
        for o in self.plan.keep:
            try:
                s = self.sroot.lstat(o.path)
            except (OSError, UnsafePath):
                continue
            if s is not None:
                self.result.rows.append(row_for(o.path, s, xxh=o.xxh, target=o.target, managed=False,
                                                xattrs=encode_xattrs(o.xattrs) if o.xattrs else None, meta=True))

    def _row_for_entry(self, e: Entry) -> None:
        try:
            s = self.sroot.lstat(e.path)
            found = meta.read_back(*self.sroot.parent(e.path)) if s is not None else ()
        except (OSError, UnsafePath) as exc:
            self._fail(e.path, exc)
            return
        if s is not None:
            self.result.rows.append(row_for(e.path, s, xxh=e.xxh, oid=e.oid, target=e.target,
                                            xattrs=encode_xattrs(found) if found else None, link=e.link,
                                            meta=e.has_meta))

    def _warn(self, line: str) -> None:
        self.result.warnings.append(line)

    def _meta_at(self, e: Entry, name: str | None = None, times: bool = True) -> None:
        """Owner, mode, attributes, mtime of `e`'s path (or of `name` in its directory)."""
        if not e.has_meta and not e.xattrs and name is None:
            if e.kind != "symlink":
                self.sroot.chmod(e.path, e.mode)
            return
        fd, own = self.sroot.parent(e.path)
        meta.at(fd, name or own, e, required=self.xattrs_required, warn=self._warn, shown=self.sroot.full(e.path),
                times=times)

    def _save_quarantine(self) -> None:
        removing = {o.path for o in self.plan.delete}
        for o in self.plan.quarantine:
            why = "removed by regend" if o.path in removing else "overwritten by regend"
            try:
                item = self.quarantine.save(self.sroot, self.run_id, o.path, why)
                if item is not None:
                    self.result.quarantined.append(o.path)
            except QuarantineFull as exc:
                self._blocked.add(o.path)  # never remove what could not be saved
                if o.path in removing:  # junk: it stays where it is (reported), the run goes on
                    self.result.left.append((o.path, exc.message))
                else:
                    self._fail(o.path, exc)
            except (OSError, RegenError) as exc:
                self._blocked.add(o.path)  # never remove what could not be saved
                self._fail(o.path, exc)
            self.ticker.tick()

    def _deletes(self) -> None:
        for o in self.plan.delete:
            if o.path in self._blocked:
                self._block_parents(o.path)
                continue
            try:
                self._touch(o.path)
                if o.kind == "dir":
                    self.sroot.rmdir(o.path)
                else:
                    self.sroot.unlink(o.path)
                self.result.removed.append(o.path)
            except FileNotFoundError:
                self.result.removed.append(o.path)
            except (OSError, RegenError) as exc:
                self._fail(o.path, exc)
                self._block_parents(o.path)
            self.ticker.tick()

    def _block_parents(self, path: str) -> None:
        """A path that stays blocks the removal of the directories holding it (they are not empty)."""
        parent = path.rpartition("/")[0]
        while parent:
            self._blocked.add(parent)
            parent = parent.rpartition("/")[0]

    def _mkdirs(self) -> None:
        for e in self.plan.mkdir:
            if self._skip(e.path):
                self._failed_dirs.add(e.path)
                continue
            try:
                s = self.sroot.lstat(e.path)
                if s is None:
                    self._touch(e.path)
                    self.sroot.mkdir(e.path)
                elif not stat.S_ISDIR(s.st_mode):
                    raise UnsafePath(f"{self.sroot.full(e.path)} is in the way of a directory and was kept",
                                     path=e.path)
            except (OSError, RegenError) as exc:
                self._fail(e.path, exc)
                self._failed_dirs.add(e.path)
            self.ticker.tick()

    def _contents(self) -> None:
        batch: list[tuple[Entry, str]] = []
        size = 0
        items = sorted(self.plan.create + self.plan.replace + self.plan.symlink, key=_tree_key)
        self._uses = Counter(e.oid for e in items if e.kind == "file" and e.path not in self.plan.from_store)
        try:
            for e in items:
                if self._skip(e.path):
                    continue
                tmp = f"{TEMP_PREFIX}{self.run_id}-{self._n}"
                self._n += 1
                try:
                    if e.kind == "symlink":
                        self.sroot.symlink(e.path, tmp, e.target or "")
                        if e.has_meta or e.xattrs:
                            self._meta_at(e, tmp)
                    elif e.kind in NODE_KINDS:
                        self._mknod(e, tmp)
                    else:
                        self._stage(e, tmp)
                    batch.append((e, tmp))
                    size += e.size
                except (OSError, RegenError) as exc:
                    self.sroot.unlink_quiet(e.path, tmp)
                    self._fail(e.path, exc)
                self.ticker.tick()
                if len(batch) >= self.batch_files or size >= self.batch_bytes:
                    self._commit(batch)
                    batch, size = [], 0
            self._commit(batch)
            batch = []
        finally:
            for e, tmp in batch:  # interrupted (SIGTERM): no temp file left behind
                self.sroot.unlink_quiet(e.path, tmp)

    def _commit(self, batch: list[tuple[Entry, str]]) -> None:
        """One sync for the batch, then the renames: each path flips from old to new content."""
        if not batch:
            return
        self.sroot.sync()
        self.ticker.tick()
        while batch:
            e, tmp = batch.pop(0)
            try:
                self._clear_way(e)
                self._touch(e.path)
                self.sroot.replace(e.path, tmp)
                self._row_for_entry(e)
                if e.kind == "file":
                    self.result.written += 1
                    self.result.bytes_written += e.size
            except (OSError, RegenError) as exc:
                self.sroot.unlink_quiet(e.path, tmp)
                self._fail(e.path, exc)
            self.ticker.tick()
        self._flush()

    def _clear_way(self, e: Entry) -> None:
        """Safety net: something the plan did not see (an unreadable directory, a file created
        since the scan) is never clobbered unsaved by a rename."""
        s = self.sroot.lstat(e.path)
        if s is None or e.path in self.plan.occupied:
            return
        if stat.S_ISDIR(s.st_mode):
            raise UnsafePath(f"{self.sroot.full(e.path)} is a directory the plan did not expect; not replaced",
                             path=e.path)
        if self.quarantine.save(self.sroot, self.run_id, e.path, "in the way of regend (appeared during the run)"):
            self.result.quarantined.append(e.path)

    def _mknod(self, e: Entry, tmp: str) -> None:
        fd, _ = self.sroot.parent(e.path)
        device = os.makedev(*e.rdev) if e.rdev is not None else 0
        os.mknod(tmp, 0o600 | _NODE_TYPE[e.kind], device, dir_fd=fd)
        self._meta_at(e, tmp)

    def _links(self) -> None:
        """Hard-link members: a link to the group's first member (in place by now), renamed over the path."""
        failed = {path for path, _ in self.result.errors}
        for e in self.plan.link:
            if self._skip(e.path) or e.link is None:
                continue
            if e.link in failed:  # never link a member to a first member that is not the new content
                self.result.errors.append((e.path, f"skipped: {e.link}, the first of its hard-link group, "
                                                   f"could not be written"))
                continue
            tmp = f"{TEMP_PREFIX}{self.run_id}-{self._n}"
            self._n += 1
            try:
                first_fd, first = self.sroot.parent(e.link)
                s = os.stat(first, dir_fd=first_fd, follow_symlinks=False)
                if not stat.S_ISREG(s.st_mode):
                    raise UnsafePath(f"{self.sroot.full(e.link)}, the first of {e.path}'s hard-link group, is not "
                                     f"a regular file", path=e.path)
                fd, _ = self.sroot.parent(e.path)
                os.link(first, tmp, src_dir_fd=first_fd, dst_dir_fd=fd, follow_symlinks=False)
                self._clear_way(e)
                self._touch(e.path)
                self.sroot.replace(e.path, tmp)
                self.sroot.unlink_quiet(e.path, tmp)  # (a rename onto the same inode does nothing)
                self._linked.append(e)  # (its row once the group's metadata is set: _modes)
            except (OSError, RegenError) as exc:
                self.sroot.unlink_quiet(e.path, tmp)
                self._fail(e.path, exc)
            self.ticker.tick()
        self._flush()

    def _modes(self) -> None:
        files = [e for e in self.plan.chmod if e.kind != "dir"]
        # directories last and deepest first: a read-only directory is made so after its content,
        # and a directory's mtime is set once nothing below it changes any more
        full = {e.path: e for e in self.plan.chmod if e.kind == "dir"}
        full.update((e.path, e) for e in self.plan.mkdir)
        dirs = sorted(list(full.values()) + [e for e in self.plan.retime if e.path not in full], key=_tree_key,
                      reverse=True)
        for e in files + dirs:
            if e.path in self._failed_dirs or self._skip(e.path):
                continue
            try:
                if e.path in full or e.kind != "dir":
                    self._meta_at(e)
                elif e.mtime is not None:
                    meta.set_mtime(*self.sroot.parent(e.path), e.mtime)
                self._row_for_entry(e)
            except (OSError, RegenError) as exc:
                self._fail(e.path, exc)
            self.ticker.tick()

    # -- content ----------------------------------------------------------------------------
    def _stage(self, e: Entry, tmp: str) -> None:
        if self.move and e.path not in self.plan.from_store and self._take(e, tmp):
            return
        fd = self.sroot.create_temp(e.path, tmp)
        try:
            sink = _Sink(fd, self.ticker, sparse=e.sparse)
            assert e.oid is not None
            if e.oid != EMPTY_ID:
                if e.path in self.plan.from_store:
                    self._from_store(e.oid, sink, e.size)
                else:
                    self._from_cache(e.oid, sink, e.size)
            if sink.hash.hexdigest() != e.oid:
                raise ContentError(f"content written for {e.path} does not hash to {e.oid}")
            sink.finish()
            meta.on_fd(fd, e, required=self.xattrs_required, warn=self._warn, shown=self.sroot.full(e.path))
        finally:
            os.close(fd)

    def _take(self, e: Entry, tmp: str) -> bool:
        """Move the cache's copy of `e`'s object to `tmp` instead of copying it: the content is written
        once, synced once (the cache is filled again from the tree by a later run: run/refill.py).
        Only for the last path of the plan using an object this process fetched and verified moments
        ago (cache.fresh: not hashed again), not sparse, on the same filesystem; False: copy it."""
        oid = e.oid
        assert oid is not None
        self._uses[oid] -= 1
        if self._uses[oid] > 0 or e.sparse or oid not in self.cache.fresh:
            return False
        dfd, _ = self.sroot.parent(e.path)
        try:
            os.rename(self.cache.path(oid), tmp, dst_dir_fd=dfd)
        except OSError:  # (EXDEV: the cache on another filesystem; or gone meanwhile): a copy
            return False
        self.cache.fresh.discard(oid)
        fd = os.open(tmp, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        try:
            if os.fstat(fd).st_size != e.size:
                raise ContentError(f"the cached object {oid} does not have the size of {e.path}")
            meta.on_fd(fd, e, required=self.xattrs_required, warn=self._warn, shown=self.sroot.full(e.path))
        finally:
            os.close(fd)
        self.result.moved[oid] = e.path
        return True

    def _from_store(self, oid: str, sink: _Sink, size: int | None = None) -> None:
        if self.store is None:
            raise ContentError(f"object {oid} must come from the store (a base path), which cannot be reached",
                               hint="the next run with the store reachable repairs it")
        self.store.get_to(oid, sink, max_bytes=size)  # (an object inflating past its entry's size is refused)
        self.result.from_store += 1
        self.result.bytes_from_store += sink.size
        if sink.hash.hexdigest() != oid:
            raise ContentError(f"object {oid} from the store hashed differently when written")

    def _from_cache(self, oid: str, sink: _Sink, size: int | None = None) -> None:
        for _attempt in range(2):
            if not self.cache.has(oid):
                if self.store is None:
                    raise ContentError(f"object {oid} is not in the local cache and the store cannot be reached",
                                       hint="the next run with the store reachable repairs it")
                fetch_one(self.store, self.cache, oid, max_bytes=size)
                self.result.from_store += 1
            self.cache.copy_to(oid, sink.write, limit=size)  # (decompressed as it is read)
            if sink.hash.hexdigest() == oid:
                return
            # a corrupt cache entry (or a damaged frame): never installed; dropped and fetched again
            self.cache.discard(oid)
            self.result.cache_discarded += 1
            sink.reset()
        raise ContentError(f"object {oid} is still corrupt after fetching it again")


def _tree_key(e: Entry) -> bytes:
    from regen.daemon.tree.index import path_key

    return path_key(e.path)


def observed_from_facts(facts: Iterable[tuple[Any, ...]], prune: Callable[[str], bool]) -> list[Observed]:
    """The disk as the index knows it (it matches the disk after a completed repair), from
    Index.observed_facts() without building IndexRows; pruned paths left out."""
    return [Observed(t[0], t[1], t[2], t[3], t[4], t[5], t[6], False, t[7], t[8], t[9], decode_xattrs(t[10]), t[11],
                     t[12])
            for t in facts if not prune(t[0])]


__all__ = ["Applier", "ApplyResult", "ContentError", "Ticker", "observed_from_facts"]
