"""Nothing is lost: every file regend removes or overwrites that the store does not hold (local I/O).

Layout in state_dir:
    quarantine/<run id>/<path>        the file (hard link when on the same file system, else a copy)
    quarantine/<run id>.jsonl         one JSON line per item: path, kind, mode, uid, gid, size,
                                      mtime_ns, symlink target, why, when
The item is saved (and its line fsynced) before the original is removed or replaced, so a
kill at any moment leaves it either still in place or in quarantine. Run directories are
deleted by age and then oldest first while the total exceeds the configured size.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat as st
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .errors import RecoverError
from .fsops import SafeRoot

QUARANTINE_DIR = "quarantine"
_COPY_CHUNK = 1 << 20


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
class RunInfo:
    run_id: str
    items: int
    bytes: int


class Quarantine:
    def __init__(self, state_dir: str) -> None:
        self.dir = os.path.join(state_dir, QUARANTINE_DIR)

    def run_dir(self, run_id: str) -> str:
        return os.path.join(self.dir, run_id)

    # -- saving -----------------------------------------------------------------------------
    def save(self, sroot: SafeRoot, run_id: str, path: str, why: str) -> Item | None:
        """Keep `path` (below sroot) in quarantine/<run_id>; None if it is gone or is a special file."""
        s = sroot.lstat(path)
        if s is None:
            return None
        kind = "file" if st.S_ISREG(s.st_mode) else "symlink" if st.S_ISLNK(s.st_mode) else "other"
        if kind == "other":
            return None
        dest = self._dest(run_id, path)
        target = None
        if kind == "symlink":
            target = sroot.readlink(path)
            os.symlink(target, dest)
        else:
            self._link_or_copy(sroot, path, dest)
        item = Item(run_id, path, kind, st.S_IMODE(s.st_mode), s.st_size if kind == "file" else 0, s.st_mtime_ns,
                    s.st_uid, s.st_gid, target, why, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    os.path.relpath(dest, self.run_dir(run_id)))
        self._append(run_id, item)
        return item

    def _dest(self, run_id: str, path: str) -> str:
        dest = os.path.join(self.run_dir(run_id), path)
        os.makedirs(os.path.dirname(dest), mode=0o700, exist_ok=True)
        n = 0
        candidate = dest
        while os.path.lexists(candidate):  # the same path twice in one run: keep both
            n += 1
            candidate = f"{dest}.{n}"
        return candidate

    def _link_or_copy(self, sroot: SafeRoot, path: str, dest: str) -> None:
        fd, name = sroot.parent(path)
        try:
            os.link(name, dest, src_dir_fd=fd, follow_symlinks=False)
            return
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EACCES, errno.ENOTSUP):
                raise
        src = sroot.open_file(path)
        try:
            out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                while chunk := os.read(src, _COPY_CHUNK):
                    os.write(out, chunk)
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
    def prune(self, max_age_days: float, max_bytes: int, keep: Iterable[str] = (), now: float | None = None
              ) -> list[str]:
        """Delete whole runs: older than max_age_days, then oldest first while over max_bytes."""
        now = time.time() if now is None else now
        protected = set(keep)
        removed = []
        runs = [r for r in self.runs() if r not in protected]
        for run_id in list(runs):
            if now - self._mtime(run_id) > max_age_days * 86400:
                self._remove(run_id)
                removed.append(run_id)
                runs.remove(run_id)
        total = self.total_bytes()
        for run_id in runs:  # oldest first (run ids start with their UTC time)
            if total <= max_bytes:
                break
            total -= _du(self.run_dir(run_id)) + _size(os.path.join(self.dir, f"{run_id}.jsonl"))
            self._remove(run_id)
            removed.append(run_id)
        return removed

    def _mtime(self, run_id: str) -> float:
        try:
            return os.stat(os.path.join(self.dir, f"{run_id}.jsonl")).st_mtime
        except FileNotFoundError:
            return 0.0

    def _remove(self, run_id: str) -> None:
        shutil.rmtree(self.run_dir(run_id), ignore_errors=True)
        try:
            os.unlink(os.path.join(self.dir, f"{run_id}.jsonl"))
        except FileNotFoundError:
            pass

    # -- restoring --------------------------------------------------------------------------
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

    def restore_to(self, items: list[Item], dest_dir: str) -> list[str]:
        """Copy items to dest_dir/<path> (outside the managed tree); refuses to overwrite anything."""
        done = []
        for item in items:
            out = os.path.join(dest_dir, item.path)
            if os.path.lexists(out):
                raise RecoverError(f"{out} already exists; not overwritten", hint="choose an empty --to directory")
            os.makedirs(os.path.dirname(out), exist_ok=True)
            src = self.stored_path(item)
            if item.kind == "symlink":
                os.symlink(item.target or os.readlink(src), out)
            else:
                shutil.copyfile(src, out, follow_symlinks=False)
                os.chmod(out, item.mode)
                os.utime(out, ns=(item.mtime_ns, item.mtime_ns))
            done.append(out)
        return done


    def restore_in_place(self, items: list[Item], sroot: SafeRoot, run_id: str) -> list[str]:
        """Put items back at their paths below root (over whatever is there, which is quarantined
        under `run_id` first). Missing parent directories are created (0755); a directory
        standing at an item's path is refused."""
        done = []
        for n, item in enumerate(items):
            parent = item.path.rpartition("/")[0]
            _ensure_dirs(sroot, parent)
            s = sroot.lstat(item.path)
            if s is not None and st.S_ISDIR(s.st_mode):
                raise RecoverError(f"{sroot.full(item.path)} is a directory now; not replaced",
                                   hint="use --to DIR and move the file yourself")
            if s is not None:
                self.save(sroot, run_id, item.path, "replaced by regend recover")
            tmp = f".regen-tmp-recover-{os.getpid()}-{n}"
            src = self.stored_path(item)
            if item.kind == "symlink":
                sroot.symlink(item.path, tmp, item.target or os.readlink(src))
            else:
                out = sroot.create_temp(item.path, tmp)
                try:
                    with open(src, "rb") as fp:
                        while chunk := fp.read(_COPY_CHUNK):
                            os.write(out, chunk)
                    os.fchmod(out, item.mode)
                    os.fsync(out)
                except BaseException:
                    os.close(out)
                    sroot.unlink_quiet(item.path, tmp)
                    raise
                os.close(out)
            sroot.replace(item.path, tmp)
            done.append(sroot.full(item.path))
        return done


def _ensure_dirs(sroot: SafeRoot, reldir: str) -> None:
    parts = reldir.split("/") if reldir else []
    for i in range(1, len(parts) + 1):
        d = "/".join(parts[:i])
        s = sroot.lstat(d)
        if s is None:
            sroot.mkdir(d, 0o755)
        # a non-directory here makes SafeRoot refuse (UnsafePath) when it is walked through


def _size(path: str) -> int:
    try:
        return os.lstat(path).st_size
    except FileNotFoundError:
        return 0


def _du(top: str) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(top):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except FileNotFoundError:
                pass
    return total


def new_run_id() -> str:
    """UTC time to the microsecond, then randomness: ids sort by time (reports, quarantine runs)."""
    import secrets

    now = time.time()
    return (time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{int(now % 1 * 1e6):06d}Z-"
            + secrets.token_hex(3))


__all__ = ["QUARANTINE_DIR", "Item", "Quarantine", "RunInfo", "new_run_id"]
