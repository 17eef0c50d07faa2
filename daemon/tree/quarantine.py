"""Nothing is lost: every file regend removes or overwrites that the store does not hold (local I/O).

Layout in state_dir:
    quarantine/<run id>/<path>        the file (hard link when on the same file system, else a copy)
    quarantine/<run id>.jsonl         one JSON line per item: path, kind, mode, uid, gid, size,
                                      mtime_ns, symlink target, why, when
The item is saved (and its line fsynced) before the original is removed or replaced, so a
kill at any moment leaves it either still in place or in quarantine.

The budget no user can game (issue 13): sizes are allocated blocks (st_blocks), not st_size,
and copies keep holes (SEEK_DATA/SEEK_HOLE), so a `truncate -s 20G` file costs what it holds;
one run keeps at most `run_budget` bytes, and a copy that would leave less than `min_free`
free on state_dir's file system (or that meets ENOSPC) is not made. Such a file is left in
place (QuarantineFull: the caller reports it and does not remove it).

Retention (prune): runs older than max_age_days go, then the oldest while the total is above
max_bytes; the newest `floor` runs are never deleted by either rule, and ages are measured
against the clock only when it is sane (see retention.py).
"""

from __future__ import annotations

import calendar
import errno
import json
import os
import stat as st
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from regen.daemon.errors import QuarantineFull, RecoverError
from regen.daemon.tree.fsops import SafeRoot, copy_data, make_dirs, remove_tree, tree_files

QUARANTINE_DIR = "quarantine"
_COPY_CHUNK = 1 << 20
CLOCK_SLACK = 86400.0   # a run dated more than a day after the clock means the clock was (or is) wrong


@dataclass(frozen=True, slots=True)
class Item:
    run_id: str
    path: str
    kind: str
    mode: int
    size: int
    mtime_ns: int
    uid: int
    gid: int
    target: str | None
    why: str
    when: str
    stored: str            # where it lies, relative to quarantine/<run id> (the path, or path.N)

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "path": self.path, "kind": self.kind, "mode": self.mode, "size": self.size,
                "mtime_ns": self.mtime_ns, "uid": self.uid, "gid": self.gid, "target": self.target, "why": self.why,
                "when": self.when, "stored": self.stored}


@dataclass(frozen=True, slots=True)
class Pruned:
    removed: list[str]
    notes: tuple[str, ...] = ()     # clock trouble seen (reported as warnings)


@dataclass(frozen=True, slots=True)
class RunInfo:
    run_id: str
    items: int
    bytes: int


def allocated(s: os.stat_result) -> int:
    """What a file really occupies: its allocated blocks (512-byte units), not its length."""
    return int(getattr(s, "st_blocks", 0)) * 512 if hasattr(s, "st_blocks") else s.st_size


class Quarantine:
    def __init__(self, state_dir: str, *, run_budget: int | None = None, min_free: int = 0) -> None:
        self.dir = os.path.join(state_dir, QUARANTINE_DIR)
        self.run_budget = run_budget
        self.min_free = min_free
        self._used: dict[str, int] = {}   # bytes kept so far, per run id (this process)

    def run_dir(self, run_id: str) -> str:
        return os.path.join(self.dir, run_id)

    # -- saving -----------------------------------------------------------------------------
    def save(self, sroot: SafeRoot, run_id: str, path: str, why: str) -> Item | None:
        """Keep `path` (below sroot) in quarantine/<run_id>; None if it is gone or is a special file.
        QuarantineFull: it does not fit the budget or the disk; it was left where it is."""
        s = sroot.lstat(path)
        if s is None:
            return None
        kind = "file" if st.S_ISREG(s.st_mode) else "symlink" if st.S_ISLNK(s.st_mode) else "other"
        if kind == "other":
            return None
        cost = allocated(s) if kind == "file" else 0
        used = self._used.get(run_id, 0)
        if self.run_budget is not None and used + cost > self.run_budget:
            raise QuarantineFull(f"{sroot.full(path)} was left in place: keeping it ({cost} bytes allocated) would "
                                 f"pass this run's quarantine budget ({self.run_budget} bytes, {used} used)",
                                 path=path)
        dest = None
        try:
            dest = self._dest(run_id, path)
            target = None
            if kind == "symlink":
                target = sroot.readlink(path)
                os.symlink(target, dest)
            else:
                self._link_or_copy(sroot, path, dest, cost)
            item = Item(run_id, path, kind, st.S_IMODE(s.st_mode), s.st_size if kind == "file" else 0,
                        s.st_mtime_ns, s.st_uid, s.st_gid, target, why,
                        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), os.path.relpath(dest, self.run_dir(run_id)))
            self._append(run_id, item)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            if dest is not None:
                _unlink_quiet(dest)
            raise QuarantineFull(f"{sroot.full(path)} was left in place: state_dir's file system is full "
                                 f"({exc.strerror})", path=path) from None
        self._used[run_id] = used + cost
        return item

    def _dest(self, run_id: str, path: str) -> str:
        dest = os.path.join(self.run_dir(run_id), path)
        make_dirs(os.path.dirname(dest), 0o700)
        n = 0
        candidate = dest
        while os.path.lexists(candidate):  # the same path twice in one run: keep both
            n += 1
            candidate = f"{dest}.{n}"
        return candidate

    def _link_or_copy(self, sroot: SafeRoot, path: str, dest: str, cost: int) -> None:
        fd, name = sroot.parent(path)
        try:
            os.link(name, dest, src_dir_fd=fd, follow_symlinks=False)
            return
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EACCES, errno.ENOTSUP):
                raise
        fs = os.statvfs(self.dir)
        free = fs.f_bavail * fs.f_frsize
        if free - cost < self.min_free:
            raise QuarantineFull(f"{sroot.full(path)} was left in place: copying it ({cost} bytes allocated) would "
                                 f"leave less than {self.min_free} bytes free in {self.dir}", path=path)
        src = sroot.open_file(path)
        try:
            out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                copy_data(src, out, _COPY_CHUNK)
                os.fsync(out)
            finally:
                os.close(out)
        finally:
            os.close(src)

    def _append(self, run_id: str, item: Item) -> None:
        line = json.dumps(item.as_dict(), sort_keys=True, ensure_ascii=True) + "\n"  # ascii: odd names survive
        fd = os.open(os.path.join(self.dir, f"{run_id}.jsonl"), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
                     0o600)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- reading ----------------------------------------------------------------------------
    def runs(self) -> list[str]:
        if not os.path.isdir(self.dir):
            return []
        return sorted(n[:-6] for n in os.listdir(self.dir) if n.endswith(".jsonl"))

    def items(self, run_id: str) -> list[Item]:
        path = os.path.join(self.dir, f"{run_id}.jsonl")
        try:
            with open(path, encoding="ascii") as fp:
                lines = fp.read().splitlines()
        except FileNotFoundError:
            raise RecoverError(f"no quarantine run {run_id!r} in {self.dir}") from None
        out = []
        for line in lines:
            try:
                d = json.loads(line)
                out.append(Item(**d))
            except (ValueError, TypeError):
                continue  # a line cut by a crash: its file, if any, is still in the run directory
        return out

    def listing(self) -> list[RunInfo]:
        out = []
        for run_id in self.runs():
            items = self.items(run_id)
            out.append(RunInfo(run_id, len(items), sum(i.size for i in items)))
        return out

    def total_bytes(self) -> int:
        return _du(self.dir)

    # -- retention --------------------------------------------------------------------------
    def prune(self, max_age_days: float, max_bytes: int, keep: Iterable[str] = (), now: float | None = None,
              floor: int = 0) -> Pruned:
        """Delete whole runs: older than max_age_days, then oldest first while over max_bytes.

        The newest `floor` runs (besides `keep`) are never deleted. Ages need a sane clock: runs
        dated in the future of `now` are kept (and reported), and when even the newest run is
        older than max_age_days -- what one boot with the clock far ahead looks like -- ages are
        measured from the newest run instead of from `now` (and reported), so one jump never
        deletes everything."""
        now = time.time() if now is None else now
        protected = set(keep)
        runs = [r for r in self.runs() if r not in protected]  # oldest first (ids start with their UTC time)
        protected.update(runs[len(runs) - floor:] if floor > 0 else [])
        when = {r: self._time(r) for r in runs}
        future = [r for r in runs if when[r] > now + CLOCK_SLACK]
        past = [when[r] for r in runs if r not in future]
        notes = []
        if future:
            ahead = max(when[r] for r in future) - now
            notes.append(f"the clock may be wrong: {len(future)} quarantine run(s) are dated up to "
                         f"{ahead / 86400:.0f} days after it; they are kept")
        ref = now
        if past and now - max(past) > max_age_days * 86400:
            ref = max(past)
            notes.append(f"the clock may be wrong: the newest quarantine run is {(now - ref) / 86400:.0f} days "
                         f"old; ages are measured from it, not from the clock")
        removed = []
        for run_id in list(runs):
            if run_id not in protected and run_id not in future and ref - when[run_id] > max_age_days * 86400:
                self._remove(run_id)
                removed.append(run_id)
                runs.remove(run_id)
        total = self.total_bytes()
        for run_id in runs:  # oldest first
            if total <= max_bytes:
                break
            if run_id in protected:
                continue
            total -= _du(self.run_dir(run_id)) + _size(os.path.join(self.dir, f"{run_id}.jsonl"))
            self._remove(run_id)
            removed.append(run_id)
        return Pruned(removed, tuple(notes))

    def _time(self, run_id: str) -> float:
        """When a run was made: the UTC time its id starts with (else its file's mtime)."""
        try:
            return float(calendar.timegm(time.strptime(run_id[:15], "%Y%m%dT%H%M%S")))
        except ValueError:
            try:
                return os.stat(os.path.join(self.dir, f"{run_id}.jsonl")).st_mtime
            except FileNotFoundError:
                return 0.0

    def _remove(self, run_id: str) -> None:
        remove_tree(self.run_dir(run_id))
        try:
            os.unlink(os.path.join(self.dir, f"{run_id}.jsonl"))
        except FileNotFoundError:
            pass

    # -- restoring (see recover.py) ---------------------------------------------------------
    def select(self, run_id: str, paths: Iterable[str]) -> list[Item]:
        items = self.items(run_id)
        wanted = [p.strip("/") for p in paths]
        if not wanted:
            return items
        chosen = [i for i in items if any(i.path == w or i.path.startswith(w + "/") for w in wanted)]
        unknown = [w for w in wanted if not any(i.path == w or i.path.startswith(w + "/") for i in items)]
        if unknown:
            raise RecoverError(f"quarantine run {run_id} holds no {unknown[0]!r}")
        return chosen

    def stored_path(self, item: Item) -> str:
        return os.path.join(self.run_dir(item.run_id), item.stored)

    def open_stored(self, item: Item) -> int:
        """The kept copy of a file item, opened without following a symlink."""
        fd = os.open(self.stored_path(item),
                     os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        if not st.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise RecoverError(f"the kept copy of {item.path} in run {item.run_id} is not a regular file")
        return fd


def _unlink_quiet(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _size(path: str) -> int:
    try:
        return allocated(os.lstat(path))
    except FileNotFoundError:
        return 0


def _du(top: str) -> int:
    return sum(allocated(s) for s in tree_files(top))


def new_run_id() -> str:
    """UTC time to the microsecond, then randomness: ids sort by time (reports, quarantine runs)."""
    import secrets

    now = time.time()
    return (time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{int(now % 1 * 1e6):06d}Z-"
            + secrets.token_hex(3))


__all__ = ["QUARANTINE_DIR", "Item", "Pruned", "Quarantine", "RunInfo", "allocated", "new_run_id"]
