"""`regend` entry point: the one top-level handler (R6).

Exit statuses:
  0    ok; for `run`: the machine may start its software (repairs and updates included)
  1    the run failed (the state is consistent; the next run resumes), or another run holds the lock
  2    usage error or bad configuration
  3    `run`: quarantined -- the machine must not start its software
  70   internal error (a bug: a traceback is printed)
  130  interrupted (Ctrl-C); 128+N when ended by signal N. SIGTERM (143) lets the current file finish.
"""

from __future__ import annotations

import os
import signal
import sys

from regen.store import RegenError

EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130


def _lean_check(argv: list[str]) -> dict[str, object] | None:
    """`check [--verify] [--json] [--config PATH | -c PATH]`: the options when argv is exactly that,
    else None. That command runs without the typer app (no typer/click/rich import): a dry run
    with nothing to report must cost little more than the walk itself."""
    if not argv or argv[0] != "check":
        return None
    opts: dict[str, object] = {"verify": False, "json": False, "config": None}
    rest = argv[1:]
    while rest:
        arg = rest.pop(0)
        if arg in ("--verify", "--json") and not opts[arg[2:]]:
            opts[arg[2:]] = True
        elif arg in ("--config", "-c") and rest and opts["config"] is None and rest[0] and not rest[0].startswith("-"):
            opts["config"] = rest.pop(0)
        elif arg.startswith("--config=") and len(arg) > 9 and opts["config"] is None:
            opts["config"] = arg[9:]
        else:
            return None  # anything else (help, typos, odd forms): the typer app answers
    if opts["config"] is not None and os.path.isdir(str(opts["config"])):
        return None  # the typer app words that usage error
    return opts


def _run_lean_check(opts: dict[str, object]) -> int:
    from . import render
    from .config import DEFAULT_PATH, load_config
    from .dryrun import check

    chosen = str(opts["config"] or os.environ.get("REGEND_CONFIG") or DEFAULT_PATH)
    cfg = load_config(chosen, os.environ)
    render.check(check(cfg, verify=bool(opts["verify"])), json_out=bool(opts["json"]))
    return 0


def main() -> None:
    from . import render
    try:
        opts = _lean_check(sys.argv[1:])
        if opts is not None:
            code = _run_lean_check(opts)
            sys.stdout.flush()
            sys.exit(code)
        from .cli import app

        app(prog_name="regend")
    except RegenError as exc:
        render.error(exc)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        render.interrupted()
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(128 + signal.SIGPIPE)
    except Exception:  # noqa: BLE001 - the last resort: a bug, shown with its traceback
        render.internal_error()
        sys.exit(EXIT_INTERNAL)


if __name__ == "__main__":
    main()
