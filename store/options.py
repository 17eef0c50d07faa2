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
from collections.abc import Callable, Mapping
from typing import Any

from .errors import InvalidInput, StorageOptionInvalid

# regen's own options (each scheme, schemes/, maps them onto its library's settings)
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

__all__ = ["DEFAULT_MIN_RATE", "DEFAULT_TIMEOUT", "OWN_OPTIONS", "accepted", "check_botocore_config", "check_options",
           "known_hosts", "max_rate", "min_rate", "positive_seconds"]

DEFAULT_TIMEOUT = 30.0  # seconds to connect, and of silence while reading, before a server counts as dead
# a transfer averaging less than this (bytes/s) over `timeout` seconds is cut: a server trickling
# a byte now and then never trips the idle timeout, yet would hold a run for days (curl's
# --speed-limit/--speed-time); 0 turns the check off
DEFAULT_MIN_RATE = 1024.0


def _params(fn: Callable[..., Any], skip: tuple[str, ...] = ()) -> dict[str, inspect.Parameter]:
    return {n: p for n, p in inspect.signature(fn).parameters.items()
            if n not in ("self", *skip, *_OBJECTS) and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


def accepted(*consumers: tuple[Callable[..., Any], tuple[str, ...]]) -> dict[str, inspect.Parameter | None]:
    """Option name -> the parameter that takes it (its default gives the expected type): regen's own
    and fsspec's options, and the parameters of each (callable, names it fills itself) in `consumers`."""
    names: dict[str, inspect.Parameter | None] = dict.fromkeys((*OWN_OPTIONS, *_FSSPEC))
    for fn, skip in consumers:
        names.update(_params(fn, skip))
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


def check_botocore_config(value: dict[str, Any]) -> None:
    """StorageOptionInvalid unless every key of s3's config_kwargs table is a botocore Config setting."""
    import botocore.config

    valid = sorted(botocore.config.Config.OPTION_DEFAULTS)
    for name in value:
        if name not in valid:
            near = difflib.get_close_matches(name, valid, 1)
            raise _fail("s3", f"config_kwargs.{name}", "is not a botocore Config setting",
                        (f"did you mean {near[0]}? " if near else "") + "valid: " + ", ".join(valid))


def check_options(scheme: str, options: dict[str, Any], names_of: Callable[[], dict[str, inspect.Parameter | None]],
                  tables: Mapping[str, Callable[[dict[str, Any]], None]] | None = None) -> dict[str, Any]:
    """The options with JSON tables decoded; StorageOptionInvalid (exit 2) names the first mistake.

    `names_of` gives the names the scheme takes (called only when there are options: it imports
    the scheme's library); `tables` checks the content of the named tables further.
    """
    if not options:
        return dict(options)
    names = names_of()
    out = dict(options)
    for key, value in options.items():
        if key not in names:
            near = difflib.get_close_matches(key, list(names), 1)
            raise _fail(scheme, key, "is unknown",
                        (f"did you mean {near[0]}? " if near else "") + "valid: " + ", ".join(sorted(names)))
        if key in _TABLES:
            out[key] = _table(scheme, key, value)
            if tables and key in tables:
                tables[key](out[key])
            continue
        _typed(scheme, key, value, names[key])
        if key in _FILES and isinstance(value, str) and not os.access(os.path.expanduser(value), os.R_OK):
            raise _fail(scheme, key, f"names {value}, which cannot be read",
                        "check the path and its permissions (the client runs as root, regen as you)")
    return out


# -- regen's own options ----------------------------------------------------------------------------
def min_rate(value: Any, url: str) -> float:
    """The min_rate option: bytes/s, 0 for no cut."""
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


def positive_seconds(value: Any, url: str) -> float:
    """The timeout option: seconds, more than 0."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if not seconds > 0:
        raise InvalidInput(f"storage option timeout={value!r} for {url} is not a positive number of seconds",
                           hint="set timeout to the seconds to wait for the server, e.g. 30")
    return seconds


def known_hosts(value: str | None, takes_it: bool, url: str) -> str | None:
    """The known_hosts option of a scheme that `takes_it` (sftp); InvalidInput for any other."""
    if value is not None and not takes_it:
        raise InvalidInput(f"storage option known_hosts applies to sftp:// stores, not {url}",
                           hint="remove known_hosts from the storage options")
    return value
