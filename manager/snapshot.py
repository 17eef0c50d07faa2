"""`regen snapshot`: the reference tree becomes the channel's next signed generation (I/O).

The writer lock is held from before the walk until the record (and ref) are written, so
gc cannot sweep objects this snapshot relies on, and no other manager can take the same
generation number. A failure at any point writes no record: objects already uploaded are
harmless and gc collects them after its grace period.

Without --policy the new generation inherits the channel's current policy: forgetting the
file must never silently drop the `preserve` globs that keep user data safe on clients. That
policy, the parent, the base manifest and the numbering come only from records that verify
with the trusted keys (manager/trust.py): a forged ref is refused, never signed over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from regen.store import Policy, SecretKey, Store, StoreLock, utcnow

from .build import TreeBuild, build_tree
from .options import check_channel
from .progress import Progress
from .publish import unknown_key_warning, write_new_generation
from .trust import Trust, verified_ref

# A snapshot of a big tree can outlast the 1 h lease: the lock's heartbeat extends it, and the
# lease is re-checked before the record and the ref are written (manager/publish.py).


@dataclass(frozen=True, slots=True)
class SnapshotResult:
    channel: str
    number: int
    parent: int | None
    published: bool
    expires: str | None
    policy: Policy
    policy_from: str  # "file", "generation N" (inherited) or "default"
    tree: TreeBuild
    warnings: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "channel": self.channel, "number": self.number, "parent": self.parent, "published": self.published,
            "expires": self.expires, "policy": self.policy.as_dict(), "policy_from": self.policy_from,
            **self.tree.as_dict(), "warnings": list(self.warnings),
        }


def snapshot(store: Store, src: str, *, channel: str, message: str, key: SecretKey, policy: Policy | None,
             publish: bool, cache_dir: Path, expires: timedelta | None = None, progress: Progress | None = None,
             full: bool = False, now: datetime | None = None, one_file_system: bool = True,
             trust: Trust | None = None) -> SnapshotResult:
    """`trust`: the keys records must verify with (default: `key`'s public half only)."""
    check_channel(channel)
    _ = store.store_id
    warnings = [w for w in (unknown_key_warning(store, key),) if w]
    trust = trust or Trust({key.public.keyid: key.public})
    with StoreLock(store, "regen snapshot", heartbeat=True) as lock:
        found = verified_ref(store, channel, trust)
        current, before = found if found else (None, None)
        if policy is not None:
            policy_from = "file"
        elif current is not None:
            policy, policy_from = current.policy, f"generation {current.number}"
        else:
            policy, policy_from = Policy(), "default"
        tree = build_tree(store, src, exclude=policy.exclude, base=current.manifest if current else None,
                          cache_dir=cache_dir, progress=progress, full=full, one_file_system=one_file_system)
        when = now or utcnow()
        gen = write_new_generation(
            store, key, trust, lock, channel=channel, manifest=tree.manifest,
            parent=current.number if current else None,
            message=message, policy=policy, stats=tree.stats, expires=expires, now=when, publish=publish,
            current=current, expected_ref=before)
    warnings += [f"skipped {what}" for what in tree.skipped]
    return SnapshotResult(channel, gen.number, gen.parent, publish, gen.expires, policy, policy_from, tree,
                          tuple(warnings))
