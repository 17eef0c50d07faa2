"""What regen knows about each store URL scheme: parsing a URL, the capabilities of its backend,
checking regen's own storage options, and opening the fsspec filesystem with regen's defaults
(timeouts, no listing cache, one retry loop -- the backend's). fsspec and the scheme libraries
are imported on first use only: reads of a file:// store do without them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .about import user_agent
from .errors import InvalidInput, InvalidURL
from .options import OWN_OPTIONS
from .translate import _chain, translate

SCHEMES = ("file", "memory", "s3", "smb", "sftp", "http", "https")
_READ_ONLY = ("http", "https")
# single PUT is atomic on these: no temp name + rename needed
_ATOMIC_PUT = ("s3", "memory")
DEFAULT_TIMEOUT = 30.0  # seconds to connect, and of silence while reading, before a server counts as dead
# a transfer averaging less than this (bytes/s) over `timeout` seconds is cut: a server trickling
# a byte now and then never trips the idle timeout, yet would hold a run for days (curl's
# --speed-limit/--speed-time); 0 turns the check off
DEFAULT_MIN_RATE = 1024.0


@dataclass(frozen=True, slots=True)
class Capabilities:
    read_only: bool
    atomic_put: bool
    conditional_create: bool
    listable: bool = True


def capabilities(scheme: str) -> Capabilities:
    """What a backend for `scheme` can do."""
    return Capabilities(
        read_only=scheme in _READ_ONLY,
        atomic_put=scheme in _ATOMIC_PUT,
        conditional_create=scheme not in _READ_ONLY,
        listable=scheme not in _READ_ONLY,
    )


def parse_url(url: str) -> tuple[str, str]:
    """Return (scheme, url) with a plain path normalised to file://; raise InvalidURL otherwise."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidURL("no store URL given", url=url, hint="pass --store URL or set REGEN_STORE")
    url = url.strip()
    if "://" not in url:
        if url.startswith("/") or url.startswith("."):
            return "file", "file://" + os.path.abspath(url)
        raise InvalidURL(f"store URL {url!r} has no scheme", url=url)
    scheme = url.split("://", 1)[0].lower()
    if scheme not in SCHEMES:
        raise InvalidURL(f"store URL {url!r} has unsupported scheme {scheme!r}", url=url)
    parts = urlsplit(url)
    if scheme in ("s3", "smb", "sftp", "http", "https") and not parts.netloc:
        raise InvalidURL(f"store URL {url!r} lacks a host or bucket", url=url)
    if scheme == "smb" and len([p for p in parts.path.split("/") if p]) < 1:
        raise InvalidURL(f"store URL {url!r} lacks a share name (smb://host/share/path)", url=url)
    if scheme == "file" and not parts.path.startswith("/"):
        raise InvalidURL(f"store URL {url!r} must be an absolute path (file:///srv/regen)", url=url)
    return scheme, url


def _min_rate(value: Any, url: str) -> float:
    try:
        rate = float(value)
    except (TypeError, ValueError):
        rate = -1.0
    if not 0 <= rate < float("inf"):
        raise InvalidInput(f"storage option min_rate={value!r} for {url} is not a number of bytes per second",
                           hint="set min_rate to the slowest acceptable transfer in bytes/s, e.g. 1024, or 0 for none")
    return rate


def max_rate(name: str, value: Any, url: str) -> float | None:
    """A bandwidth cap in bytes/s from a number or a size ("10M" = 10 MiB/s); None: no cap."""
    from .sizes import parse_size

    if value is None or value == 0:
        return None
    try:
        rate = float(parse_size(value)) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        rate = -1.0
    if isinstance(value, bool) or not 0 < rate < float("inf"):
        raise InvalidInput(f"storage option {name}={value!r} for {url} is not a rate in bytes per second",
                           hint=f"set {name} to a number of bytes/s or a size per second such as \"10M\"; 0 for none")
    return rate


def _positive_seconds(value: Any, url: str) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if not seconds > 0:
        raise InvalidInput(f"storage option timeout={value!r} for {url} is not a positive number of seconds",
                           hint="set timeout to the seconds to wait for the server, e.g. 30")
    return seconds


def _known_hosts(value: str | None, scheme: str, url: str) -> str | None:
    if value is not None and scheme != "sftp":
        raise InvalidInput(f"storage option known_hosts applies to sftp:// stores, not {url}",
                           hint="remove known_hosts from the storage options")
    return value


def fs_options(scheme: str, options: dict[str, Any], timeout: float, known_hosts: str | None) -> dict[str, Any]:
    """Storage options for fsspec, with regen's defaults: timeouts, no listing cache, one retry loop."""
    opts = {k: v for k, v in options.items() if k not in OWN_OPTIONS}
    t = timeout
    if scheme == "s3":
        opts.setdefault("skip_instance_cache", True)
        opts.setdefault("use_listings_cache", False)  # a cached listing would make has() lie
        cfg = dict(opts.get("config_kwargs") or {})
        cfg.setdefault("connect_timeout", t)
        cfg.setdefault("read_timeout", t)
        cfg.setdefault("retries", {"total_max_attempts": 1})  # retried here, with counters
        cfg.setdefault("user_agent_extra", user_agent())  # servers' logs tell regen's clients apart
        opts["config_kwargs"] = cfg
    elif scheme in ("http", "https"):
        opts.setdefault("skip_instance_cache", True)
        opts.setdefault("use_listings_cache", False)
        client = dict(opts.get("client_kwargs") or {})
        client["headers"] = {"User-Agent": user_agent(), **dict(client.get("headers") or {})}
        if "timeout" not in client:
            import aiohttp

            client["timeout"] = aiohttp.ClientTimeout(total=None, sock_connect=t, sock_read=t)
        opts["client_kwargs"] = client
    elif scheme == "smb":
        opts.setdefault("skip_instance_cache", True)
        opts.setdefault("timeout", t)
        opts.setdefault("register_session_retries", 0)  # retried here
    elif scheme == "sftp":
        opts["skip_instance_cache"] = True  # the pool owns its connections
        for key in ("timeout", "banner_timeout", "auth_timeout", "channel_timeout"):
            opts.setdefault(key, t)
        if known_hosts is not None:
            opts["host_key_policy"] = _known_hosts_policy(known_hosts)
    return opts


def make_fs(scheme: str, url: str, options: dict[str, Any], timeout: float, known_hosts: str | None) -> Any:
    """A new fsspec filesystem for `url`, opened with the storage `options` as fs_options maps them."""
    import fsspec.core  # (imported on first use: reads of a file:// store do without it)

    try:
        fs, _ = fsspec.core.url_to_fs(url, **fs_options(scheme, options, timeout, known_hosts))
    except ImportError as exc:
        hint = {"s3": "pip install 'regen[s3]'", "smb": "pip install 'regen[smb]'",
                "sftp": "pip install 'regen[sftp]'"}.get(scheme, "install the fsspec backend")
        raise InvalidURL(f"cannot open store {url}: {exc}", url=url, hint=hint) from exc
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
    if scheme == "s3":
        fs.retries = 1  # s3fs's own retry loop off: ours counts, backs off and honours Retry-After
    elif scheme == "sftp":
        fs.ftp.get_channel().settimeout(timeout)  # a silent server raises instead of hanging
    return fs


def fs_root(scheme: str, url: str) -> str:
    """The store's root as the filesystem of `url` names it (found without connecting)."""
    if scheme in ("http", "https"):
        return url
    if scheme == "file":  # as fsspec's LocalFileSystem names it, without importing fsspec
        return os.path.abspath(url[len("file://"):]).rstrip("/") or "/"
    import fsspec

    try:
        cls = fsspec.get_filesystem_class(scheme)
    except ImportError as exc:
        raise InvalidURL(f"cannot open store {url}: {exc}", url=url, hint=f"pip install 'regen[{scheme}]'") from exc
    return str(cls._strip_protocol(url)).rstrip("/")


def _unc(fs: Any, path: str) -> str:
    """\\\\host\\share\\path for smbclient, from fsspec's /share/path."""
    return "\\\\" + str(fs.host) + path.replace("/", "\\")


def _known_hosts_policy(path: str) -> Any:
    """A paramiko policy accepting a server only if its key is in the OpenSSH known_hosts file `path`."""
    import paramiko

    class UnknownHostKey(paramiko.SSHException):
        pass

    class KnownHostsOnly(paramiko.MissingHostKeyPolicy):
        def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
            try:
                known = paramiko.HostKeys(path)
            except (OSError, paramiko.SSHException) as exc:
                raise UnknownHostKey(f"cannot read known_hosts file {path}: {exc}") from None
            if known.check(hostname, key):
                return
            listed = known.lookup(hostname)
            if listed is not None and key.get_name() in listed:
                raise paramiko.BadHostKeyException(hostname, key, listed[key.get_name()])
            raise UnknownHostKey(f"the {key.get_name()} host key of {hostname} is not in {path}")

    return KnownHostsOnly()


__all__ = ["DEFAULT_MIN_RATE", "DEFAULT_TIMEOUT", "SCHEMES", "Capabilities", "capabilities", "fs_options", "fs_root",
           "make_fs", "max_rate", "parse_url"]
