"""Fixtures of the store tests: a store on each local scheme, and publishing helpers.

`store` runs a test on memory:// and on file:// (real backends have their own contract
suite). `Publisher` writes real generations in the fixed publish order, through the public
API only, so tests read like what the manager does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from regen.store import (
    Entry,
    Generation,
    Overlay,
    Policy,
    SecretKey,
    Store,
    build_manifest,
    format_time,
    object_id,
    utcnow,
    xxh,
)


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest) -> Store:
    """An empty, initialised store on memory:// and on file:// (the test runs once for each)."""
    return request.getfixturevalue(f"{'mem' if request.param == 'memory' else 'file'}_store")  # type: ignore[no-any-return]


def tree_entries(files: dict[str, bytes], symlinks: dict[str, str] | None = None) -> list[Entry]:
    """Entries for `files` (path -> content) and `symlinks` (path -> target), parent dirs included."""
    entries: dict[str, Entry] = {}
    for path in [*files, *(symlinks or {})]:
        parts = path.split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            entries[d] = Entry(d, "dir", 0o755)
    for path, data in files.items():
        entries[path] = Entry(path, "file", 0o644, len(data), object_id(data), xxh(data))
    for path, target in (symlinks or {}).items():
        entries[path] = Entry(path, "symlink", 0o777, target=target)
    return list(entries.values())


@dataclass
class Publisher:
    """Publishes trees into `store` the way the manager does: objects, manifest, record, ref."""

    store: Store
    key: SecretKey
    envelopes: dict[tuple[str, int], bytes] = field(default_factory=dict)

    def manifest(self, files: dict[str, bytes], symlinks: dict[str, str] | None = None) -> str:
        for data in files.values():
            self.store.put(data)
        data, moid, _ = build_manifest(tree_entries(files, symlinks))
        self.store.put(data)
        return moid

    def generation(self, files: dict[str, bytes], *, channel: str = "stable", number: int = 1,
                   ref: bool = True, expires: str | None = None, policy: Policy = Policy()) -> Generation:
        moid = self.manifest(files)
        gen = Generation(self.store.store_id, channel, number, moid, format_time(utcnow()),
                         number - 1 if number > 1 else None, f"generation {number}", policy,
                         {"files": len(files)}, expires)
        env = self.store.write_generation(gen, [self.key])
        self.envelopes[(channel, number)] = env
        if ref:
            self.store.set_ref(channel, env)
        return gen

    def overlay(self, host: str, files: dict[str, bytes] | None, number: int = 1) -> Overlay:
        moid = self.manifest(files) if files is not None else None
        ov = Overlay(self.store.store_id, host, number, moid, format_time(utcnow()), "overlay")
        self.store.write_overlay(ov, [self.key])
        return ov


@pytest.fixture
def publisher(store: Store, signing_key: SecretKey) -> Publisher:
    return Publisher(store, signing_key)


def object_file(store: Store, oid: str) -> Path:
    """The local file of object `oid` in a file:// store."""
    assert store.url.startswith("file://")
    return Path(store.url[len("file://"):]) / "objects" / oid[:2] / oid[2:]
