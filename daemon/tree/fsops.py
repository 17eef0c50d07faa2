"""Confined file operations below a root: never through a symlink, never outside (local I/O).

Every operation resolves the parent directory of its path component by component from an
open descriptor of root, with O_DIRECTORY | O_NOFOLLOW (openat-style), so a symlink planted
anywhere in the tree (root/app/lib -> /etc) makes the operation fail with UnsafePath instead
of redirecting it, even if it is planted between two operations. The final component is
always acted on with the *at() calls on that descriptor and never followed either.
"""

from __future__ import annotations

import errno
import os
import stat as st
from collections import OrderedDict

from regen.daemon.errors import UnsafePath
from regen.store import syncfs

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_OPEN = 64


class SafeRoot:
    """Descriptors of directories below `root`, opened safely and cached (LRU, closed on `close`)."""

    def __init__(self, root: str, *, follow_root: bool = True) -> None:
        """`follow_root=False`: root itself is reached from / without following any symlink either
        (a destination a user may have prepared, such as `regend recover --to DIR`)."""
        self.root = root
        # root itself may be a link (a managed root configured by the administrator), unless refused
        self.fd = (os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC) if follow_root
                   else open_dir_nofollow(root))
        self._dirs: OrderedDict[str, int] = OrderedDict()
        # one descriptor per filesystem reached below root (mounts included): what sync() flushes
        self._devices: dict[int, int] = {os.fstat(self.fd).st_dev: os.dup(self.fd)}

    def close(self) -> None:
        self.forget()
        os.close(self.fd)
        for fd in self._devices.values():
            os.close(fd)
        self._devices.clear()

    def sync_also(self, path: str) -> None:
        """Also flush the filesystem holding directory `path` in sync() (if it exists)."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return
        dev = os.fstat(fd).st_dev
        if dev in self._devices:
            os.close(fd)
        else:
            self._devices[dev] = fd

    def sync(self) -> None:
        """Flush every filesystem this root's operations reached (syncfs(2) each; os.sync() if
        syncfs is unavailable): the batch barrier before renames, far cheaper than a system sync."""
        for fd in self._devices.values():
            if not syncfs(fd):
                os.sync()
                return

    def __enter__(self) -> SafeRoot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def forget(self, prefix: str | None = None) -> None:
        """Drop cached descriptors (all, or of `prefix` and below) after a directory was removed."""
        for d in list(self._dirs):
            if prefix is None or d == prefix or d.startswith(prefix + "/"):
                os.close(self._dirs.pop(d))

    def dir_fd(self, reldir: str) -> int:
        """Descriptor of directory `reldir` ("" = root), reached without following any symlink.
        Iterative (a tree 1,400 levels deep is valid): from the deepest cached ancestor down."""
        if not reldir:
            return self.fd
        fd = self._dirs.get(reldir)
        if fd is not None:
            self._dirs.move_to_end(reldir)
            return fd
        parts = reldir.split("/")
        i = len(parts) - 1
        while i > 0 and "/".join(parts[:i]) not in self._dirs:
            i -= 1
        pfd = self._dirs[("/".join(parts[:i]))] if i > 0 else self.fd
        # descriptors opened on the way: kept open until the next one is (the LRU may close them)
        pinned: list[int] = []
        for k in range(i, len(parts)):
            sub = "/".join(parts[:k + 1])
            try:
                fd = os.open(parts[k], _DIR_FLAGS, dir_fd=pfd)
            except OSError as exc:
                for f in pinned:
                    os.close(f)
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise UnsafePath(f"{os.path.join(self.root, sub)} is not a directory (a symlink or a file "
                                     f"stands there); refusing to go through it", path=sub) from None
                raise
            dev = os.fstat(fd).st_dev
            if dev not in self._devices:
                self._devices[dev] = os.dup(fd)
            for f in pinned:
                os.close(f)
            pinned = [os.dup(fd)]
            self._dirs[sub] = fd
            self._dirs.move_to_end(sub)
            if len(self._dirs) > _MAX_OPEN:
                _, old = self._dirs.popitem(last=False)
                os.close(old)
            pfd = pinned[0]
        for f in pinned:
            os.close(f)
        return self._dirs[reldir]

    def parent(self, path: str) -> tuple[int, str]:
        head, _, name = path.rpartition("/")
        return self.dir_fd(head), name

    def full(self, path: str) -> str:
        return os.path.join(self.root, path)

    # -- operations on the final component (never followed) ------------------------------------
    def lstat(self, path: str) -> os.stat_result | None:
        fd, name = self.parent(path)
        try:
            return os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def unlink(self, path: str) -> None:
        fd, name = self.parent(path)
        os.unlink(name, dir_fd=fd)

    def rmdir(self, path: str) -> None:
        self.forget(path)
        fd, name = self.parent(path)
        os.rmdir(name, dir_fd=fd)

    def mkdir(self, path: str, mode: int = 0o700) -> None:
        fd, name = self.parent(path)
        os.mkdir(name, mode, dir_fd=fd)

    def replace(self, path: str, tmp_name: str) -> None:
        """Rename `tmp_name` (in the same directory) over `path`'s name: atomic, never followed."""
        fd, name = self.parent(path)
        os.replace(tmp_name, name, src_dir_fd=fd, dst_dir_fd=fd)

    def symlink(self, path: str, tmp_name: str, target: str) -> None:
        fd, _ = self.parent(path)
        os.symlink(target, tmp_name, dir_fd=fd)

    def readlink(self, path: str) -> str:
        fd, name = self.parent(path)
        return os.readlink(name, dir_fd=fd)

    def open_file(self, path: str) -> int:
        """Open an existing regular file for reading (not a symlink, not a FIFO)."""
        fd, name = self.parent(path)
        f = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=fd)
        if not st.S_ISREG(os.fstat(f).st_mode):
            os.close(f)
            raise UnsafePath(f"{self.full(path)} is not a regular file", path=path)
        return f

    def create_temp(self, path: str, tmp_name: str) -> int:
        """Create `tmp_name` next to `path`, exclusively, mode 0600 until its own mode is set."""
        fd, _ = self.parent(path)
        return os.open(tmp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                       dir_fd=fd)

    def unlink_quiet(self, path: str, tmp_name: str) -> None:
        try:
            fd, _ = self.parent(path)
            os.unlink(tmp_name, dir_fd=fd)
        except (OSError, UnsafePath):
            pass

    def chmod(self, path: str, mode: int) -> None:
        """Set the mode of a file or directory, never of what a symlink points at."""
        fd, name = self.parent(path)
        try:
            f = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=fd)
        except PermissionError:  # (not root, mode 0o000): check the kind, then chmod by name
            if st.S_ISLNK(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
                raise UnsafePath(f"{self.full(path)} is a symlink; its mode is not set", path=path) from None
            os.chmod(name, mode, dir_fd=fd)
            return
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UnsafePath(f"{self.full(path)} is a symlink; its mode is not set", path=path) from None
            raise
        try:
            os.fchmod(f, mode)
        finally:
            os.close(f)


def open_dir_nofollow(path: str) -> int:
    """Descriptor of absolute directory `path`, each component opened with O_NOFOLLOW from /:
    a symlink anywhere on the way is refused (UnsafePath), never followed."""
    fd = os.open("/", _DIR_FLAGS)
    try:
        for name in [p for p in os.path.normpath(os.path.abspath(path)).split("/") if p]:
            try:
                nfd = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise UnsafePath(f"{path} goes through a symlink or a file ({name}); refusing to follow it",
                                     path=path) from None
                raise
            os.close(fd)
            fd = nfd
    except BaseException:
        os.close(fd)
        raise
    return fd


def make_dirs(path: str, mode: int = 0o700) -> None:
    """os.makedirs without recursion (os.makedirs recurses once per missing level)."""
    missing = []
    head = os.path.normpath(path)
    while head and head != "/" and not os.path.isdir(head):
        missing.append(head)
        head = os.path.dirname(head)
    for d in reversed(missing):
        try:
            os.mkdir(d, mode)
        except FileExistsError:
            if not os.path.isdir(d):
                raise


def tree_files(top: str) -> list[os.stat_result]:
    """lstat of every non-directory below `top`, without recursion and without following symlinks."""
    out: list[os.stat_result] = []
    stack = [top]
    while stack:
        d = stack.pop()
        try:
            entries = list(os.scandir(d))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for e in entries:
            try:
                s = e.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if st.S_ISDIR(s.st_mode):
                stack.append(e.path)
            else:
                out.append(s)
    return out


def remove_tree(top: str) -> None:
    """rm -rf `top` without recursion (shutil.rmtree recurses once per level) and without following
    symlinks; what cannot be removed is left (best effort, like rmtree(ignore_errors=True))."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        stack = [os.open(top, flags)]
    except OSError:
        return
    seen: set[tuple[int, int]] = set()
    try:
        while stack:
            fd = stack[-1]
            for name in os.listdir(fd):
                try:
                    s = os.stat(name, dir_fd=fd, follow_symlinks=False)
                    if st.S_ISDIR(s.st_mode):
                        try:
                            os.rmdir(name, dir_fd=fd)
                            continue
                        except OSError:
                            if (s.st_dev, s.st_ino) in seen:
                                continue  # emptied as far as it goes: left
                            seen.add((s.st_dev, s.st_ino))
                            stack.append(os.open(name, flags, dir_fd=fd))
                            break
                    os.unlink(name, dir_fd=fd)
                except OSError:
                    continue
            else:
                os.close(stack.pop())
                if not stack:
                    break
                # the parent is listed again: the directory just emptied is removed then
        try:
            os.rmdir(top)
        except OSError:
            pass
    finally:
        for fd in stack:
            os.close(fd)


def copy_data(src: int, dst: int, chunk: int = 1 << 20) -> int:
    """Copy an open regular file's bytes to `dst`, holes kept as holes (SEEK_DATA/SEEK_HOLE):
    a 20 GB sparse file costs its allocated blocks, not 20 GB. Returns the bytes of data copied."""
    size = os.fstat(src).st_size
    copied = 0
    pos = 0
    while pos < size:
        try:
            start = os.lseek(src, pos, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # only a hole up to the end
                break
            if exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP):
                raise
            start, end = pos, size  # no hole support: a plain copy
        else:
            end = os.lseek(src, start, os.SEEK_HOLE)
        while start < end:
            data = os.pread(src, min(chunk, end - start), start)
            if not data:
                break
            view = memoryview(data)
            while view:
                n = os.pwrite(dst, view, start)
                view = view[n:]
                start += n
                copied += n
        pos = end
    os.ftruncate(dst, size)  # a trailing hole; the file's length
    return copied


__all__ = ["SafeRoot", "copy_data", "make_dirs", "open_dir_nofollow", "remove_tree", "tree_files"]
