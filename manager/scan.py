"""Reading the reference tree: walk, decide per file whether its cached digests hold, hash the rest.

`reusable` is the verdict (pure), by the stat rule regend's index follows too
(regen.store.stat_change): a file is not read again when its stat facts equal the cached row
AND its mtime is safely older than the scan that produced the row. The second condition is
git's racy-timestamp rule: a file written in the same clock tick as it was hashed can change
again without changing its mtime, so such a file is always re-read.

Each file that is read is read once, feeding BLAKE3 (its object id) and xxh3-128 (what
clients compare) together, and is checked not to have changed meanwhile (lstat before and
after, size read equal to size stated).
"""

from __future__ import annotations

import errno
import os
import stat as st
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

from regen.store import (
    RACY_WINDOW_NS,
    Entry,
    FileDigest,
    IdNames,
    hash_file,
    kind_of,
    matches,
    merge_join,
    node_kind,
    object_id,
    printable,
    read_xattrs,
    sort_key,
    stat_change,
    walk,
    xxh,
)

from .errors import FileChanged, SnapshotFailed, SourceInvalid
from .progress import Progress
from .statcache import CachedFile, StatCache

WHOLE_READ_BYTES = 4 << 20  # with a content sink, files up to this size are read into one buffer
_SPECIAL = ((st.S_ISSOCK, "socket"), (st.S_ISFIFO, "FIFO"), (st.S_ISCHR, "character device"),
            (st.S_ISBLK, "block device"))
# what the kernel makes up on a live system: the directories are kept, never their content
LIVE_ONLY = ("proc", "sys", "dev", "run")


def shown(path: str) -> str:
    """A path or report string as text a person can read in one line: control characters and
    undecodable bytes escaped as `ls -b` does (the one rule: regen.store.printable)."""
    return printable(path)


def reusable(s: os.stat_result, cached: CachedFile | None, safe_before_ns: int) -> bool:
    """True if the cached digests still describe the file (pure)."""
    # (safe_before_ns is the previous scan's start less the racy window: the rule with no further window)
    return cached is not None and not stat_change(s.st_size, s.st_mtime_ns, s.st_ctime_ns, s.st_ino, s.st_mode, cached,
                                                  safe_before_ns, 0)


def special_kind(mode: int) -> str:
    return next((name for test, name in _SPECIAL if test(mode)), "special file")


@dataclass(slots=True)
class ScanCounts:
    files_hashed: int = 0
    files_reused: int = 0
    bytes_hashed: int = 0
    skipped: list[str] = field(default_factory=list)


class Scanner:
    """Yields the manifest entries of `root` in tree order, recording what it learned in `cache`.

    With `hold`, each file read whole (up to WHOLE_READ_BYTES) is handed over as (oid, bytes)
    before its entry is yielded, and `hold(None)` follows once the consumer asked for the next
    entry: an uploader can store exactly the bytes that were hashed, without reading them again.
    """

    def __init__(self, root: str, cache: StatCache, *, exclude: tuple[str, ...] = (), skip: tuple[str, ...] = (),
                 progress: Progress | None = None, racy_window_ns: int = RACY_WINDOW_NS,
                 hold: Callable[[tuple[str, bytes] | None], None] | None = None,
                 one_file_system: bool = True) -> None:
        self.hold = hold
        self.one_file_system = one_file_system
        self.names = IdNames.of_tree(root)
        self._links: dict[tuple[int, int], str] = {}   # (dev, inode) -> first path, of files with st_nlink > 1
        self._dev = os.stat(root).st_dev
        self._live = os.path.realpath(root) == "/"
        self._contents_only: set[str] = set()          # directories kept without what is below them
        self.root = root
        self.cache = cache
        self.exclude = exclude
        self.skip = skip  # exact relative paths (regen's own store and cache when they sit inside root)
        self.progress = progress
        self.safe_before_ns = cache.previous_started_ns - racy_window_ns
        self.counts = ScanCounts()
        self._buf = bytearray(1 << 20)

    def _prune(self) -> Callable[[str], bool] | None:
        if not self.exclude and not self.skip and not self.one_file_system and not self._live:
            return None
        skip = self.skip
        below = self._contents_only
        root = self.root
        # excluded: everything but directories, which keep existing on clients with owner and mode
        return lambda rel: (rel in skip or any(rel.startswith(p + "/") for p in skip)
                            or (bool(below) and rel.rpartition("/")[0] in below)
                            or (matches(rel, self.exclude) and not _is_dir(os.path.join(root, rel))))

    def _walk_error(self, rel: str, exc: OSError) -> None:
        where = os.path.join(self.root, rel) if rel else self.root
        if exc.errno == errno.ENAMETOOLONG:  # a tree nested deeper than PATH_MAX: no client could hold it either
            raise SourceInvalid(f"the path {shown(where)[:120]}... is too long ({len(os.fsencode(where))} bytes)",
                                path=rel, hint="shorten it or leave it out with an 'exclude' glob in the policy "
                                               "file; no generation was written")
        raise SnapshotFailed(f"cannot read directory {shown(where)}: {exc.strerror or exc}",
                             hint="fix its permissions or exclude it in the policy file; no generation was written")

    def entries(self) -> Iterator[Entry]:
        walked = walk(self.root, prune=self._prune(), onerror=self._walk_error)
        for here, known in merge_join(walked, self.cache.rows(), _walk_key, _row_key):
            if here is None:
                continue  # a file of the previous scan that is gone
            rel, s = here
            try:
                rel.encode("utf-8")
            except UnicodeEncodeError:
                raise SourceInvalid(f"{shown(os.path.join(self.root, rel))} has a name that is not valid UTF-8",
                                    path=rel) from None
            kind = kind_of(s.st_mode)
            mode = st.S_IMODE(s.st_mode)
            if kind == "dir":
                self._keep_out(rel, s)
                yield self._meta(Entry(rel, "dir", mode), s)
            elif kind == "symlink":
                yield self._meta(Entry(rel, "symlink", mode, target=self._readlink(rel)), s)
            elif kind == "file":
                yield self._meta(self._file(rel, s, mode, known), s)
                if self.hold is not None:
                    self.hold(None)
            elif (node := node_kind(s.st_mode)) is not None:
                rdev = (os.major(s.st_rdev), os.minor(s.st_rdev)) if node != "fifo" else None
                yield self._meta(Entry(rel, node, mode, rdev=rdev), s)
            else:
                self.counts.skipped.append(f"{special_kind(s.st_mode)} {shown(rel)}")

    def _keep_out(self, rel: str, s: os.stat_result) -> None:
        """A mount point (with one_file_system) or, on a live root, proc/sys/dev/run: the directory is
        described, what is below it is not (as rsync -x / tar --one-file-system)."""
        if self._live and rel in LIVE_ONLY:
            self._contents_only.add(rel)
        elif self.one_file_system and s.st_dev != self._dev:
            self._contents_only.add(rel)
            self.counts.skipped.append(f"the content of mount point {shown(rel)} (another file system; "
                                       f"--cross-file-systems takes it in)")

    def _meta(self, e: Entry, s: os.stat_result) -> Entry:
        """`e` with its format-2 metadata: owner ids and names, mtime, xattrs/ACLs, hard-link group, holes."""
        full = os.path.join(self.root, e.path)
        try:
            xattrs = read_xattrs(full)
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG:
                self._walk_error(e.path, exc)
            raise SnapshotFailed(f"cannot read the extended attributes of {shown(full)}: {exc.strerror or exc}",
                                 path=e.path, hint="run the snapshot as root, or exclude it in the policy file; "
                                                   "no generation was written") from None
        link = None
        if e.kind == "file" and s.st_nlink > 1:
            link = self._links.setdefault((s.st_dev, s.st_ino), e.path)
        # holes: at least one 4 KiB block fewer allocated than the size needs (not small inline files)
        sparse = e.kind == "file" and s.st_blocks * 512 + 4096 <= s.st_size
        return replace(e, uid=s.st_uid, gid=s.st_gid, user=self.names.user(s.st_uid),
                       group=self.names.group(s.st_gid), mtime=s.st_mtime_ns, xattrs=xattrs, link=link,
                       sparse=sparse)

    def _readlink(self, rel: str) -> str:
        full = os.path.join(self.root, rel)
        try:
            target = os.readlink(full)
        except FileNotFoundError:
            raise FileChanged(f"symlink {shown(full)} vanished while it was read", path=rel) from None
        except OSError as exc:
            raise SnapshotFailed(f"cannot read symlink {shown(full)}: {exc.strerror}", path=rel) from None
        try:
            target.encode("utf-8")
        except UnicodeEncodeError:
            raise SourceInvalid(f"symlink {shown(full)} has a target that is not valid UTF-8: {shown(target)}",
                                path=rel) from None
        return target

    def _file(self, rel: str, s: os.stat_result, mode: int, known: tuple[bytes, CachedFile] | None) -> Entry:
        """The file's entry: digests from the cache row `known` (the previous scan's, same key) when
        the stat rule trusts it, else read; recorded for the next scan either way."""
        cached = known[1] if known is not None else None
        if reusable(s, cached, self.safe_before_ns):
            assert cached is not None
            oid, xxh = cached.oid, cached.xxh
            self.counts.files_reused += 1
        else:
            oid, xxh = self._hash(rel, s)
        self.cache.record(sort_key(rel), rel, s, oid, xxh)
        if self.progress is not None:
            self.progress.advance(1, s.st_size)
        return Entry(rel, "file", mode, s.st_size, oid, xxh)

    def _hash(self, rel: str, before: os.stat_result) -> tuple[str, str]:
        full = os.path.join(self.root, rel)
        data = None
        try:
            if self.hold is not None and before.st_size <= WHOLE_READ_BYTES:
                data = read_whole(full, before.st_size)
                digest = FileDigest(object_id(data), xxh(data), len(data))
            else:
                digest = hash_file(full, self._buf)
            after = os.lstat(full)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ELOOP):  # gone, or replaced by a symlink, since the walk
                raise FileChanged(f"{shown(full)} was removed or replaced while it was read", path=rel) from None
            raise SnapshotFailed(f"cannot read {shown(full)}: {exc.strerror or exc}", path=rel,
                                 hint="fix its permissions or exclude it in the policy file; "
                                      "no generation was written") from None
        if (digest.size != before.st_size or after.st_size != before.st_size or after.st_ino != before.st_ino
                or after.st_mtime_ns != before.st_mtime_ns or after.st_ctime_ns != before.st_ctime_ns):
            raise FileChanged(f"{shown(full)} changed while it was read", path=rel)
        self.counts.files_hashed += 1
        self.counts.bytes_hashed += digest.size
        if data is not None and self.hold is not None:
            self.hold((digest.oid, data))
        return digest.oid, digest.xxh


def _walk_key(here: tuple[str, os.stat_result]) -> bytes:
    return sort_key(here[0])


def _row_key(row: tuple[bytes, CachedFile]) -> bytes:
    return row[0]


def _is_dir(full: str) -> bool:
    try:
        return st.S_ISDIR(os.lstat(full).st_mode)
    except OSError:
        return False


def read_whole(path: str, size: int) -> bytes:
    """The content of `path` (not following a symlink), expected to be `size` bytes, in one buffer.

    At most size + 1 bytes are read: a file that grew shows in the caller's size check.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        first = os.read(fd, size + 1)
        if len(first) >= size or not first:
            return first
        parts, n = [first], len(first)
        while n <= size and (chunk := os.read(fd, size + 1 - n)):
            parts.append(chunk)
            n += len(chunk)
        return b"".join(parts)
    finally:
        os.close(fd)
