"""`regen` entry point: the one top-level handler (R6).

Exit statuses:
  0    success
  1    the operation failed, or `fsck` found damage
  2    usage error or bad input: no store at the URL, bad or missing key, unknown generation,
       store locked by another regen, bad policy file, bad option value
  70   internal error (a bug in regen: a traceback is printed; EX_SOFTWARE from sysexits.h)
  130  interrupted (Ctrl-C); 128+N when ended by signal N (SIGTERM: 143). The store lock is
       released on the way out.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

from regen.store.errors import EXIT_INTERNAL, RegenError, exit_status


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds: `with StoreLock(...)` releases the lock


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    from . import render  # imported here so an import-time bug still gets the handler below
    try:
        from .cli import app

        app(prog_name="regen")
    except RegenError as exc:  # raised outside a command (RegenGroup handles the rest)
        render.error(exc)
        sys.exit(exit_status(exc))
    except KeyboardInterrupt as exc:
        render.interrupted()
        sys.exit(exit_status(exc))
    except BrokenPipeError as exc:
        # the reader went away (regen log | head): exit quietly, as for SIGPIPE
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(exit_status(exc))
    except Exception:  # noqa: BLE001 - the last resort: a bug, shown with its traceback
        render.internal_error()
        sys.exit(EXIT_INTERNAL)


if __name__ == "__main__":
    main()
