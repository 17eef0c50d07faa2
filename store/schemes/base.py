"""`Scheme`: every decision of a store backend that depends on the URL scheme, named once.

A `Backend` picks its scheme once, when it is built (`scheme_for`), and asks it: how a URL of it is
checked, which storage options it takes and how regen's own map onto its library, how a file is
streamed, read whole or in part, stat'ed, written atomically, created exclusively, and how a
folder is listed; and, as class attributes, what it can do (read-only, atomic PUT, listable, a
connection per thread, reconnect on retry, local). Each scheme is one module of this package
(restic's internal/backend/<name>/), proven by the shared contract suite (tests/store/).

The I/O methods run inside the backend's retry loop (`Backend.call`) and raise what the library
raises; the backend translates it. They take `fs`, a function returning the fsspec filesystem
of the operation (made on first call), so file:// reads never import fsspec.
"""

from __future__ import annotations

import abc
import errno
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, ClassVar

from ..errors import InvalidURL
from ..options import OWN_OPTIONS
from ..streams import read_upto
from ..translate import _chain, translate

if TYPE_CHECKING:
    from urllib.parse import SplitResult

    from ..streams import RateGuard

FS = Callable[[], Any]  # the fsspec filesystem of the operation, made on first call
Fill = Callable[[IO[bytes]], object]  # writes a file's content into the binary stream it is given


@dataclass(frozen=True, slots=True)
class Stat:
    size: int
    mtime: float | None


@dataclass(frozen=True, slots=True)
class Capabilities:
    read_only: bool
    atomic_put: bool
    conditional_create: bool
    listable: bool = True


class Scheme(abc.ABC):
    """What a backend does differently for one URL scheme; an instance serves one `protocol`.

    Every class attribute below is set by each scheme (tests/test_layers.py checks it), and
    every abstract method implemented.
    """

    names: ClassVar[tuple[str, ...]]  # the URL schemes this class serves ("http", "https")
    read_only: ClassVar[bool]  # every write is refused (StoreReadOnly)
    atomic_put: ClassVar[bool]  # one PUT is atomic: no temp name + rename needed
    listable: ClassVar[bool]  # folders can be listed (gc, fsck, history); http(s) cannot
    pooled: ClassVar[bool]  # the client is not thread-safe: each thread leases its own connection
    reconnect_on_retry: ClassVar[bool]  # a retry makes a new connection (smb: re-registers the session)
    needs_host: ClassVar[bool]  # the URL must name a host or bucket
    local: ClassVar[bool]  # a local folder: a stat costs less than a thread hand-off, and
    #                        writes can be made durable in batches (one filesystem sync, staging.py)
    takes_known_hosts: ClassVar[bool]  # the known_hosts storage option applies
    install_hint: ClassVar[str]  # what to install when the fsspec backend is missing

    def __init__(self, protocol: str) -> None:
        self.protocol = protocol

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.protocol!r})"

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(read_only=self.read_only, atomic_put=self.atomic_put,
                            conditional_create=not self.read_only, listable=self.listable)

    # -- URLs, options, opening ------------------------------------------------------------------
    def check_url(self, url: str, parts: SplitResult) -> None:
        """InvalidURL unless `url` (split into `parts`) names a store of this scheme."""
        if self.needs_host and not parts.netloc:
            raise InvalidURL(f"store URL {url!r} lacks a host or bucket", url=url)

    @abc.abstractmethod
    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """The storage options checked by name and type, JSON tables decoded (StorageOptionInvalid)."""

    @abc.abstractmethod
    def fs_options(self, opts: dict[str, Any], timeout: float, known_hosts: str | None) -> dict[str, Any]:
        """The options for fsspec (regen's own removed) with regen's defaults: timeouts, no listing
        cache, one retry loop (the backend's)."""

    @abc.abstractmethod
    def after_open(self, fs: Any, timeout: float) -> None:
        """Settings fsspec takes no option for, made on the new filesystem `fs`."""

    def fs_root(self, url: str) -> str:
        """The store's root as the filesystem of `url` names it (found without connecting)."""
        import fsspec

        try:
            cls = fsspec.get_filesystem_class(self.protocol)
        except ImportError as exc:
            raise InvalidURL(f"cannot open store {url}: {exc}", url=url, hint=self.install_hint) from exc
        return str(cls._strip_protocol(url)).rstrip("/")

    def make_fs(self, url: str, options: dict[str, Any], timeout: float, known_hosts: str | None) -> Any:
        """A new fsspec filesystem for `url`, opened with the storage `options` as fs_options maps them."""
        import fsspec.core  # (imported on first use: reads of a file:// store do without it)

        scheme = self.protocol
        opts = self.fs_options({k: v for k, v in options.items() if k not in OWN_OPTIONS}, timeout, known_hosts)
        try:
            fs, _ = fsspec.core.url_to_fs(url, **opts)
        except ImportError as exc:
            raise InvalidURL(f"cannot open store {url}: {exc}", url=url, hint=self.install_hint) from exc
        except TypeError as exc:
            raise InvalidURL(f"cannot open store {url}: bad storage option: {exc}", url=url,
                             hint=f"check the storage options for {scheme}:// stores") from exc
        except ValueError as exc:
            if any(isinstance(e, OSError) for e in _chain(exc)):  # smbprotocol: connection failures
                raise translate(exc, url, "") from exc
            raise InvalidURL(f"cannot open store {url}: {exc}", url=url,
                             hint=f"check the URL and storage options for {scheme}:// stores") from exc
        except Exception as exc:  # noqa: BLE001 - translated
            raise translate(exc, url, "") from exc
        self.after_open(fs, timeout)
        return fs

    # -- reading ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def open_stream(self, fs: FS, full: str, on_request: Callable[[], None]) -> Any:
        """A binary stream of `full`, opened the cheapest way here; `on_request` is called for each
        further request the stream makes (S3's ranged GETs)."""

    @abc.abstractmethod
    def read_full(self, fs: FS, full: str, max_bytes: int | None, guard: RateGuard,
                  on_request: Callable[[], None]) -> bytes:
        """The content of `full` in one request where the server allows; with `max_bytes`, at most
        max_bytes + 1 bytes (the caller sees it was too big)."""

    @abc.abstractmethod
    def read_range(self, fs: FS, full: str, start: int, length: int) -> bytes:
        """Bytes [start, start+length) of `full` in one request; fewer only at the end of the file."""

    @abc.abstractmethod
    def stat(self, fs: FS, full: str, path: str) -> Stat:
        """Size and mtime of file `full` (`path`: its store-relative name, for errors);
        FileNotFoundError for a folder."""

    def absent(self, root: str, paths: list[str], missing: Callable[[str], bool],
               bump: Callable[[str], None]) -> list[bool]:
        """For each path below `root`, whether it definitely does not exist: `missing(path)` (one
        stat through the backend) unless the scheme has a cheaper way; `bump` counts requests."""
        return [missing(p) for p in paths]

    def key_listed(self, fs: FS, full: str) -> bool | None:
        """After a read of `full` was refused: whether a listing of exactly that name shows it
        (raises if the listing is refused too); None where a refusal never hides a missing file."""
        return None

    # -- writing ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def write_atomic(self, fs: FS, full: str, fill: Fill, *, url: str, rel: str | None,
                     sleep: Callable[[float], None]) -> None:
        """Create or replace `full` with what `fill` writes: readers see the old or the new content.
        `url` and `rel` (the store-relative path) name the file in errors; `sleep` waits between tries."""

    @abc.abstractmethod
    def create_new(self, fs: FS, full: str, data: bytes) -> None:
        """Create `full` holding `data`, complete at once, only if it does not exist (FileExistsError
        otherwise)."""

    # -- listing ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def ls(self, fs: FS, d: str) -> list[tuple[str, bool]]:
        """(full name, is a folder) of the entries of folder `d`, in one request where possible."""

    @abc.abstractmethod
    def files_below(self, fs: FS, top: str) -> list[str]:
        """Full names of every file below folder `top` (temp files included); [] if there is none."""


def cat_or_stream(scheme: Scheme, fs: FS, full: str, max_bytes: int | None, guard: RateGuard,
                  on_request: Callable[[], None]) -> bytes:
    """`Scheme.read_full` by one cat_file for the whole content, else by a stream cut at max_bytes + 1."""
    if max_bytes is None:
        return bytes(fs().cat_file(full))
    with scheme.open_stream(fs, full, on_request) as fp:
        return read_upto(fp, max_bytes + 1, guard)


def info_stat(fs: Any, full: str, path: str) -> Stat:
    """A Stat from fsspec's info(): FileNotFoundError for a folder."""
    info = fs.info(full)
    if info.get("type") == "directory":
        raise FileNotFoundError(errno.ENOENT, "is a folder", path)
    mtime = info.get("mtime") or info.get("LastModified") or info.get("created")
    return Stat(int(info.get("size") or 0), timestamp(mtime))


def timestamp(value: Any) -> float | None:
    """Seconds since the epoch from what a library reports (datetime, number, nothing)."""
    if value is None or value == "":
        return None
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    return float(value)


__all__ = ["FS", "Capabilities", "Fill", "Scheme", "Stat", "cat_or_stream", "info_stat", "timestamp"]
