"""The root `regen` typer app: composes commands/ and turns errors into one line and an exit status.

`RegenGroup.main` is where every RegenError and click usage error becomes
``regen: error: <message> (<hint>)`` on stderr and its exit status, for the installed command
and for typer's CliRunner alike; commands themselves hold no try/except (R6, R17). It runs
click in non-standalone mode so that usage errors come back as exceptions (exit 2, one line
instead of click's boxed message) and exits itself when called in standalone mode.
Anything else (a bug) propagates to __main__.main: traceback, exit 70.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from regen.store.errors import EXIT_FAILED, EXIT_INTERNAL, EXIT_INTERRUPTED, RegenError, exit_status

from . import render
from .commands import fleet, history, hosts, init, keys, maintenance, publish, serve, snapshot, timeline
from .commands import root as root_commands


class RegenGroup(TyperGroup):
    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, windows_expand_args: bool = True,
             **extra: Any) -> Any:
        try:
            rv = super().main(args, prog_name or "regen", complete_var, standalone_mode=False,
                              windows_expand_args=windows_expand_args, **extra)
            code = rv if isinstance(rv, int) and not isinstance(rv, bool) else 0
        except RegenError as exc:
            render.error(exc)
            code = exit_status(exc)
        except typer.Abort:
            code = EXIT_FAILED
        except Exception as exc:  # click's own errors: usage errors and the like (exit 2)
            code = exit_status(exc)
            if code == EXIT_INTERNAL:  # not click's: a bug, for __main__'s last-resort handler
                raise
            _click_error(exc)
        if code == EXIT_INTERRUPTED:  # typer turned KeyboardInterrupt into Exit(130)
            render.interrupted()
        if standalone_mode:
            sys.exit(code)
        return code


def _click_error(exc: Any) -> None:
    """Click's exceptions (matched by shape in exit_status: typer >= 0.2x vendors click)."""
    if type(exc).__name__ == "NoArgsIsHelpError":  # `regen` or `regen host` alone: the help, exit 2
        exc.show()
    else:
        ctx = getattr(exc, "ctx", None)
        render.usage_error(exc.format_message(), ctx.command_path if ctx is not None else "regen")


app = typer.Typer(
    cls=RegenGroup,
    name="regen",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    # help texts are shown as written: Rich markup would eat "[schedule]"-style brackets
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
for module in (init, keys, snapshot, publish, history):
    app.add_typer(module.app)
app.add_typer(hosts.app, name="host")
app.add_typer(root_commands.app, name="root")
for module in (fleet, timeline, serve, maintenance):
    app.add_typer(module.app)


def _version(value: bool) -> None:
    if value:
        from regen.store import about

        sys.stdout.write(about.version_line("regen") + "\n")
        raise typer.Exit(0)


@app.callback()
def root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and the store formats it reads, then exit.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging to stderr (also REGEN_DEBUG=1).")]
    = False,
) -> None:
    """Snapshot a reference tree into signed generations, publish them to a channel, and watch the
    fleet of clients (regend) that keep themselves identical to it.

    Quick start: regen init URL; regen keygen FILE; regen snapshot SRC --channel stable -m MSG --publish;
    regen status. Exit status: 0 success; 1 failed or damage found; 2 usage error or bad input;
    70 internal error; 130 interrupted.
    """
    logging_setup("regen", verbose or bool(os.environ.get("REGEN_DEBUG")))


def logging_setup(prog: str, debug: bool) -> None:
    """Where library log records go: stderr, debug with -v or REGEN_DEBUG (configured here only, A2)."""
    import logging

    from regen.store import RedactingFilter

    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format=f"{prog}: %(message)s",
                        force=True)
    for h in logging.getLogger().handlers:
        h.addFilter(RedactingFilter())  # no store password in a log line (issue 13)
