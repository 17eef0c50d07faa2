"""`regend` entry point: the one top-level handler (R6).

Exit statuses:
  0    ok; for `run`: the machine may start its software (repairs and updates included)
  1    the run failed (the state is consistent; the next run resumes), or another run holds the lock
  2    usage error or bad configuration
  3    `run`: quarantined -- the machine must not start its software
  10   `run`: may start; the store was unreachable (network, timeout, HTTP 5xx); ran from local copies
  11   `run`: may start; misconfigured for the store (401/403, no store at the URL, unknown channel,
       bad storage options): fix regend.toml
  12   `run`: may start; the store is damaged (an object does not match its id); the update was refused
  70   internal error (a bug: a traceback is printed)
  130  interrupted (Ctrl-C); 128+N when ended by signal N. SIGTERM (143) lets the current file finish.
"""

from __future__ import annotations

import os
import sys

from regen.store.errors import EXIT_INTERNAL, RegenError, exit_status


def main() -> None:
    from regen.daemon import render
    try:
        from regen.daemon import oneshot

        lean = oneshot.parse(sys.argv[1:])
        if lean is not None:  # run --once and check, without the typer app
            code = oneshot.main(*lean)
            sys.stdout.flush()
            sys.exit(code)
        from regen.daemon.cli import app

        app(prog_name="regend")
    except RegenError as exc:
        render.error(exc)
        sys.exit(exit_status(exc))
    except KeyboardInterrupt as exc:
        render.interrupted()
        sys.exit(exit_status(exc))
    except BrokenPipeError as exc:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(exit_status(exc))
    except Exception:  # noqa: BLE001 - the last resort: a bug, shown with its traceback
        render.internal_error()
        sys.exit(EXIT_INTERNAL)


if __name__ == "__main__":
    main()
