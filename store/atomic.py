"""Atomic replace and exclusive create, per scheme: no reader ever sees a partial file, and an
exclusive create never overwrites (restic's Properties.HasAtomicReplace, one answer per scheme).

    file    temp file + fsync + rename; exclusive create by link(2) (O_EXCL copy without hard links)
    memory  one open("wb") is atomic; exclusive create by open("xb")
    s3      one PUT is atomic; exclusive create by If-None-Match: *
    smb     temp file + replace (retried while another client holds the file open); exclusive
            create by rename without replace
    sftp    temp file + posix-rename; exclusive create by plain SFTP rename (never replaces)

The functions work on the fsspec filesystem the backend hands them, inside its retry loop.
"""

from __future__ import annotations

import errno
import os
import random
import shutil
import uuid
from collections.abc import Callable
from typing import IO, Any

from .errors import StoreAccessDenied
from .layout import TEMP_PREFIX
from .schemes import _unc
from .translate import _ntstatus_of, is_missing

_SMB_REPLACE_TRIES = 10  # about 6 s of waiting for readers of a replaced file


def write_atomic(fs: Any, scheme: str, full: str, fill: Callable[[IO[bytes]], object], *, atomic_put: bool,
                 url: str, rel: str | None, sleep: Callable[[float], None]) -> None:
    """Create or replace `full` with what `fill` writes: readers see the old or the new content.

    `url` and `rel` (the store-relative path) name the file in errors; `sleep` waits between
    SMB replace attempts.
    """
    if atomic_put:
        with fs.open(full, "wb") as fp:
            fill(fp)
        return
    tmp = write_temp(fs, scheme, full, fill)
    try:
        replace(fs, scheme, tmp, full, url=url, rel=rel, sleep=sleep)
    except BaseException:
        discard(fs, tmp)
        raise


def create_new(fs: Any, scheme: str, full: str, data: bytes) -> None:
    """Create `full` holding `data`, complete at once, only if it does not exist (FileExistsError otherwise)."""
    if scheme == "s3":
        bucket, key, _ = fs.split_path(full)
        fs.call_s3("put_object", Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")
    elif scheme == "memory":
        with fs.open(full, "xb") as fp:
            fp.write(data)
    else:
        tmp = write_temp(fs, scheme, full, lambda fp: fp.write(data))
        try:
            link_new(fs, scheme, tmp, full)
        except BaseException:
            discard(fs, tmp)
            raise


def write_temp(fs: Any, scheme: str, full: str, fill: Callable[[IO[bytes]], object]) -> str:
    """Write a new temp file next to `full` (creating the folders on first need); return its name."""
    parent = full.rsplit("/", 1)[0]
    tmp = f"{parent}/{TEMP_PREFIX}{uuid.uuid4().hex}"
    for attempt in (0, 1):
        try:
            with fs.open(tmp, "wb") as fp:
                fill(fp)
                if scheme == "file":
                    fp.flush()
                    os.fsync(fp.fileno())
            return tmp
        except BaseException as exc:
            if attempt or not is_missing(exc):
                discard(fs, tmp)
                raise
        fs.makedirs(parent, exist_ok=True)  # folders exist after the first write: one try saved
    raise AssertionError("unreachable")


def discard(fs: Any, tmp: str) -> None:
    try:
        fs.rm_file(tmp)
    except Exception:  # noqa: BLE001 - best effort cleanup of our own temp file
        pass


def replace(fs: Any, scheme: str, src: str, dst: str, *, url: str, rel: str | None,
            sleep: Callable[[float], None]) -> None:
    """Rename src over dst atomically (readers see old or new dst)."""
    if scheme == "file":
        os.replace(src, dst)
    elif scheme == "smb":
        import smbclient

        # SMB refuses to rename over a file another client has open (ACCESS_DENIED or
        # SHARING_VIOLATION, even when it shares delete access). Only small files are ever
        # replaced (refs, overlays, latest reports) and readers hold them briefly: try again.
        for attempt in range(_SMB_REPLACE_TRIES):
            try:
                smbclient.replace(_unc(fs, src), _unc(fs, dst), port=fs._port)
                return
            except OSError as exc:
                if _ntstatus_of(exc) not in (0xC0000022, 0xC0000043):
                    raise
                if attempt + 1 == _SMB_REPLACE_TRIES:
                    raise StoreAccessDenied(
                        f"the server refused to replace {url}/{rel}: another client keeps it "
                        f"open, or this account may not replace it", url=url, path=rel or "",
                        hint="retry later; check the account's delete right on that folder") from exc
                sleep(min(1.0, 0.02 * 2**attempt) * (0.5 + random.random()))
    else:  # sftp: posix-rename@openssh.com replaces atomically
        fs.ftp.posix_rename(src, dst)


def link_new(fs: Any, scheme: str, src: str, dst: str) -> None:
    """Give complete file src the name dst only if dst does not exist (FileExistsError otherwise)."""
    if scheme == "file":
        try:
            os.link(src, dst)
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS):
                raise
            _exclusive_copy(src, dst)  # no hard links here: O_EXCL create (a reader may see it growing)
        os.unlink(src)
    elif scheme == "smb":
        import smbclient

        smbclient.rename(_unc(fs, src), _unc(fs, dst), port=fs._port)  # ReplaceIfExists=False
    else:  # sftp: plain SSH_FXP_RENAME refuses an existing target (OpenSSH: link + unlink)
        try:
            fs.ftp.rename(src, dst)
        except OSError as exc:
            if is_missing(exc) or exc.errno is not None:
                raise
            try:
                fs.ftp.stat(dst)
            except OSError:
                raise exc from None
            raise FileExistsError(errno.EEXIST, "already exists", dst) from None


def _exclusive_copy(src: str, dst: str) -> None:
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
        shutil.copyfileobj(inp, out)
        out.flush()
        os.fsync(out.fileno())


__all__ = ["create_new", "discard", "link_new", "replace", "write_atomic", "write_temp"]
