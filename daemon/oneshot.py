"""The one-shot commands without the typer app: `run --once` (the boot run, and every run a
systemd timer starts) and `check`. Each is a process start; typer, click and rich cost a tenth
of a second of it, more than a run with nothing to do takes otherwise. `cli` (the typer app)
calls the same functions, so both paths do exactly the same thing; anything but the plain forms
below (help, typos, odd spellings) goes to the typer app, which words the usage errors.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING, Any, ClassVar

from regen.daemon import render
from regen.daemon.config import DEFAULT_PATH, load_config

if TYPE_CHECKING:
    from collections.abc import Callable

    from regen.daemon.config import DaemonConfig
    from regen.daemon.gate.hardware import HardwareProbe

_FLAGS = {"run": ("--once", "--verify", "--wait", "--json"), "check": ("--verify", "--json")}


def parse(argv: list[str]) -> tuple[str, dict[str, Any]] | None:
    """`run --once [--verify] [--wait] [--json] [--config PATH]` or `check [--verify]
    [--json] [--config PATH]`, flags in any order, each at most once: (command, options); else None."""
    if not argv or argv[0] not in _FLAGS:
        return None
    command, flags = argv[0], _FLAGS[argv[0]]
    opts: dict[str, Any] = {f[2:]: False for f in flags} | {"config": None}
    rest = argv[1:]
    while rest:
        arg = rest.pop(0)
        if arg in flags and not opts[arg[2:]]:
            opts[arg[2:]] = True
        elif arg == "--config" and rest and opts["config"] is None and rest[0] and not rest[0].startswith("-"):
            opts["config"] = rest.pop(0)
        elif arg.startswith("--config=") and len(arg) > 9 and opts["config"] is None:
            opts["config"] = arg[9:]
        else:
            return None
    if command == "run" and not opts["once"]:
        return None  # the long-running daemon: the typer app
    if opts["config"] is not None and os.path.isdir(str(opts["config"])):
        return None  # the typer app words that usage error
    return command, opts


def main(command: str, opts: dict[str, Any]) -> int:
    cfg = config(opts["config"])
    if command == "check":
        return check(cfg, verify=opts["verify"], json_out=opts["json"])
    return run_once(cfg, verify=opts["verify"], wait=opts["wait"], json_out=opts["json"])


def config(path: str | None) -> DaemonConfig:
    chosen = str(path) if path is not None else os.environ.get("REGEND_CONFIG") or DEFAULT_PATH
    return load_config(chosen, os.environ)


def check(cfg: DaemonConfig, *, verify: bool, json_out: bool, quiet: bool = False) -> int:
    from regen.daemon.run.dryrun import check as dry_run

    render.check(dry_run(cfg, verify=verify), json_out=json_out, quiet=quiet)
    return 0


def run_once(cfg: DaemonConfig, *, verify: bool, wait: bool, json_out: bool, quiet: bool = False) -> int:
    from regen.daemon.run.agent import Agent, RunOptions

    stop = prepare_run()
    agent = Agent(cfg, probe(cfg), stop=stop)
    result = agent.run(RunOptions(verify=verify, on_tick=Substitutes.on_tick, wait_lock=wait))
    render.run_summary(result.report, result.warnings, result.upload_error, json_out=json_out, quiet=quiet)
    return result.exit_code


def logging_setup(*, debug: bool, quiet: bool) -> None:
    """Library log records to stderr: debug with -v or REGEN_DEBUG, errors only with -q (configured
    here, at the edge, only: A2)."""
    import logging

    from regen.store import RedactingFilter

    level = logging.DEBUG if debug else logging.ERROR if quiet else logging.WARNING
    logging.basicConfig(level=level, format="regend: %(message)s", force=True)
    for h in logging.getLogger().handlers:
        h.addFilter(RedactingFilter())  # no store password in a log line


def prepare_run() -> threading.Event:
    """Logging to stderr (unless the CLI set it up), and SIGTERM/SIGINT set the returned event (the
    current file finishes)."""
    import logging

    if not logging.getLogger().handlers:  # the lean path: REGEN_DEBUG is its only switch
        logging_setup(debug=bool(os.environ.get("REGEN_DEBUG")), quiet=False)
    stop = threading.Event()

    def handler(signum: int, _frame: FrameType | None) -> None:
        stop.signum = signum  # type: ignore[attr-defined]  # the exit status: 128 + signum
        stop.set()
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


class Substitutes:
    """What a test harness may replace in this process before it calls `regend`'s main: the hardware
    probe (a FakeProbe: R10's one allowed substitute) and a hook called after every apply operation
    (the crash tests kill the run there). tests/regend_harness.py is the only writer; the installed
    regend leaves both unset and reads no test switch from its environment."""

    probe: ClassVar[Callable[[DaemonConfig], HardwareProbe] | None] = None
    on_tick: ClassVar[Callable[[int], None] | None] = None


def probe(cfg: DaemonConfig) -> HardwareProbe:
    """The hardware probe: psutil (or the test harness's substitute)."""
    if Substitutes.probe is not None:
        return Substitutes.probe(cfg)
    from regen.daemon.gate.hardware import PsutilProbe

    return PsutilProbe(cfg.hardware)


__all__ = ["Substitutes", "check", "config", "logging_setup", "main", "parse", "prepare_run", "probe", "run_once"]
