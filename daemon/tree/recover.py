"""`regend recover`: put quarantined items back without handing anyone root (local I/O).

Rules (issue 13; the README's "What a run guarantees" states them):
  * a file gets its recorded owner and group first, then its recorded mode (chown clears set-id
    bits, so the order matters); where the owner cannot be restored (not root, or a file system
    that refuses it) the set-user-id and set-group-id bits are cleared and the item says so: a
    user's planted setuid program never comes back root-owned;
  * every directory on the way is opened without following a symlink (SafeRoot: openat with
    O_NOFOLLOW), and every file is created exclusively (O_EXCL | O_NOFOLLOW), so a symlink a
    user planted in DIR is refused, never written through;
  * `--to DIR` must lie outside the managed tree (a preserved path of it is fine), be reached
    without a symlink, and be owned by root or by the user running recover, as must every
    directory below it that is walked through.
"""

from __future__ import annotations

import os
import stat as st
from collections.abc import Iterable
from dataclasses import dataclass

from regen.daemon.errors import RecoverError, UnsafePath
from regen.daemon.tree.fsops import SafeRoot, copy_data, make_dirs
from regen.daemon.tree.quarantine import Item, Quarantine
from regen.store import matches

SETID = st.S_ISUID | st.S_ISGID


@dataclass(frozen=True, slots=True)
class Restored:
    path: str                  # where the item was written
    note: str | None = None    # e.g. set-id bits cleared because the owner could not be restored


def check_destination(dest: str, root: str, preserve: Iterable[str]) -> str:
    """The real path of `--to DIR`; RecoverError when it lies in the managed tree (outside the
    preserved paths) or holds the tree."""
    given = os.path.normpath(os.path.abspath(dest))
    real = os.path.realpath(given)
    if real != given:
        raise UnsafePath(f"{dest} goes through a symlink (it leads to {real}); not followed", path=dest,
                         hint="give the real path of a directory owned by root")
    real_root = os.path.realpath(root)
    rel = os.path.relpath(real, real_root)
    inside = rel == "." or not (rel == ".." or rel.startswith("../"))
    if inside and (rel == "." or not matches(rel, tuple(preserve))):
        raise RecoverError(f"{dest} is inside the managed tree {root}; not recovered there",
                           hint="choose a directory outside root (or under a preserved path), or use --in-place")
    if not inside and os.path.relpath(real_root, real).split("/")[0] != "..":
        raise RecoverError(f"{dest} holds the managed tree {root}; not recovered there",
                           hint="choose a directory outside root")
    return real


def _owner_ok(s: os.stat_result) -> bool:
    return s.st_uid in (0, os.geteuid())


def restore_to(q: Quarantine, items: list[Item], dest: str, *, root: str, preserve: Iterable[str]) -> list[Restored]:
    """Copy items to dest/<path>; refuses to overwrite anything or to go through a symlink."""
    real = check_destination(dest, root, preserve)
    make_dirs(real, 0o700)
    with SafeRoot(real, follow_root=False) as sroot:
        s = os.fstat(sroot.fd)
        if not _owner_ok(s):
            raise RecoverError(f"{dest} is owned by uid {s.st_uid}, not by root or by you; not recovered there",
                               hint="choose a directory owned by root (or by you)")
        done = []
        for item in items:
            _ensure_dirs(sroot, item.path.rpartition("/")[0], check_owner=True)
            if sroot.lstat(item.path) is not None:
                raise RecoverError(f"{sroot.full(item.path)} already exists; not overwritten",
                                   hint="choose an empty --to directory")
            name = item.path.rpartition("/")[2]
            note = _write(q, item, sroot, name)
            done.append(Restored(sroot.full(item.path), note))
        return done


def restore_in_place(q: Quarantine, items: list[Item], sroot: SafeRoot, run_id: str) -> list[Restored]:
    """Put items back at their paths below root (over whatever is there, which is quarantined
    under `run_id` first). Missing parent directories are created (0755); a directory
    standing at an item's path is refused."""
    done = []
    for n, item in enumerate(items):
        _ensure_dirs(sroot, item.path.rpartition("/")[0], check_owner=False)
        s = sroot.lstat(item.path)
        if s is not None and st.S_ISDIR(s.st_mode):
            raise RecoverError(f"{sroot.full(item.path)} is a directory now; not replaced",
                               hint="use --to DIR and move the file yourself")
        if s is not None:
            q.save(sroot, run_id, item.path, "replaced by regend recover")
        tmp = f".regen-tmp-recover-{os.getpid()}-{n}"
        note = _write(q, item, sroot, tmp)
        sroot.replace(item.path, tmp)
        done.append(Restored(sroot.full(item.path), note))
    return done


def _write(q: Quarantine, item: Item, sroot: SafeRoot, name: str) -> str | None:
    """Create `name` in item's directory (exclusively): content, then owner, then mode."""
    if item.kind == "symlink":
        sroot.symlink(item.path, name, item.target or os.readlink(q.stored_path(item)))
        fd, _ = sroot.parent(item.path)
        try:
            os.chown(name, item.uid, item.gid, dir_fd=fd, follow_symlinks=False)
        except OSError:
            pass  # a symlink's owner grants nothing
        return None
    out = sroot.create_temp(item.path, name)
    try:
        src = q.open_stored(item)
        try:
            copy_data(src, out)
        finally:
            os.close(src)
        note = None
        mode = item.mode
        try:
            os.fchown(out, item.uid, item.gid)
        except OSError as exc:
            if mode & SETID:
                mode &= ~SETID
                note = (f"set-id bits cleared: owner {item.uid}:{item.gid} could not be restored "
                        f"({exc.strerror or exc})")
        os.fchmod(out, mode)
        os.utime(out, ns=(item.mtime_ns, item.mtime_ns))
        os.fsync(out)
    except BaseException:
        os.close(out)
        sroot.unlink_quiet(item.path, name)
        raise
    os.close(out)
    return note


def _ensure_dirs(sroot: SafeRoot, reldir: str, *, check_owner: bool) -> None:
    parts = reldir.split("/") if reldir else []
    for i in range(1, len(parts) + 1):
        d = "/".join(parts[:i])
        s = sroot.lstat(d)
        if s is None:
            sroot.mkdir(d, 0o755)
        elif st.S_ISLNK(s.st_mode) or not st.S_ISDIR(s.st_mode):
            raise UnsafePath(f"{sroot.full(d)} is not a directory (a symlink or a file stands there); "
                             f"refusing to go through it", path=d)
        elif check_owner and not _owner_ok(s):
            raise RecoverError(f"{sroot.full(d)} is owned by uid {s.st_uid}, not by root or by you; "
                               f"not recovered through it", hint="choose an empty --to directory owned by root")


__all__ = ["Restored", "check_destination", "restore_in_place", "restore_to"]
