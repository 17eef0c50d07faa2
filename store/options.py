"""Checking storage options before a filesystem is opened: one line naming the option and the valid ones.

Why: fsspec hands unknown options down to the library that happens to take **kwargs (aiobotocore's
AioSession, aiohttp's request, paramiko's connect), which fails much later with a raw Python
error (`TypeError: AioSession.__init__() got an unexpected keyword argument 'endpont_url'`,
`dictionary update sequence element #0 has length 1` for non-JSON config_kwargs). The names a
scheme accepts are read from the signatures of the classes that consume them, so they follow the
installed library versions; the libraries are imported only for their scheme (never for file://).
"""

from __future__ import annotations

import difflib
import inspect
import json
import os
from collections.abc import Callable
from typing import Any

from .errors import StorageOptionInvalid

# regen's own options (schemes.py maps them onto each library's settings)
OWN_OPTIONS = ("timeout", "min_rate", "max_rate", "max_upload_rate", "known_hosts")
# fsspec's own, taken by every filesystem
_FSSPEC = ("skip_instance_cache", "use_listings_cache", "listings_expiry_time", "max_paths")
# options whose value is a table (given as a JSON object on the command line)
_TABLES = ("client_kwargs", "config_kwargs", "s3_additional_kwargs", "cache_options", "headers", "params",
           "cookies", "disabled_algorithms")
_FILES = ("key_filename", "known_hosts")  # options naming a file the client must be able to read
# parameters that take Python objects, never a value from a config file or the command line
_OBJECTS = ("loop", "asynchronous", "session", "session_vars", "event_hooks", "include_builtin_handlers", "get_client",
            "sock", "transport_factory", "auth_strategy", "pkey", "trace_request_ctx", "middlewares", "upload_tracker")

__all__ = ["OWN_OPTIONS", "check_options"]


def _params(fn: Callable[..., Any], skip: tuple[str, ...] = ()) -> dict[str, inspect.Parameter]:
    return {n: p for n, p in inspect.signature(fn).parameters.items()
            if n not in ("self", *skip, *_OBJECTS) and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


def _accepted(scheme: str) -> dict[str, inspect.Parameter | None]:
    """Option name -> the parameter that takes it (its default gives the expected type), per scheme."""
    names: dict[str, inspect.Parameter | None] = dict.fromkeys((*OWN_OPTIONS, *_FSSPEC))
    if scheme == "file":
        names["auto_mkdir"] = None
        return names
    import fsspec

    cls = fsspec.get_filesystem_class(scheme)
    if scheme == "s3":
        from aiobotocore.session import AioSession  # s3fs passes its leftover options to AioSession

        names.update(_params(cls.__init__))
        names.update(_params(AioSession.__init__))
    elif scheme in ("http", "https"):
        import aiohttp  # HTTPFileSystem passes its leftover options to every request

        names.update(_params(cls.__init__, ("storage_options",)))
        names.update(_params(aiohttp.ClientSession._request, ("method", "str_or_url")))
    elif scheme == "smb":
        names.update(_params(cls.__init__, ("host",)))
    elif scheme == "sftp":
        import paramiko  # SFTPFileSystem passes its options to SSHClient.connect

        names.update(_params(paramiko.SSHClient.connect, ("hostname", "sock", "transport_factory")))
    return names


def _fail(scheme: str, key: str, problem: str, hint: str) -> StorageOptionInvalid:
    return StorageOptionInvalid(f"storage option {key!r} for {scheme}:// stores {problem}", hint=hint, option=key)


def _table(scheme: str, key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise _fail(scheme, key, f"is not valid JSON ({exc.msg} at column {exc.colno})",
                        f"give a JSON object, e.g. {key}='{{\"name\": \"value\"}}'") from None
    if not isinstance(value, dict):
        raise _fail(scheme, key, f"must be a table (a JSON object), not {type(value).__name__}",
                    f"give a JSON object, e.g. {key}='{{\"name\": \"value\"}}'")
    return value


def _typed(scheme: str, key: str, value: Any, param: inspect.Parameter | None) -> None:
    default = None if param is None else param.default
    if isinstance(default, bool) and not isinstance(value, bool):
        raise _fail(scheme, key, f"must be true or false, not {value!r}", f"write {key}=true or {key}=false")
    if isinstance(default, (int, float)) and not isinstance(default, bool) and (
            isinstance(value, bool) or not isinstance(value, (int, float))):
        raise _fail(scheme, key, f"must be a number, not {value!r}", f"write {key}={default!r} or another number")


def _s3_config(value: dict[str, Any]) -> None:
    import botocore.config

    valid = sorted(botocore.config.Config.OPTION_DEFAULTS)
    for name in value:
        if name not in valid:
            near = difflib.get_close_matches(name, valid, 1)
            raise _fail("s3", f"config_kwargs.{name}", "is not a botocore Config setting",
                        (f"did you mean {near[0]}? " if near else "") + "valid: " + ", ".join(valid))


def check_options(scheme: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options with JSON tables decoded; StorageOptionInvalid (exit 2) names the first mistake."""
    if scheme == "memory" or not options:
        return dict(options)
    accepted = _accepted(scheme)
    out = dict(options)
    for key, value in options.items():
        if key not in accepted:
            near = difflib.get_close_matches(key, list(accepted), 1)
            raise _fail(scheme, key, "is unknown",
                        (f"did you mean {near[0]}? " if near else "") + "valid: " + ", ".join(sorted(accepted)))
        if key in _TABLES:
            out[key] = _table(scheme, key, value)
            if scheme == "s3" and key == "config_kwargs":
                _s3_config(out[key])
            continue
        _typed(scheme, key, value, accepted[key])
        if key in _FILES and isinstance(value, str) and not os.access(os.path.expanduser(value), os.R_OK):
            raise _fail(scheme, key, f"names {value}, which cannot be read",
                        "check the path and its permissions (the client runs as root, regen as you)")
    return out
