"""A case-insensitive, case-preserving filesystem for the tests: a FUSE passthrough (fusepy) over a
backing folder in which every name is looked up ignoring letter case, as on FAT/exFAT/NTFS, an SMB
share or a casefold ext4 directory. This kernel has no casefold tmpfs/ext4 and no vfat, so the
hardening suite mounts this to put a regend client root on a real case-insensitive filesystem.

    python tests/casefoldfs.py BACKING MOUNTPOINT     (foreground; unmount to stop)
"""

from __future__ import annotations

import errno
import os
import sys
import threading

from fuse import FUSE, FuseOSError, Operations  # fusepy (test extra; needs libfuse2)


class CaseFold(Operations):
    def __init__(self, backing: str) -> None:
        self.backing = os.path.realpath(backing)
        self._names = threading.RLock()  # name resolution and the change that follows are one step

    # -- names ----------------------------------------------------------------------------------
    def _real(self, path: str, *, last_may_be_new: bool = False) -> str:
        """The backing path of `path`, each component matched ignoring case."""
        cur = self.backing
        parts = [p for p in path.split("/") if p]
        for i, part in enumerate(parts):
            cand = os.path.join(cur, part)
            if not os.path.lexists(cand):
                try:
                    names = os.listdir(cur)
                except NotADirectoryError:
                    raise FuseOSError(errno.ENOTDIR) from None
                except FileNotFoundError:
                    raise FuseOSError(errno.ENOENT) from None
                match = next((n for n in names if n.casefold() == part.casefold()), None)
                if match is not None:
                    cand = os.path.join(cur, match)
                elif not (last_may_be_new and i == len(parts) - 1):
                    raise FuseOSError(errno.ENOENT)
            cur = cand
        return cur

    # -- metadata -------------------------------------------------------------------------------
    def getattr(self, path: str, fh: int | None = None) -> dict[str, int]:
        s = os.lstat(self._real(path))
        return {"st_mode": s.st_mode, "st_ino": s.st_ino, "st_nlink": s.st_nlink, "st_uid": s.st_uid,
                "st_gid": s.st_gid, "st_size": s.st_size, "st_atime": s.st_atime_ns / 1e9,
                "st_mtime": s.st_mtime_ns / 1e9, "st_ctime": s.st_ctime_ns / 1e9}

    def readdir(self, path: str, fh: int) -> list[str]:
        return [".", "..", *os.listdir(self._real(path))]

    def readlink(self, path: str) -> str:
        return os.readlink(self._real(path))

    def chmod(self, path: str, mode: int) -> None:
        real = self._real(path)
        if not os.path.islink(real):  # (a symlink has no mode of its own on Linux)
            os.chmod(real, mode)

    def chown(self, path: str, uid: int, gid: int) -> None:
        os.lchown(self._real(path), uid, gid)

    def utimens(self, path: str, times: tuple[float, float] | None = None) -> None:
        real = self._real(path)
        if times is None:
            os.utime(real, follow_symlinks=False)
        else:
            os.utime(real, ns=(int(times[0] * 1e9), int(times[1] * 1e9)), follow_symlinks=False)

    def statfs(self, path: str) -> dict[str, int]:
        v = os.statvfs(self.backing)
        return {k: getattr(v, k) for k in ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree",
                                           "f_files", "f_flag", "f_frsize", "f_namemax")}

    # -- changes --------------------------------------------------------------------------------
    def mkdir(self, path: str, mode: int) -> None:
        with self._names:
            real = self._real(path, last_may_be_new=True)
            os.mkdir(real, mode)

    def rmdir(self, path: str) -> None:
        with self._names:
            os.rmdir(self._real(path))

    def unlink(self, path: str) -> None:
        with self._names:
            os.unlink(self._real(path))

    def symlink(self, target: str, source: str) -> None:  # fusepy: symlink(link path, its target)
        with self._names:
            os.symlink(source, self._real(target, last_may_be_new=True))

    def rename(self, old: str, new: str) -> None:
        with self._names:
            os.rename(self._real(old), self._real(new, last_may_be_new=True))

    def link(self, target: str, source: str) -> None:
        with self._names:
            os.link(self._real(source), self._real(target, last_may_be_new=True))

    def truncate(self, path: str, length: int, fh: int | None = None) -> None:
        if fh is not None:
            os.ftruncate(fh, length)
        else:
            os.truncate(self._real(path), length)

    # -- contents -------------------------------------------------------------------------------
    def create(self, path: str, mode: int, fi: object = None) -> int:
        with self._names:
            real = self._real(path, last_may_be_new=True)
            return os.open(real, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)

    def open(self, path: str, flags: int) -> int:
        return os.open(self._real(path), flags & ~(os.O_CREAT | os.O_EXCL))

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        return os.pread(fh, size, offset)

    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        return os.pwrite(fh, data, offset)

    def flush(self, path: str, fh: int) -> None:
        return None

    def release(self, path: str, fh: int) -> None:
        os.close(fh)

    def fsync(self, path: str, datasync: int, fh: int) -> None:
        os.fsync(fh)

    def opendir(self, path: str) -> int:
        self._real(path)
        return 0

    def releasedir(self, path: str, fh: int) -> None:
        return None

    def access(self, path: str, amode: int) -> None:
        if not os.access(self._real(path), amode, follow_symlinks=False):
            raise FuseOSError(errno.EACCES)


def main() -> None:
    backing, mountpoint = sys.argv[1], sys.argv[2]
    FUSE(CaseFold(backing), mountpoint, foreground=True, use_ino=True, nothreads=False,
         allow_other=False, default_permissions=True)


if __name__ == "__main__":
    main()
