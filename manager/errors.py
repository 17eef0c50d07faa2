"""Errors of regen.manager (the `regen` CLI), under regen.store's RegenError.

    RegenError                       (regen.store.errors)
    └── ManagerError
        ├── BadOption            (2) an option value regen cannot use: -o KEY=VALUE, a duration
        ├── MissingKey           (2) a signing command without --key / REGEN_KEY
        ├── SourceInvalid        (2) the tree to snapshot is not acceptable: not a directory,
        │                            a name that is not UTF-8, a path too long for a manifest
        ├── NotPublishable       (2) publish/rollback that would not help clients (older number,
        │                            nothing to roll back to)
        ├── StoreNotEmpty        (2) `regen init` over a location that already holds other data
        ├── OverlayNotFound      (2) `host show/rm` of a host without an overlay
        ├── HostNotEnrolled      (2) `host set` of a host whose key is not enrolled (nothing to seal
        │                            its files to) without --plaintext
        ├── HostNotFound         (2) `regen history HOST` of a host that never reported
        ├── RefMoved             (2) the channel's ref changed while a publish ran (another
        │                            publisher won); it was not overwritten
        ├── Untrusted            (2) a record the manager would build on (ref, rollback target,
        │                            overlay, numbering) does not verify with the trusted keys
        ├── SnapshotFailed       (1) the tree could not be read or uploaded; nothing was published
        │   └── FileChanged      (1) a file changed (or vanished) while it was read
        └── DamageFound          (1) `regen fsck` found damage

Store errors (StoreNotFound, LockHeld, GenerationNotFound, KeyInvalid, PolicyInvalid, ...) pass
through unchanged: they already say what is wrong and what to do. `regen` prints every one of
them as ``regen: error: <message> (<hint>)`` and exits with its ``exit_code``.
"""

from __future__ import annotations

from regen.store.errors import EXIT_FAILED, EXIT_USAGE, RegenError


class ManagerError(RegenError):
    pass


class BadOption(ManagerError):
    exit_code = EXIT_USAGE
    default_hint = "see 'regen COMMAND --help'"


class MissingKey(ManagerError):
    exit_code = EXIT_USAGE
    default_hint = "pass --key FILE or set REGEN_KEY (create a key pair with 'regen keygen FILE')"


class SourceInvalid(ManagerError):
    exit_code = EXIT_USAGE
    default_hint = "rename or remove it, or leave it out with an 'exclude' glob in the policy file"


class NotPublishable(ManagerError):
    exit_code = EXIT_USAGE
    default_hint = "list generations with 'regen log'"


class HostNotFound(ManagerError):
    exit_code = EXIT_USAGE
    default_hint = "see 'regen status' for the hosts that report"


class StoreNotEmpty(ManagerError):
    exit_code = EXIT_USAGE
    default_hint = "choose an empty location for a new store"


class OverlayNotFound(ManagerError):
    exit_code = EXIT_USAGE
    default_hint = "set one with 'regen host set HOST DIR'"


class HostNotEnrolled(ManagerError):
    exit_code = EXIT_USAGE
    default_hint = ("run 'regen host enroll {host} FILE' first (FILE from 'regend host-key' on the host), or pass "
                    "--plaintext to store the overlay readable by every client")


class RefMoved(ManagerError):
    exit_code = EXIT_USAGE
    default_hint = "see 'regen log'; publish again if this generation should still win"


class Untrusted(ManagerError):
    exit_code = EXIT_USAGE
    default_hint = ("check the store with 'regen fsck'; if the record was tampered with, publish a verified "
                    "generation with 'regen publish N' (trust comes only from --key and --trusted-key)")


class SnapshotFailed(ManagerError):
    exit_code = EXIT_FAILED
    default_hint = "no generation was written; fix the cause and run the snapshot again"


class FileChanged(SnapshotFailed):
    default_hint = "no generation was written; snapshot again when the tree is no longer being written"


class DamageFound(ManagerError):
    exit_code = EXIT_FAILED
    default_hint = ("run 'regen fsck --repair' to set corrupt objects aside, then 'regen snapshot --full' "
                    "of the reference to upload missing content again")


__all__ = [
    "BadOption",
    "DamageFound",
    "FileChanged",
    "ManagerError",
    "MissingKey",
    "NotPublishable",
    "OverlayNotFound",
    "RefMoved",
    "SnapshotFailed",
    "SourceInvalid",
    "StoreNotEmpty",
    "Untrusted",
]
