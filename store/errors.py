"""Errors of regen.store, and the root of every regen error.

    RegenError                      exit_code, hint, show_traceback, offline, retry_after, failure
    └── StoreError
        ├── InvalidInput            (2) bad user input: URL, name, key file, policy, option
        │   ├── InvalidURL
        │   ├── InvalidName
        │   ├── KeyInvalid
        │   ├── PolicyInvalid
        │   └── StorageOptionInvalid  a storage option a scheme does not take, of the wrong type, bad JSON
        ├── StoreNotFound           (2) no regen store at the URL
        ├── StoreExists             (2) init over an existing store
        ├── UnsupportedFormat       (2) store/record needs a newer regen
        ├── StoreReadOnly           (2) write attempted on a read-only backend (http)
        ├── StoreAccessDenied       (2) permission denied by the backend
        ├── LockHeld                (2) another manager holds the writer lock
        ├── GenerationNotFound      (2) no such generation / channel / overlay
        ├── StoreUnreachable        (1) network or server failure (transient)
        ├── ObjectMissing           (1) a referenced object is absent
        ├── NotFound                (1) a path is absent (backend level; the facade refines it)
        ├── IntegrityError          (1) data does not match what it claims
        │   ├── ObjectCorrupt
        │   ├── ManifestInvalid
        │   └── RecordTooLarge
        └── TrustError              (1) a record that must not be accepted
            ├── RecordInvalid       malformed record or envelope
            ├── BadSignature
            ├── UnknownKey
            ├── RecordMismatch      signed for another store / channel / host
            ├── RollbackRefused
            └── RecordExpired

Every class carries the fields a user needs (url, path, id, ...) as attributes,
formats one line with `str(e)`, and gives a one-line `hint`. The CLIs print
``regen: error: <message> (<hint>)`` and exit with ``exit_status(exc)``: the class's
``exit_code`` for a RegenError, the constants below for the rest. Class attributes say how a
client treats an error, so no caller compares class names: ``offline`` (the store cannot be read
now: a client goes on from its local copies) and ``retry_after`` (seconds the server asked to wait,
set per instance from a Retry-After header) and ``failure``, the failure class a client reports
(FAILURES: the store is *unreachable*, the client is *misconfigured* for it, the store is *damaged*).
"""

from __future__ import annotations

import signal
from typing import Any

from .text import redact

# The exit statuses of both CLIs, defined here only (README "Exit status" lists them).
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_QUARANTINED = 3
# `regend run`: the machine may start, but the store could not give this run what it needed, by
# failure class (listed in SuccessExitStatus= of regend-boot.service, so the gate still opens)
EXIT_UNREACHABLE = 10  # network, timeout, HTTP 5xx: ran from the local copies; the next run retries
EXIT_MISCONFIGURED = 11  # 401/403, no store at the URL, unknown channel, bad storage options: fix regend.toml
EXIT_DAMAGED = 12  # an object in the store does not match its id: run 'regen fsck' on the store
EXIT_INTERNAL = 70  # a bug: EX_SOFTWARE of sysexits.h, printed with its traceback
EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130: Ctrl-C
EXIT_SIGTERM = 128 + signal.SIGTERM  # 143: stopped; the current file was finished
EXIT_SIGPIPE = 128 + signal.SIGPIPE  # 141: the reader of stdout went away

UNREACHABLE = "unreachable"
MISCONFIGURED = "misconfigured"
DAMAGED = "damaged"
# failure class -> the exit status of a `regend run` that could still let the machine start
FAILURES = {UNREACHABLE: EXIT_UNREACHABLE, MISCONFIGURED: EXIT_MISCONFIGURED, DAMAGED: EXIT_DAMAGED}
# what a client does about each, after its one-line message
FAILURE_FIX = {
    UNREACHABLE: "ran from the local copies; the next run retries",
    MISCONFIGURED: "fix the store URL, credentials, channel or storage options in regend.toml (or the store)",
    DAMAGED: "the update was refused; run 'regen fsck --repair' on the store, then snapshot again",
}


class RegenError(Exception):
    """Base of every error a regen CLI turns into one line and an exit status."""

    exit_code: int = EXIT_FAILED
    show_traceback: bool = False
    template: str = "{message}"
    default_hint: str = ""
    offline: bool = False  # the store cannot be read now (not "the store said no"): a client runs from cache
    retry_after: float | None = None  # seconds the server asked to wait (Retry-After), per instance
    failure: str | None = None  # the failure class a client reports (FAILURES), None: none of them

    def __init__(self, message: str | None = None, *, hint: str | None = None, **fields: Any) -> None:
        self.fields = fields
        for key, value in fields.items():
            setattr(self, key, value)
        if message is None:
            try:
                message = self.template.format(**fields)
            except (KeyError, IndexError):
                message = self.template
        self.message = redact(message)  # a store URL's password never reaches a terminal, log or report
        hint = hint if hint is not None else self.default_hint.format(**fields) if fields else self.default_hint
        self.hint = redact(hint)
        super().__init__(message)

    def __str__(self) -> str:
        return self.message

    def one_line(self) -> str:
        """The message and hint on one line, newlines in paths made visible."""
        text = self.message if not self.hint else f"{self.message} ({self.hint})"
        return text.replace("\n", "\\n")


class StoreError(RegenError):
    pass


class InvalidInput(StoreError):
    failure = MISCONFIGURED
    exit_code = EXIT_USAGE


class InvalidURL(InvalidInput):
    offline = True
    default_hint = "use file:///path, s3://bucket/prefix, smb://host/share/path, sftp://host/path or https://host/path"


class InvalidName(InvalidInput):
    default_hint = "names are 1-64 characters of letters, digits, '.', '_' and '-', starting with a letter or digit"


class KeyInvalid(InvalidInput):
    default_hint = "create a key pair with 'regen keygen FILE'"


class PolicyInvalid(InvalidInput):
    default_hint = "see the example policy: regend example-config --policy (contrib/policy.toml)"


class StorageOptionInvalid(InvalidInput):
    offline = True  # a client cannot read its store with it: it runs from cache (and says it is misconfigured)
    default_hint = "see contrib/backends/ for each scheme's options"


class StoreNotFound(StoreError):
    failure = MISCONFIGURED
    offline = True
    exit_code = EXIT_USAGE
    default_hint = "check the URL, or create a store with 'regen init URL'"


class StoreExists(StoreError):
    exit_code = EXIT_USAGE
    default_hint = "choose an empty location, or use the existing store"


class UnsupportedFormat(StoreError):
    exit_code = EXIT_USAGE
    default_hint = "upgrade regen to a version that supports it"


class StoreReadOnly(StoreError):
    exit_code = EXIT_USAGE
    default_hint = "http(s) stores are read-only; write through the store's file/s3/smb/sftp URL"


class StoreAccessDenied(StoreError):
    failure = MISCONFIGURED
    offline = True
    exit_code = EXIT_USAGE
    default_hint = "check the credentials and permissions for this store"


class LockHeld(StoreError):
    exit_code = EXIT_USAGE
    default_hint = "wait for it to finish, or run 'regen unlock' if that process is gone"


class GenerationNotFound(StoreError):
    failure = MISCONFIGURED
    exit_code = EXIT_USAGE
    default_hint = "list generations with 'regen log'"


class StoreUnreachable(StoreError):
    failure = UNREACHABLE
    offline = True
    exit_code = EXIT_FAILED
    default_hint = "check the network and the server; the operation can be retried"


class ObjectMissing(StoreError):
    failure = DAMAGED
    exit_code = EXIT_FAILED
    default_hint = "the store is damaged; run 'regen fsck'"


class NotFound(StoreError):
    failure = DAMAGED
    offline = True
    exit_code = EXIT_FAILED
    default_hint = "the store may be incomplete or the path wrong"


class IntegrityError(StoreError):
    exit_code = EXIT_FAILED


class ObjectCorrupt(IntegrityError):
    failure = DAMAGED  # (a manifest or record refused for its content is a refusal, not damage)
    default_hint = "the copy is damaged; run 'regen fsck' on the store"


class ManifestInvalid(IntegrityError):
    default_hint = "this manifest cannot be applied safely; it was refused"


class RecordTooLarge(IntegrityError):
    default_hint = "raise the configured limit if this size is expected"


class TrustError(StoreError):
    exit_code = EXIT_FAILED
    default_hint = "the record was refused; check trusted keys and the store"


class RecordInvalid(TrustError):
    pass


class BadSignature(TrustError):
    default_hint = "the record was altered or signed with another key; it was refused"


class UnknownKey(TrustError):
    default_hint = "add the signer's public key to the trusted keys if it is legitimate"


class RecordMismatch(TrustError):
    default_hint = "the record belongs elsewhere and was refused (replay)"


class RollbackRefused(TrustError):
    default_hint = "publish the old content as a new generation with 'regen rollback'"


class RecordExpired(TrustError):
    default_hint = "publish a fresh generation (an unchanged snapshot is cheap)"


def exit_status(exc: BaseException) -> int:
    """The exit status a CLI ends with after `exc`: the one mapping both regen and regend use."""
    if isinstance(exc, RegenError):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, BrokenPipeError):
        return EXIT_SIGPIPE
    code = getattr(exc, "exit_code", None)  # click's usage errors (typer vendors click): their own status
    if isinstance(code, int) and not isinstance(code, bool) and all(
            hasattr(exc, a) for a in ("format_message", "show")):
        return code
    return EXIT_INTERNAL


__all__ = [
    "DAMAGED", "EXIT_DAMAGED", "EXIT_FAILED", "EXIT_INTERNAL", "EXIT_INTERRUPTED", "EXIT_MISCONFIGURED", "EXIT_OK",
    "EXIT_QUARANTINED", "EXIT_SIGPIPE", "EXIT_SIGTERM", "EXIT_UNREACHABLE", "EXIT_USAGE", "FAILURES", "FAILURE_FIX",
    "MISCONFIGURED", "UNREACHABLE", "exit_status",
    "RegenError",
    "StoreError",
    "InvalidInput",
    "InvalidURL",
    "InvalidName",
    "KeyInvalid",
    "PolicyInvalid",
    "StorageOptionInvalid",
    "StoreNotFound",
    "StoreExists",
    "UnsupportedFormat",
    "StoreReadOnly",
    "StoreAccessDenied",
    "LockHeld",
    "GenerationNotFound",
    "StoreUnreachable",
    "ObjectMissing",
    "NotFound",
    "IntegrityError",
    "ObjectCorrupt",
    "ManifestInvalid",
    "RecordTooLarge",
    "TrustError",
    "RecordInvalid",
    "BadSignature",
    "UnknownKey",
    "RecordMismatch",
    "RollbackRefused",
    "RecordExpired",
]
