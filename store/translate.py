"""Foreign exceptions -> regen errors: the one translation table of the storage boundary (pure).

store/backend.py calls `translate` on everything fsspec, s3fs/botocore, aiohttp, paramiko
and smbprotocol raise; nothing else in regen sees those exceptions. The libraries are not
imported here: classes are matched by name along the MRO, SMB errors by NTSTATUS code, HTTP
errors by status (also through the `__cause__` s3fs and smbprotocol attach). Only a definite
"no such file" becomes NotFound; tests/store/test_backend_errors.py proves every exception
class of those libraries translates, and none into a false "missing".
"""

from __future__ import annotations

import errno
import time
from collections.abc import Iterator
from typing import Any

from .errors import NotFound, StoreAccessDenied, StoreError, StoreExists, StoreNotFound, StoreUnreachable

_TRANSIENT_ERRNOS = {errno.EIO, errno.EBUSY, errno.ECONNRESET, errno.ECONNREFUSED, errno.ETIMEDOUT, errno.EPIPE,
                     errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ECONNABORTED, errno.EAGAIN}
# Foreign exception class names (optional libraries are not imported here) -> regen error.
# Looked up along the exception's MRO, so the most specific name wins.
_NAMED: dict[str, type[StoreError]] = {
    "ClientConnectorError": StoreUnreachable,  # aiohttp
    "ServerDisconnectedError": StoreUnreachable,
    "ServerTimeoutError": StoreUnreachable,
    "ClientPayloadError": StoreUnreachable,
    "ClientOSError": StoreUnreachable,
    "ClientConnectionError": StoreUnreachable,
    "EndpointConnectionError": StoreUnreachable,  # botocore
    "ConnectTimeoutError": StoreUnreachable,
    "ReadTimeoutError": StoreUnreachable,
    "ConnectionClosedError": StoreUnreachable,
    "ConnectionError": StoreUnreachable,  # botocore's base of connection failures
    "SSLError": StoreError,  # a certificate problem: retrying cannot help
    "ClientSSLError": StoreError,
    "ServerFingerprintMismatch": StoreError,
    "HTTPClientError": StoreUnreachable,
    "ResponseParserError": StoreUnreachable,
    "IncompleteReadError": StoreUnreachable,
    "IncompleteRead": StoreUnreachable,  # http.client / urllib3
    "ProtocolError": StoreUnreachable,
    "NoCredentialsError": StoreAccessDenied,
    "PartialCredentialsError": StoreAccessDenied,
    "SSHException": StoreUnreachable,  # paramiko
    "NoValidConnectionsError": StoreUnreachable,
    "ChannelException": StoreUnreachable,
    "AuthenticationException": StoreAccessDenied,
    "PasswordRequiredException": StoreAccessDenied,
    "BadHostKeyException": StoreAccessDenied,
    "UnknownHostKey": StoreAccessDenied,  # our known_hosts policy
    "SMBAuthenticationError": StoreAccessDenied,  # smbprotocol
    "LogonFailure": StoreAccessDenied,
    "AccessDenied": StoreAccessDenied,
    "SMBConnectionClosed": StoreUnreachable,
    "SMBException": StoreUnreachable,
}
_HINTS = {
    "BadHostKeyException": "the server's host key does not match known_hosts; check the server, then known_hosts",
    "UnknownHostKey": "add the server's host key to the known_hosts file (ssh-keyscan -p PORT HOST)",
    "SSLError": "check the server's TLS certificate, or point the client at the right CA bundle",
    "ClientSSLError": "check the server's TLS certificate, or point the client at the right CA bundle",
    "ServerFingerprintMismatch": "the server's TLS certificate is not the pinned one; check the server",
}
# SMB NTSTATUS codes (smbprotocol puts them on .ntstatus / .status) that say more than errno.
_NT_UNREACHABLE = {0xC0000043, 0xC0000056, 0xC0000203, 0xC00000C9, 0xC0000128, 0xC000009A, 0xC00000B5}
_NT_DENIED = {0xC0000022, 0xC000006D, 0xC0000071, 0xC0000121}
_NT_NO_SHARE = 0xC00000CC  # STATUS_BAD_NETWORK_NAME: the share does not exist
_NT_DISK_FULL = 0xC000007F
_NT_NOT_FOUND = {0xC0000034, 0xC000003A, 0xC0000225}
_NT_EXISTS = 0xC0000035


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and its explicit causes (s3fs and smbprotocol wrap the informative one).

    Only __cause__ is followed: an implicit __context__ may be an unrelated earlier error
    (a 404 handled on the way), which must never turn a failure into a "missing".
    """
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__


def _text(exc: BaseException) -> str:
    """str(exc), which some libraries' exceptions cannot always give."""
    try:
        return str(exc) or type(exc).__name__
    except Exception:  # noqa: BLE001 - a half-built foreign exception
        return type(exc).__name__


def _attr(obj: object, name: str) -> Any:
    try:
        return getattr(obj, name, None)
    except Exception:  # noqa: BLE001 - properties of foreign exceptions may fail
        return None


def _status_of(exc: BaseException) -> int | None:
    """The HTTP status behind an exception (aiohttp, botocore), if any."""
    for e in _chain(exc):
        for attr in ("status", "status_code"):
            v = _attr(e, attr)
            if isinstance(v, int) and 100 <= v <= 599:
                return v
        resp = _attr(e, "response")
        if isinstance(resp, dict):
            code = resp.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if isinstance(code, int):
                return code
    return None


def _ntstatus_of(exc: BaseException) -> int | None:
    for e in _chain(exc):
        v = _attr(e, "ntstatus")
        if v is None and type(e).__module__.startswith("smbprotocol"):
            v = _attr(e, "status")
        if isinstance(v, int) and v > 0xFFFF:
            return v
    return None


def translate(exc: BaseException, url: str, path: str) -> StoreError:
    """The one translation table from foreign exceptions to regen errors.

    Only a definite "no such file" becomes NotFound; anything unknown is a StoreError that
    says what happened, never a false "missing".
    """
    where = f"{url.rstrip('/')}/{path}" if path else url
    if isinstance(exc, StoreError):
        return exc
    nt = _ntstatus_of(exc)
    if nt is not None:
        if nt in _NT_UNREACHABLE:
            return StoreUnreachable(f"{where} is busy or the connection was lost: {_text(exc)}", url=url, path=path)
        if nt in _NT_DENIED:
            return StoreAccessDenied(f"access to {where} was denied: {_text(exc)}", url=url, path=path)
        if nt == _NT_NO_SHARE:
            return StoreNotFound(f"the share of {url} does not exist on the server", url=url, path=path,
                                 hint="check the share name in the smb:// URL")
        if nt == _NT_DISK_FULL:
            return StoreError(f"no space left on the store at {where}", url=url, path=path,
                              hint="free space on the store or run 'regen gc'")
        if nt in _NT_NOT_FOUND:
            return NotFound(f"{where} does not exist", url=url, path=path)
        if nt == _NT_EXISTS:
            return StoreExists(f"{where} already exists", url=url, path=path)
    if isinstance(exc, (FileNotFoundError, NotADirectoryError)) or (
            isinstance(exc, OSError) and exc.errno in (errno.ENOENT, errno.ENOTDIR)):
        return NotFound(f"{where} does not exist", url=url, path=path)  # (below a file: cannot exist)
    if isinstance(exc, FileExistsError) or (isinstance(exc, OSError) and exc.errno == errno.EEXIST):
        return StoreExists(f"{where} already exists", url=url, path=path)
    if isinstance(exc, PermissionError):
        return StoreAccessDenied(f"access to {where} was denied", url=url, path=path)
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return StoreUnreachable(f"cannot reach {where}: {_text(exc)}", url=url, path=path)
    status = _status_of(exc)
    if status is not None:
        if status == 404:
            return NotFound(f"{where} does not exist", url=url, path=path)
        if status in (401, 403):
            return StoreAccessDenied(f"access to {where} was denied (HTTP {status})", url=url, path=path)
        if status == 412:  # only conditional creates are sent: If-None-Match failed
            return StoreExists(f"{where} already exists", url=url, path=path)
        if status in (408, 429) or status >= 500:
            return StoreUnreachable(f"{where} answered HTTP {status}", url=url, path=path,
                                    retry_after=_retry_after(exc))
        if status >= 400:  # the request itself is wrong: retrying cannot help
            return StoreError(f"{where} answered HTTP {status}: {_text(exc)}", url=url, path=path)
    for e in _chain(exc):
        for cls in type(e).__mro__:
            mapped = _NAMED.get(cls.__name__)
            if mapped is not None:
                return mapped(f"{where}: {type(e).__name__}: {_text(e)}", url=url, path=path,
                              hint=_HINTS.get(cls.__name__))
        if e is not exc and isinstance(e, OSError):
            return translate(e, url, path)  # e.g. smbprotocol's ValueError("Failed to connect") from OSError
    if isinstance(exc, OSError):
        if exc.errno in (errno.EACCES, errno.EPERM):
            return StoreAccessDenied(f"access to {where} was denied", url=url, path=path)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return StoreError(f"no space left on the store at {where}", url=url, path=path,
                              hint="free space on the store or run 'regen gc'")
        if exc.errno in _TRANSIENT_ERRNOS or exc.errno is None:
            return StoreUnreachable(f"cannot access {where}: {_text(exc)}", url=url, path=path)
        return StoreError(f"cannot access {where}: {_text(exc)}", url=url, path=path)
    return StoreError(f"unexpected error at {where}: {type(exc).__name__}: {_text(exc)}", url=url, path=path)


def _retry_after(exc: BaseException) -> float | None:
    """Seconds from a Retry-After header (delta or HTTP date) on the response, if any."""
    for e in _chain(exc):
        headers = _attr(e, "headers")
        resp = _attr(e, "response")
        if headers is None and isinstance(resp, dict):
            headers = {k.lower(): v for k, v in resp.get("ResponseMetadata", {}).get("HTTPHeaders", {}).items()}
        if headers is None:
            continue
        value = headers.get("Retry-After") or headers.get("retry-after")
        if value is None:
            continue
        try:
            return max(0.0, float(value))
        except (TypeError, ValueError):
            pass
        try:
            import email.utils  # (only for an HTTP date in Retry-After)

            when = email.utils.parsedate_to_datetime(str(value))
            return max(0.0, when.timestamp() - time.time())
        except (TypeError, ValueError):
            return None
    return None


def is_missing(exc: BaseException) -> bool:
    """True only for a definite \"no such file or folder\" (plain, SMB or SFTP flavour)."""
    return isinstance(translate(exc, "", ""), NotFound)
