"""What the steps of one run came to, the exit status they add up to, and loop protection (I/O: the index).

Why apart from the steps themselves: install, repair, update and the report all write to the
same few facts (which step failed and why, which succeeded, the exit status), and the rules
that combine them must be read in one place.

Loop protection: the index keeps, for each of TRACKED_STEPS, the signature of its last failure
and how many runs in a row failed that way. A step failing the same way
`failures.max_consecutive` runs in a row is skipped (and reported) instead of being retried
blindly, until a --verify run or until what it fails on changes; with
`failures.action = "quarantine"` it also refuses the start (`looping`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from regen.store import EXIT_FAILED, EXIT_OK, RegenError

if TYPE_CHECKING:
    from regen.daemon.run.reporting import RunLog
    from regen.daemon.tree.apply import ApplyResult
    from regen.daemon.tree.index import Index

__all__ = ["TRACKED_STEPS", "Steps", "looping"]

TRACKED_STEPS = ("install", "repair", "update")


class Steps:
    """The outcome of the steps of one run: `failed` (step -> one-line reason), `ok`, whether
    the run `updated` or `repaired` the tree, and `exit_code` so far. `verify`: a --verify run
    retries looping steps."""

    def __init__(self, log: RunLog, index: Index | None, max_consecutive: int, *, verify: bool) -> None:
        self.log = log
        self.index = index
        self.max_consecutive = max_consecutive
        self.verify = verify
        self.exit_code = EXIT_OK
        self.failed: dict[str, str] = {}
        self.ok: set[str] = set()
        self.updated = False
        self.repaired = False
        self.quarantined = False  # a procedure with failure = "quarantine" failed: the machine must not start

    def fail(self, step: str, exc: BaseException, **detail: Any) -> None:
        self.log.fail(step, exc, **detail)
        self.failed[step] = exc.one_line() if isinstance(exc, RegenError) else str(exc)

    def apply_failed(self, step: str, res: ApplyResult) -> None:
        """An apply left paths unfinished: the step failed (the next run resumes)."""
        path, msg = res.errors[0]
        more = f" (and {len(res.errors) - 1} more)" if len(res.errors) > 1 else ""
        self.failed[step] = f"{path}: {msg}"
        self.log.errors.extend(f"{step}: {p}: {m}" for p, m in res.errors[:50])
        self.log.warnings.append(f"{step} left {len(res.errors)} paths unfinished: {path}: {msg}{more}")
        self.exit_code = EXIT_FAILED

    def skip_looping(self, step: str) -> bool:
        """A step failing the same way max_consecutive runs in a row is not retried blindly:
        it is skipped (and reported) until a --verify run, or until what it fails on changes."""
        assert self.index is not None
        f = self.index.failure(step)
        limit = self.max_consecutive
        if f is None or f[1] < limit or self.verify:
            return False
        msg = f"{step} failed {f[1]} runs in a row ({f[2]}); not retried until a --verify run"
        self.log.step(step, "skipped", reason=msg)
        self.log.errors.append(msg)
        if step == "install":
            self.exit_code = EXIT_FAILED
        return True

    def remember(self) -> None:
        """Count this run's failures of the tracked steps in the index; a success clears the count."""
        assert self.index is not None
        with self.index.atomic():
            for step in TRACKED_STEPS:
                if step in self.failed:
                    msg = self.failed[step]
                    self.index.record_failure(step, _signature(msg), msg)
                elif step in self.ok:
                    self.index.clear_failure(step)

    def outcome(self) -> str:
        """The report's outcome; an install or repair that failed with errors makes the exit status 1."""
        if self.exit_code == EXIT_OK and self.log.errors and any(
                s.get("outcome") == "failed" for n, s in self.log.steps.items() if n in ("install", "repair")):
            self.exit_code = EXIT_FAILED
        if self.quarantined:
            return "quarantined"
        if self.log.errors:
            return "failing"
        if self.updated:
            return "updated"
        if self.repaired:
            return "repaired"
        return "ok"


def looping(index: Index, max_consecutive: int) -> list[str]:
    """The start-refusal reasons of the steps that failed max_consecutive runs in a row."""
    return [f"step {step} failed {count} runs in a row: {msg}"
            for step, (_sig, count, msg) in index.failures().items() if count >= max_consecutive]


def _signature(msg: str) -> str:
    """A failure "the same way": the same one-line message."""
    import hashlib

    return hashlib.sha256(msg.encode()).hexdigest()[:16]
