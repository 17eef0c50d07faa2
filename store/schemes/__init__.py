"""One small class per store URL scheme (restic's internal/backend/<name>/): base.py names every
decision a backend takes per scheme; file, memory, s3, smb, sftp and http answer them. A Backend
picks its scheme once, when it is built (`resolve`); nothing else in regen.store compares scheme
names (tests/test_layers.py). Adding a backend is adding a module here and its class to `CLASSES`;
the contract suite (tests/store/backend_contract.py) proves it.

The libraries are imported on first use only: reads of a file:// store do without fsspec.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from ..errors import InvalidURL
from .base import FS, Capabilities, Scheme, Stat
from .file import FileScheme
from .http import HttpScheme
from .memory import MemoryScheme
from .s3 import S3Scheme
from .sftp import SftpScheme
from .smb import SmbScheme

CLASSES: tuple[type[Scheme], ...] = (FileScheme, MemoryScheme, S3Scheme, SmbScheme, SftpScheme, HttpScheme)
_BY_NAME: dict[str, type[Scheme]] = {name: cls for cls in CLASSES for name in cls.names}
SCHEMES = tuple(_BY_NAME)  # every URL scheme regen opens


def scheme_for(url_or_protocol: str) -> Scheme:
    """The scheme serving `url_or_protocol` ("s3" or "s3://bucket/x"); InvalidURL if none does."""
    protocol = url_or_protocol.split("://", 1)[0].lower()
    cls = _BY_NAME.get(protocol)
    if cls is None:
        raise InvalidURL(f"store URL {url_or_protocol!r} has unsupported scheme {protocol!r}", url=url_or_protocol)
    return cls(protocol)


def resolve(url: str) -> tuple[Scheme, str]:
    """(scheme, url) with a plain path normalised to file://; InvalidURL unless the scheme accepts it."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidURL("no store URL given", url=url, hint="pass --store URL or set REGEN_STORE")
    url = url.strip()
    if "://" not in url:
        if url.startswith("/") or url.startswith("."):
            return scheme_for("file"), "file://" + os.path.abspath(url)
        raise InvalidURL(f"store URL {url!r} has no scheme", url=url)
    scheme = scheme_for(url)
    scheme.check_url(url, urlsplit(url))
    return scheme, url


def parse_url(url: str) -> tuple[str, str]:
    """Return (scheme name, url) with a plain path normalised to file://; raise InvalidURL otherwise."""
    scheme, url = resolve(url)
    return scheme.protocol, url


__all__ = ["CLASSES", "FS", "SCHEMES", "Capabilities", "Scheme", "Stat", "parse_url", "resolve", "scheme_for"]
