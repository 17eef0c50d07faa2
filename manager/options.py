"""Turning command-line values into the values the library takes (pure, except opening things).

Everything read from the environment is read by the commands and passed in here
(`default_cache_dir(environ)`), never looked up deep inside the library.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from regen.store import (
    Policy,
    PolicyInvalid,
    Procedure,
    SecretKey,
    Store,
    layout,
    load_policy_toml,
    load_secret_key,
    open_store,
)
from regen.store import parse_duration as store_duration

from .errors import BadOption, MissingKey
from .trust import Trust, load_trust


def parse_value(text: str) -> Any:
    """A storage option's value: true/false, an integer, JSON (lists, objects, quoted), else the string."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if re.fullmatch(r"[+-]?\d+", text.strip()):
        return int(text.strip())
    if text[:1] in ("{", "[", '"') or re.fullmatch(r"[+-]?\d+\.\d*(e[+-]?\d+)?", low):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def parse_storage_options(items: Sequence[str] | None) -> dict[str, Any]:
    """`-o KEY=VALUE` pairs into fsspec storage options (later ones win)."""
    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BadOption(f"storage option {item!r} is not KEY=VALUE", hint="for example -o endpoint_url=http://host:9000")
        out[key.strip()] = parse_value(value)
    return out


def parse_duration(text: str, option: str) -> timedelta:
    """A positive duration in regen.store's one grammar: '30d', '12h', '1h30m', '45s', '2w' or seconds."""
    try:
        seconds = store_duration(text)
    except ValueError:
        seconds = 0.0
    if seconds <= 0:
        raise BadOption(f"{option} {text!r} is not a duration",
                        hint="use a positive number with a unit: 45s, 90m, 1h30m, 12h, 30d, 2w")
    return timedelta(seconds=seconds)


def parse_expires(text: str | None) -> timedelta | None:
    """--expires: None (never) or a duration."""
    return parse_duration(text, "--expires") if text else None


def default_cache_dir(environ: Mapping[str, str]) -> Path:
    """$XDG_CACHE_HOME/regen, else ~/.cache/regen (the snapshot stat caches live there)."""
    base = environ.get("XDG_CACHE_HOME") or os.path.join(environ.get("HOME") or os.path.expanduser("~"), ".cache")
    return Path(base) / "regen"


def connect(url: str | None, storage_options: Sequence[str] | None) -> Store:
    """Open the store at `url` and read its config now, so a wrong URL fails before any work."""
    store = open_store(url or "", parse_storage_options(storage_options))
    _ = store.config
    return store


def load_key(path: str | None, command: str) -> SecretKey:
    if not path:
        raise MissingKey(f"'regen {command}' signs what it writes and needs a secret key")
    return load_secret_key(os.path.expanduser(path))


def trust(key: SecretKey | str | None, trusted_keys: Sequence[str] | None, trust_root: str | None = None,
          store: Store | None = None) -> Trust:
    """The keys the manager accepts signatures from: --key's public half, each --trusted-key file, and
    with --trust-root the publisher keys of the newest root version reachable from that pin."""
    from .roots import publisher_keys

    signing = optional_key(key) if isinstance(key, str) or key is None else key
    base = load_trust(signing, trusted_keys)
    if not trust_root or store is None:
        return base
    return Trust({**base.keys, **publisher_keys(store, trust_root)})


def optional_key(path: str | None) -> SecretKey | None:
    return load_secret_key(os.path.expanduser(path)) if path else None


def load_policy(path: Path | None) -> Policy | None:
    """The policy file's rules, or None to inherit the channel's current policy."""
    return None if path is None else load_policy_toml(os.path.expanduser(str(path)))


def load_overlay_procedures(path: Path | None) -> tuple[Procedure, ...]:
    """`regen host set --procedures FILE`: only `[[procedure]]` tables (an overlay has no other rules)."""
    if path is None:
        return ()
    where = os.path.expanduser(str(path))
    policy = load_policy_toml(where)
    if replace(policy, procedures=()) != Policy():
        raise PolicyInvalid(f"procedures file {where} may only hold [[procedure]] tables",
                            hint="a host overlay carries files and procedures; other rules belong to the "
                                 "channel's policy (regen snapshot --policy)")
    return policy.procedures


def check_channel(channel: str) -> str:
    return layout.check_name(channel, "channel")


def check_host(host: str) -> str:
    return layout.check_name(host, "host")


def resolve_channel(store: Store, channel: str | None) -> str:
    """The given channel, or the store's only channel when there is exactly one."""
    if channel is not None:
        return check_channel(channel)
    channels = store.channels()
    if len(channels) == 1:
        return channels[0]
    if not channels:
        raise BadOption(f"store {store.url} has no channel yet",
                        hint="create a generation with 'regen snapshot SRC --channel NAME'")
    raise BadOption(f"store {store.url} has several channels ({', '.join(channels)})", hint="pass --channel NAME")
