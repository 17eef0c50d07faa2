"""Errors of regen.daemon (pure).

    RegenError (regen.store.errors)
    └── DaemonError                   (1) base of everything regend raises itself
        ├── ConfigInvalid             (2) regend.toml missing, unreadable or wrong; names file, key, expectation
        │   ├── HardwareConfigInvalid     a [hardware] setting regend cannot use
        │   └── ScheduleConfigInvalid     a [schedule] setting regend cannot use
        ├── UsageError                (2) a command-line combination that cannot work
        ├── RunLocked                 (1) another regend run holds the state directory's lock
        ├── NotInstalled              (1) nothing installed and the store could not provide a generation
        ├── ChannelNotFound           (1) the configured channel has no ref in the store (misconfigured)
        ├── UnsafePath                (1) a write would leave root or go through a symlink; refused
        ├── NoSpace                   (1) not enough free space for an update; nothing was changed
        ├── QuarantineFull            (1) a file does not fit the quarantine budget or disk; left in place
        ├── IndexCorrupt              (1) the system log cannot be read (set aside and rebuilt)
        ├── RecoverError              (2) `regend recover`: unknown run id or path, or target exists
        ├── ContentError              (1) a file's bytes could not be had or did not hash to its id
        ├── FetchFailed               (1) objects of the target could not be fetched; the next run retries
        ├── PathTooLong               (1) a generation's path does not fit below this client's root
        ├── PathCollision             (1) two paths fold to one name on a case-insensitive root
        ├── ApplyFailed               (1) some entries could not be written; the next run resumes
        └── Interrupted               (143) SIGTERM: the current file was finished, the run stopped

Every class carries the fields a user needs as attributes and a one-line hint; `regend`'s
main() prints ``regend: error: <message> (<hint>)`` and exits with ``exit_code``.
"""

from __future__ import annotations

from regen.store.errors import EXIT_FAILED, EXIT_SIGTERM, EXIT_USAGE, MISCONFIGURED, RegenError


class DaemonError(RegenError):
    exit_code = EXIT_FAILED


class ConfigInvalid(DaemonError):
    exit_code = EXIT_USAGE
    default_hint = "see every key with its meaning: regend example-config"


class HardwareConfigInvalid(ConfigInvalid):
    default_hint = "see the expected keys in the example regend.toml: regend example-config"


class ScheduleConfigInvalid(ConfigInvalid):
    default_hint = "see the expected keys in the example regend.toml: regend example-config"


class UsageError(DaemonError):
    exit_code = EXIT_USAGE
    default_hint = "see 'regend --help'"


class RunLocked(DaemonError):
    default_hint = "another regend run is in progress; wait for it, or pass --wait"


class NotInstalled(DaemonError):
    default_hint = "check the store URL, channel and network; the next run retries"


class ChannelNotFound(DaemonError):
    failure = MISCONFIGURED
    default_hint = ("check 'channel' in regend.toml against the channels 'regen status' lists; "
                    "the installed generation stays")


class UnsafePath(DaemonError):
    default_hint = "a symlink or a file stands where a directory of the tree belongs; it was not followed"


class NoSpace(DaemonError):
    default_hint = "free disk space (regend recover --list shows what quarantine holds) and run again"


class QuarantineFull(DaemonError):
    default_hint = ("the file was left in place; free space in state_dir, or raise [quarantine] max_run_bytes "
                    "or lower [limits] min_free_bytes")


class IndexCorrupt(DaemonError):
    default_hint = "the damaged file was set aside; the next run rebuilds it with a full verify"


class RecoverError(DaemonError):
    exit_code = EXIT_USAGE
    default_hint = "list what can be recovered with 'regend recover --list'"


class ContentError(DaemonError):
    default_hint = "nothing was renamed into place; the next run fetches the object again"


class FetchFailed(DaemonError):
    default_hint = "the store may be damaged or unreachable; the next run retries"


class PathTooLong(DaemonError):
    default_hint = "shorten the path in the reference tree or exclude it, or use a shorter client root"


class PathCollision(DaemonError):
    default_hint = ("rename or exclude one of the two paths in the reference tree (this client's root "
                    "folds letter case); nothing was changed")


class ApplyFailed(DaemonError):
    default_hint = "the tree is consistent up to the failed entries; the next run resumes"


def signal_name(stop: object) -> str:
    """The signal that set a run's stop event (prepare_run records it), by name: SIGINT, SIGTERM."""
    import signal

    try:
        return signal.Signals(getattr(stop, "signum", signal.SIGTERM)).name
    except ValueError:
        return "a signal"


class Interrupted(DaemonError):
    exit_code = EXIT_SIGTERM
    default_hint = "the current file was finished first; the next run resumes"


__all__ = [
    "ApplyFailed", "ChannelNotFound", "ConfigInvalid", "ContentError", "DaemonError", "FetchFailed",
    "HardwareConfigInvalid", "IndexCorrupt", "Interrupted", "NoSpace", "NotInstalled", "PathCollision", "PathTooLong",
    "QuarantineFull", "RecoverError", "RunLocked", "ScheduleConfigInvalid", "UnsafePath", "UsageError", "signal_name",
]
