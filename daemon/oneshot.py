"""The one-shot commands without the typer app: `run --once` (the boot run, and every run a
systemd timer starts) and `check`. Each is a process start; typer, click and rich cost a tenth
of a second of it, more than a run with nothing to do takes otherwise. `cli` (the typer app)
calls the same functions, so both paths do exactly the same thing; anything but the plain forms
below (help, typos, odd spellings) goes to the typer app, which words the usage errors.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING, Any

from . import render
from .config import DEFAULT_PATH, load_config

if TYPE_CHECKING:
    from .config import DaemonConfig

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
    from .dryrun import check as dry_run

    render.check(dry_run(cfg, verify=verify), json_out=json_out, quiet=quiet)
    return 0


def run_once(cfg: DaemonConfig, *, verify: bool, wait: bool, json_out: bool, quiet: bool = False) -> int:
    from .agent import Agent, RunOptions

    stop = prepare_run()
    agent = Agent(cfg, probe(cfg), stop=stop)
    result = agent.run(RunOptions(verify=verify, kill_after=kill_after(), wait_lock=wait))
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


def probe(cfg: DaemonConfig) -> Any:
    """The hardware probe: psutil, or (test hook REGEN_TEST_HARDWARE=F) the inventory and findings in F."""
    from .hardware import FakeProbe, PsutilProbe

    fake = os.environ.get("REGEN_TEST_HARDWARE")
    if fake:
        from regen.store import HardwareFinding

        with open(fake, encoding="utf-8") as fp:
            data = json.load(fp)
        return FakeProbe(data.get("inventory") or {},
                         [HardwareFinding(**f) for f in data.get("findings") or []])
    return PsutilProbe(cfg.hardware)


def kill_after() -> int | None:
    """Test hook REGEN_TEST_KILL_AFTER=N: the run SIGKILLs itself after N apply operations."""
    value = os.environ.get("REGEN_TEST_KILL_AFTER")
    return int(value) if value and value.isdigit() else None


__all__ = ["check", "config", "kill_after", "logging_setup", "main", "parse", "prepare_run", "probe", "run_once"]
