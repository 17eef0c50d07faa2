"""The one translation table (store/backend.py: translate) is complete and never lies.

Every exception class of the storage libraries (botocore, s3fs, aiohttp, paramiko, smbprotocol,
fsspec) is translated into a regen StoreError; only a definite "no such file" becomes NotFound
(a false "missing" would make a client think a channel was never published); connection
failures are StoreUnreachable (retried); refused credentials are StoreAccessDenied (not retried).
The real exception objects are built here, as the libraries raise them.
"""

from __future__ import annotations

import asyncio
import errno
import http.client
import importlib
import inspect
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import aiohttp
import botocore.exceptions as boto
import botocore.parsers
import paramiko
import pytest
import smbprotocol.exceptions as smb
import urllib3.exceptions
from smbprotocol.header import NtStatus

from regen.store import NotFound, StoreAccessDenied, StoreError, StoreExists, StoreNotFound, StoreUnreachable
from regen.store.translate import _NAMED, translate

LIBRARIES = ("botocore.exceptions", "s3fs.errors", "aiohttp", "paramiko", "smbprotocol.exceptions",
             "fsspec.exceptions")
URL = "s3://bucket/store"


def _foreign() -> list[type[BaseException]]:
    found: set[type[BaseException]] = set()
    for name in LIBRARIES:
        mod = importlib.import_module(name)
        top = name.split(".")[0]
        for _, cls in inspect.getmembers(mod, inspect.isclass):
            if issubclass(cls, Exception) and not issubclass(cls, Warning) and cls.__module__.startswith(top):
                found.add(cls)
    return sorted(found, key=lambda c: f"{c.__module__}.{c.__qualname__}")


def _bare(cls: type[BaseException]) -> BaseException:
    """An instance as a library may leave it: the constructor's own arguments unknown."""
    exc = cls.__new__(cls)
    BaseException.__init__(exc, "simulated")
    return exc


def _means_missing(cls: type[BaseException]) -> bool:
    return issubclass(cls, FileNotFoundError) or any(w in cls.__name__ for w in ("NotFound", "NoSuchFile"))


@pytest.mark.parametrize("cls", _foreign(), ids=lambda c: f"{c.__module__.split('.')[0]}.{c.__name__}")
def test_every_library_exception_translates_without_a_false_missing(cls: type[BaseException]) -> None:
    err = translate(_bare(cls), URL, "refs/stable")
    assert isinstance(err, StoreError)
    assert err.one_line()
    if isinstance(err, NotFound):
        assert _means_missing(cls), f"{cls.__name__} would be mistaken for a missing file"


def test_every_name_in_the_table_is_a_real_exception() -> None:
    known = {c.__name__ for c in _foreign()}
    for mod in (http.client, asyncio, urllib3.exceptions, botocore.parsers, paramiko.ssh_exception):
        known |= {n for n, c in inspect.getmembers(mod, inspect.isclass) if issubclass(c, BaseException)}
    known.add("UnknownHostKey")  # raised by backend's own known_hosts policy
    assert set(_NAMED) <= known, set(_NAMED) - known


def _tls(cls: type[BaseException]) -> bool:
    return "SSL" in cls.__name__ or "Certificate" in cls.__name__ or "Fingerprint" in cls.__name__


@pytest.mark.parametrize("cls", [c for c in _foreign() if not _tls(c) and (issubclass(c, (
    boto.ConnectionError, boto.HTTPClientError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError,
    smb.SMBConnectionClosed)) or (issubclass(c, paramiko.SSHException) and not issubclass(
        c, (paramiko.AuthenticationException, paramiko.BadHostKeyException))))], ids=lambda c: c.__name__)
def test_connection_failures_are_unreachable(cls: type[BaseException]) -> None:
    assert isinstance(translate(_bare(cls), URL, "x"), StoreUnreachable)


@pytest.mark.parametrize("cls", [c for c in _foreign() if _tls(c) and issubclass(
    c, (boto.ConnectionError, aiohttp.ClientConnectionError))], ids=lambda c: c.__name__)
def test_certificate_failures_are_not_retried(cls: type[BaseException]) -> None:
    err = translate(_bare(cls), URL, "x")
    assert type(err) is StoreError and "certificate" in err.one_line()


@pytest.mark.parametrize("cls", [boto.NoCredentialsError, boto.PartialCredentialsError,
                                 paramiko.AuthenticationException, paramiko.BadAuthenticationType,
                                 paramiko.PasswordRequiredException, paramiko.BadHostKeyException,
                                 smb.SMBAuthenticationError, smb.LogonFailure, smb.AccessDenied],
                         ids=lambda c: c.__name__)
def test_refused_credentials_are_access_denied(cls: type[BaseException]) -> None:
    assert isinstance(translate(_bare(cls), URL, "x"), StoreAccessDenied)


def _client_error(status: int, code: str, headers: dict[str, str] | None = None) -> OSError:
    """What s3fs raises: an OSError whose __cause__ is botocore's ClientError."""
    cause = boto.ClientError({"Error": {"Code": code, "Message": code},
                              "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": headers or {}}},
                             "GetObject")
    exc = OSError(errno.EIO, code)
    exc.__cause__ = cause
    return exc


def _aiohttp_error(status: int, headers: dict[str, str] | None = None) -> aiohttp.ClientResponseError:
    return aiohttp.ClientResponseError(None, (), status=status, headers=headers)  # type: ignore[arg-type]


def _smb_error(status: int) -> smb.SMBOSError:
    return smb.SMBOSError(status, "\\\\server\\share\\refs\\stable")


def _refused_as_smbprotocol_says() -> ValueError:
    try:
        try:
            raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
        except OSError as err:
            raise ValueError("Failed to connect to '127.0.0.1:445': [Errno 111] Connection refused") from err
    except ValueError as exc:
        return exc


def _404_handled_on_the_way() -> RuntimeError:
    try:
        try:
            raise _aiohttp_error(404)
        except aiohttp.ClientResponseError:
            raise RuntimeError("something else went wrong while handling it")  # noqa: B904 - the point
    except RuntimeError as exc:
        return exc


CASES: list[tuple[str, BaseException, type[StoreError]]] = [
    ("local missing", FileNotFoundError(errno.ENOENT, "x"), NotFound),
    ("below a file", NotADirectoryError(errno.ENOTDIR, "x"), NotFound),
    ("local exists", FileExistsError(errno.EEXIST, "x"), StoreExists),
    ("local denied", PermissionError(errno.EACCES, "x"), StoreAccessDenied),
    ("disk full", OSError(errno.ENOSPC, "full"), StoreError),
    ("timeout", TimeoutError(), StoreUnreachable),
    ("reset", ConnectionResetError(), StoreUnreachable),
    ("sftp generic failure", OSError("Failure"), StoreUnreachable),
    ("s3 missing", _client_error(404, "NoSuchKey"), NotFound),
    ("s3 denied", _client_error(403, "AccessDenied"), StoreAccessDenied),
    ("s3 exists", _client_error(412, "PreconditionFailed"), StoreExists),
    ("s3 slow down", _client_error(503, "SlowDown"), StoreUnreachable),
    ("s3 internal", _client_error(500, "InternalError"), StoreUnreachable),
    ("s3 bad request is not retried", _client_error(400, "InvalidArgument"), StoreError),
    ("http missing", _aiohttp_error(404), NotFound),
    ("http auth", _aiohttp_error(401), StoreAccessDenied),
    ("http throttled", _aiohttp_error(429), StoreUnreachable),
    ("http bad gateway", _aiohttp_error(502), StoreUnreachable),
    ("smb missing", _smb_error(NtStatus.STATUS_OBJECT_NAME_NOT_FOUND), NotFound),
    ("smb missing folder", _smb_error(NtStatus.STATUS_OBJECT_PATH_NOT_FOUND), NotFound),
    ("smb exists", _smb_error(NtStatus.STATUS_OBJECT_NAME_COLLISION), StoreExists),
    ("smb denied", _smb_error(NtStatus.STATUS_ACCESS_DENIED), StoreAccessDenied),
    ("smb in use", _smb_error(NtStatus.STATUS_SHARING_VIOLATION), StoreUnreachable),
    ("smb no such share", _smb_error(NtStatus.STATUS_BAD_NETWORK_NAME), StoreNotFound),
    ("smb refused", _refused_as_smbprotocol_says(), StoreUnreachable),
    ("handled 404 in the context", _404_handled_on_the_way(), StoreError),
    ("anything else", RuntimeError("?"), StoreError),
]


@pytest.mark.parametrize(("exc", "expected"), [(e, t) for _, e, t in CASES], ids=[n for n, _, _ in CASES])
def test_translation(exc: BaseException, expected: type[StoreError]) -> None:
    err = translate(exc, URL, "refs/stable")
    assert type(err) is expected
    assert "s3://bucket/store/refs/stable" in str(err) or isinstance(err, StoreNotFound)


def test_retry_after_seconds_and_dates() -> None:
    err = translate(_aiohttp_error(503, {"Retry-After": "12"}), URL, "x")
    assert err.retry_after == 12.0
    later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=120), usegmt=True)
    err = translate(_client_error(503, "SlowDown", {"retry-after": later}), URL, "x")
    assert 60 < err.retry_after <= 120
    assert translate(_aiohttp_error(500), URL, "x").retry_after is None
