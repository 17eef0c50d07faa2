"""What the tree must be: the accepted generation plus the host overlay (pure merge + local copies).

The manifests of the installed generation (and overlay) are kept verified in
state_dir/manifests/<id>, so drift repair works with the store unreachable. A local copy is
hashed again each time it is opened: a damaged copy is dropped, never applied.
"""

from __future__ import annotations

import os
import tempfile
import unicodedata
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import blake3

from regen.daemon.errors import ContentError, PathCollision, PathTooLong
from regen.daemon.tree.plan import TEMP_PREFIX
from regen.store import (
    Entry,
    Generation,
    Overlay,
    Policy,
    PolicyInvalid,
    Procedure,
    RecordInvalid,
    SealedRef,
    Store,
    iter_entries,
    merge_join,
    patched_manifest,
    sort_key,
)

MANIFEST_DIR = "manifests"


@dataclass(frozen=True, slots=True)
class Target:
    """An accepted generation (and overlay): everything needed to rebuild the tree offline."""

    channel: str
    number: int
    manifest: str
    policy: Policy
    created: str = ""
    expires: str | None = None
    overlay_number: int | None = None      # None: this host never had an overlay
    overlay_manifest: str | None = None    # None with a number: the overlay was removed (tombstone)
    overlay_procedures: tuple[Procedure, ...] = ()  # the overlay's own; `policy` already runs them
    overlay_sealed: SealedRef | None = None  # the overlay is sealed to this host's key (sealed.py)

    @classmethod
    def of(cls, gen: Generation, overlay: Overlay | None, *, kept: Target | None = None) -> Target:
        """The host's target: `gen` plus `overlay` or, without one, the overlay `kept` had.
        An overlay's procedures join the policy only where the channel's policy allows them."""
        number, manifest, procs, sealed = (
            (overlay.number, overlay.manifest, overlay.procedures, overlay.sealed) if overlay else
            (kept.overlay_number, kept.overlay_manifest, kept.overlay_procedures, kept.overlay_sealed) if kept else
            (None, None, (), None))
        where = f"the overlay (version {number}) of this host"
        try:
            policy = gen.policy.with_overlay(procs, where)
        except PolicyInvalid as exc:
            raise RecordInvalid(exc.message, path=where) from None
        return cls(gen.channel, gen.number, gen.manifest, policy, gen.created, gen.expires, number, manifest, procs,
                   sealed)

    def manifests(self) -> list[str]:
        return [m for m in (self.manifest, self.overlay_manifest) if m]

    def local_files(self) -> set[str]:
        """What state_dir/manifests keeps for this target: its manifests and its overlay's seal table."""
        return set(self.manifests()) | ({self.overlay_sealed.table} if self.overlay_sealed else set())

    def same_tree(self, other: Target | None) -> bool:
        # (a re-sealed overlay is a new target: the boxes the installed one names may be collected)
        return (other is not None and self.manifests() == other.manifests() and self.policy == other.policy
                and self.overlay_sealed == other.overlay_sealed)

    def as_dict(self) -> dict[str, Any]:
        return {"channel": self.channel, "number": self.number, "manifest": self.manifest,
                "policy": self.policy.as_dict(), "created": self.created, "expires": self.expires,
                "overlay_number": self.overlay_number, "overlay_manifest": self.overlay_manifest,
                **({"overlay_procedure": [p.as_dict() for p in self.overlay_procedures]}
                   if self.overlay_procedures else {}),
                **({"overlay_sealed": self.overlay_sealed.to_record()} if self.overlay_sealed else {})}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Target:
        return cls(d["channel"], int(d["number"]), d["manifest"], Policy.from_dict(d.get("policy") or {}),
                   d.get("created", ""), d.get("expires"), d.get("overlay_number"), d.get("overlay_manifest"),
                   tuple(Procedure.from_dict(p, "installed overlay") for p in d.get("overlay_procedure", ())),
                   SealedRef.from_record(d["overlay_sealed"], "installed overlay") if "overlay_sealed" in d else None)


def merge_overlay(channel: Iterable[Entry], overlay: Iterable[Entry]) -> Iterator[Entry]:
    """The host's tree (FORMAT.md §8): an overlay entry replaces the channel's at the same path
    (a channel directory replaced by a non-directory takes its subtree with it); overlay-only
    paths are added; nothing of the channel is removed otherwise. Both inputs in tree order."""
    dropped: str | None = None
    for a, b in merge_join(channel, overlay, _entry_key, _entry_key):
        if a is not None and dropped is not None and a.path.startswith(dropped + "/"):
            a = None  # below a channel directory the overlay replaced by a non-directory
        if b is None:
            if a is not None:
                yield a
            continue
        if a is not None and a.kind == "dir" and b.kind != "dir":
            dropped = a.path
        yield b


def _entry_key(e: Entry) -> bytes:
    return sort_key(e.path)


PATH_MAX = os.pathconf("/", "PC_PATH_MAX") if hasattr(os, "pathconf") else 4096


def fitting(entries: Iterator[Entry], max_rel: int) -> Iterator[Entry]:
    for e in entries:
        if len(e.path.encode("utf-8")) > max_rel:
            raise PathTooLong(
                f"the generation's path {e.path[:60]!r}... is too long for this client "
                f"({len(e.path.encode('utf-8'))} bytes below a root that leaves {max_rel}); it was refused"
            )
        yield e


def folded(path: str) -> str:
    """The form under which a case-insensitive filesystem may see `path` as the same name: the
    broadest of those in use (vfat/exFAT/NTFS/SMB fold case, ext4 and tmpfs casefold and APFS also
    normalise Unicode), so anything one of them would merge is caught."""
    return unicodedata.normalize("NFKC", path).casefold()


def _distinct(entries: Iterator[Entry]) -> Iterator[Entry]:
    # 64-bit hashes of the folded paths, not the paths: ~50 MB for a million entries
    seen: set[int] = set()
    for e in entries:
        h = hash(folded(e.path))
        if h in seen:
            raise PathCollision(
                f"the generation's path {e.path[:200]!r} differs only in letter case or Unicode form from "
                f"another of its paths, and this client's root is case-insensitive; it was refused")
        seen.add(h)
        yield e


def case_insensitive(root: str) -> bool:
    """Whether the filesystem of directory `root` folds case: an entry of root with letters in its
    name is looked up under the name with its case swapped; in an empty root a probe file is
    created for that (its temp prefix makes a leftover -- a kill between create and unlink --
    something the next run's plan removes). If root cannot be probed, it is treated as
    case-insensitive: colliding paths are refused, nothing else changes."""
    try:
        dfd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return True
    try:
        with os.scandir(dfd) as it:
            for entry in it:
                other = entry.name.swapcase()
                if other != entry.name:
                    try:
                        # (st_ino of both, not the entry's d_ino: some filesystems' readdir lacks it)
                        return os.lstat(other, dir_fd=dfd).st_ino == os.lstat(entry.name, dir_fd=dfd).st_ino
                    except FileNotFoundError:
                        return False
    except OSError:
        os.close(dfd)
        return True
    name = f"{TEMP_PREFIX}case-{os.urandom(6).hex()}"
    try:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dfd)
        os.close(fd)
        try:
            os.lstat(name.upper(), dir_fd=dfd)
            return True
        except FileNotFoundError:
            return False
        finally:
            os.unlink(name, dir_fd=dfd)
    except OSError:
        return True
    finally:
        os.close(dfd)


class Manifests:
    """Verified local copies of manifests in state_dir/manifests."""

    def __init__(self, state_dir: str, root: str | None = None) -> None:
        self.dir = os.path.join(state_dir, MANIFEST_DIR)
        # a path is usable only if its absolute form fits PATH_MAX on this client: the scan,
        # hashing and quarantine work with full paths, so a deeper one could be written once
        # and then fail every later run. Such a generation is refused before anything changes.
        self.max_rel = PATH_MAX - 2 - len(os.fsencode(root)) if root is not None else None
        self.root = root
        # on a case-insensitive root (a FAT/exFAT/NTFS volume, an SMB mount, a casefold directory)
        # README and readme would be one file, rewritten back and forth on every run: a generation
        # with such a pair is refused there (probed once, when a tree is first planned)
        self._fold: bool | None = None

    def path(self, oid: str) -> str:
        return os.path.join(self.dir, oid)

    def has(self, oid: str) -> bool:
        return os.path.isfile(self.path(oid))

    def fetch(self, store: Store, oid: str, max_bytes: int) -> None:
        """Download and verify manifest `oid` (bounded by max_bytes) unless a copy is here."""
        if self.has(oid):
            return
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        # a client holding the base of the manifest's patch reads only the changed lines (verified)
        # (a first install holds no manifest: no base, so no patch is asked for)
        held = any(len(n) == 64 for n in os.listdir(self.dir))
        data = patched_manifest(store, oid, self._local, max_bytes) if held and store.config.packed else None
        fd, tmp = tempfile.mkstemp(prefix=".fetch-", dir=self.dir)
        try:
            with os.fdopen(fd, "wb") as out:
                if data is not None:
                    out.write(data)
                else:
                    store.get_to(oid, out, max_bytes=max_bytes)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path(oid))
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def _local(self, oid: str) -> bytes | None:
        """The bytes of a manifest held here (a patch's base; the patched result is verified)."""
        try:
            with open(self.path(oid), "rb") as fp:
                return fp.read()
        except (OSError, ValueError):
            return None

    def verify(self, oid: str) -> None:
        h = blake3.blake3()
        try:
            with open(self.path(oid), "rb") as fp:
                while chunk := fp.read(1 << 20):
                    h.update(chunk)
        except FileNotFoundError:
            raise ContentError(f"the manifest {oid} of the installed generation is not in the state directory",
                               hint="the next run with the store reachable fetches it again") from None
        if h.hexdigest() != oid:
            os.unlink(self.path(oid))
            raise ContentError(f"the local copy of manifest {oid} was damaged and has been removed")

    @contextmanager
    def entries(self, target: Target, *, verify: bool = True) -> Iterator[Iterator[Entry]]:
        """Stream the target tree: channel manifest merged with the overlay's, validated as read."""
        with ExitStack() as stack:
            streams = []
            for oid in target.manifests():
                if verify:
                    self.verify(oid)
                fp = stack.enter_context(open(self.path(oid), "rb"))
                streams.append(iter_entries(fp))
            merged = streams[0] if len(streams) == 1 else merge_overlay(streams[0], streams[1])
            if self.max_rel is not None:
                merged = fitting(merged, self.max_rel)
            if self.folds_case():
                merged = _distinct(merged)
            yield merged

    def folds_case(self) -> bool:
        """Whether root is case-insensitive (probed once, when a tree is first planned)."""
        if self.root is not None and self._fold is None and os.path.isdir(self.root):
            self._fold = case_insensitive(self.root)
        return bool(self._fold)

    def read(self, oid: str) -> list[Entry]:
        """A whole local manifest (verified), for small trees and dry runs."""
        self.verify(oid)
        with open(self.path(oid), "rb") as fp:
            return list(iter_entries(fp))

    def prune(self, keep: set[str]) -> None:
        if not os.path.isdir(self.dir):
            return
        for name in os.listdir(self.dir):
            if name not in keep:
                try:
                    os.unlink(os.path.join(self.dir, name))
                except FileNotFoundError:
                    pass


__all__ = ["MANIFEST_DIR", "Manifests", "Target", "case_insensitive", "fitting", "folded", "merge_overlay"]
