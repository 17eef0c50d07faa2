"""`regen root init|add-key|revoke-key|sign`: the store's root of trust and its rotation (I/O).

Root keys are offline keys (FORMAT.md §18): they sign only root versions, which list the
publisher keys. Every change is a new version N+1 that a threshold of version N's root keys
and of its own must sign; with root keys held by several people each signs in turn (`regen
root sign N`), and clients move to N+1 only once it is complete. The manager builds a new version
only on the newest version reachable from the operator's pinned root (`--trust-root`), never on
what the store alone says.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from regen.store import (
    PublicKey,
    Role,
    Root,
    SecretKey,
    Store,
    StoreLock,
    format_time,
    layout,
    sign_envelope,
    signatures_missing,
    update_root,
    utcnow,
    verify_root,
)
from regen.store.errors import IntegrityError, NotFound, StoreExists, TrustError, UnsupportedFormat

from .errors import BadOption, Untrusted


@dataclass(frozen=True, slots=True)
class RootResult:
    version: int
    store_id: str
    root_keys: tuple[str, ...]
    root_threshold: int
    publisher_keys: tuple[str, ...]
    missing: int  # root signatures still needed before clients accept this version

    def as_dict(self) -> dict[str, object]:
        return {"version": self.version, "store_id": self.store_id, "root_keys": list(self.root_keys),
                "root_threshold": self.root_threshold, "publisher_keys": list(self.publisher_keys),
                "missing_signatures": self.missing}


def _result(root: Root, missing: int) -> RootResult:
    return RootResult(root.version, root.store_id, root.roles["root"].keys, root.roles["root"].threshold,
                      root.roles["publisher"].keys, missing)


def load_pin(path: str | None, store: Store) -> Root:
    """The operator's pinned root (a copy of a root version it trusts), checked for this store."""
    if not path:
        raise BadOption("this command needs the pinned root of trust",
                        hint="pass --trust-root FILE (env REGEN_TRUST_ROOT), the file 'regen root init --out' wrote")
    try:
        with open(os.path.expanduser(path), "rb") as fp:
            data = fp.read(1 << 20)
    except OSError as exc:
        raise BadOption(f"pinned root {path} cannot be read: {exc.strerror}") from None
    try:
        root = verify_root(data, None, where=f"pinned root {path}")
    except (TrustError, IntegrityError, UnsupportedFormat) as exc:
        raise Untrusted(f"pinned root {path} is not a valid root: {exc}") from None
    if root.store_id != store.store_id:
        raise Untrusted(f"pinned root {path} is for store {root.store_id}, but {store.url} is store {store.store_id}")
    return root


def newest_root(store: Store, pin: Root) -> Root:
    """The newest root version reachable from the pin; a version that does not verify is refused."""
    root, error = update_root(pin, store.read_root)
    if error is not None:
        raise Untrusted(f"root version {root.version + 1} does not verify: {error}",
                        hint=f"finish it with 'regen root sign {root.version + 1}' or remove the forged file")
    return root


def publisher_keys(store: Store, pin_path: str) -> dict[str, PublicKey]:
    """The publisher keys of the newest root: the manager's trust when it is configured with a root."""
    return newest_root(store, load_pin(pin_path, store)).role_keys("publisher")


def init_root(store: Store, root_keys: Sequence[SecretKey], threshold: int, publishers: Sequence[PublicKey],
              out: str | None, now: datetime | None = None) -> RootResult:
    """Write root version 1 (signed by every given root key) and, with `out`, the pin file for clients."""
    if not root_keys or not publishers:
        raise BadOption("a root needs at least one --root-key and one --publisher-key")
    if not 1 <= threshold <= len(root_keys):
        raise BadOption(f"--threshold {threshold} must be between 1 and the number of root keys ({len(root_keys)})")
    keys = {k.public.keyid: k.public for k in root_keys} | {p.keyid: p for p in publishers}
    root = Root(store.store_id, 1, format_time(now or utcnow()), keys,
                {"root": Role(tuple(sorted(k.public.keyid for k in root_keys)), threshold),
                 "publisher": Role(tuple(sorted(p.keyid for p in publishers)), 1)})
    env = sign_envelope(root.to_record(), list(root_keys))
    verify_root(env, None)
    with StoreLock(store, "regen root init"):
        try:
            store.backend.create_exclusive(layout.root_path(1), env)
        except StoreExists:
            raise StoreExists(f"{store.url} already has a root of trust",
                              hint="change it with 'regen root add-key' or 'regen root revoke-key'") from None
    if out:
        _write_pin(out, env)
    return _result(root, 0)


def _write_pin(path: str, env: bytes) -> None:
    try:
        fd = os.open(os.path.expanduser(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as exc:
        raise BadOption(f"cannot create the pin file {path}: {exc.strerror}", hint="choose a new file name") from None
    with os.fdopen(fd, "wb") as fp:
        fp.write(env)


def change_root(store: Store, pin_path: str | None, root_keys: Sequence[SecretKey],
                change: Callable[[Root], Root], owner: str, now: datetime | None = None) -> RootResult:
    """Write version N+1 = change(newest), signed by the given root keys (more may sign it later)."""
    if not root_keys:
        raise BadOption("a new root version must be signed by root keys", hint="pass --root-key FILE")
    with StoreLock(store, owner):
        current = newest_root(store, load_pin(pin_path, store))
        new = replace(change(current), version=current.version + 1, created=format_time(now or utcnow()))
        Root.from_record(new.to_record())  # refuse a root no client could accept (threshold above the keys)
        env = sign_envelope(new.to_record(), list(root_keys))
        try:
            store.backend.create_exclusive(layout.root_path(new.version), env)
        except StoreExists:
            raise StoreExists(f"root version {new.version} already exists") from None
    return _result(new, signatures_missing(env, new, current))


def add_key(role: str, key: PublicKey) -> Callable[[Root], Root]:
    def change(r: Root) -> Root:
        if key.keyid in r.roles[role].keys:
            raise BadOption(f"key {key.keyid} already has the {role} role")
        roles = dict(r.roles)
        roles[role] = Role(tuple(sorted((*r.roles[role].keys, key.keyid))), r.roles[role].threshold)
        return replace(r, keys={**r.keys, key.keyid: key}, roles=roles)
    return change


def revoke_key(keyid: str, threshold: int | None = None) -> Callable[[Root], Root]:
    def change(r: Root) -> Root:
        if keyid not in r.keys:
            raise BadOption(f"key {keyid} is not in root version {r.version}")
        roles = {}
        for name, role in r.roles.items():
            keys = tuple(k for k in role.keys if k != keyid)
            if not keys:
                raise BadOption(f"revoking {keyid} would leave the {name} role without keys",
                                hint=f"add its successor first with 'regen root add-key FILE.pub --role {name}'")
            t = threshold if threshold is not None and name == "root" else min(role.threshold, len(keys))
            roles[name] = Role(keys, t)
        used = {k for role in roles.values() for k in role.keys}
        return replace(r, keys={k: v for k, v in r.keys.items() if k in used}, roles=roles)
    return change


def sign_root(store: Store, pin_path: str | None, version: int, root_keys: Sequence[SecretKey]) -> RootResult:
    """Add the given root keys' signatures to stored version `version` (a ceremony across people)."""
    with StoreLock(store, "regen root sign"):
        pin = load_pin(pin_path, store)
        previous, _ = update_root(pin, lambda v: store.read_root(v) if v < version else None)
        if previous.version != version - 1:
            raise Untrusted(f"root version {version - 1} is not reachable from the pinned root")
        try:
            data = store.backend.read(layout.root_path(version))
        except NotFound:
            raise BadOption(f"root version {version} does not exist") from None
        env = json.loads(data)
        root = Root.from_record(env["signed"], f"root version {version}")
        if root.version != version or root.store_id != store.store_id:
            raise Untrusted(f"root/{version:010d}.json is not version {version} of this store's root")
        have = {s.get("keyid") for s in env["signatures"] if isinstance(s, dict)}
        extra = json.loads(sign_envelope(env["signed"], [k for k in root_keys if k.public.keyid not in have]))
        env["signatures"] += extra["signatures"]
        out = json.dumps(env, sort_keys=True, separators=(",", ":")).encode() + b"\n"
        store.backend.write(layout.root_path(version), out)
    return _result(root, signatures_missing(out, root, previous))


__all__ = ["RootResult", "add_key", "change_root", "init_root", "load_pin", "newest_root", "publisher_keys",
           "revoke_key", "sign_root"]
