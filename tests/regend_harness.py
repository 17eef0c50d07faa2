"""`regend` as the tests run it: the installed regend's own main(), with the test substitutes
installed in this process first. The shipped binary reads no test switch; this wrapper does,
from the environment the tests give it:

  REGEN_TEST_HARDWARE=F    F is a JSON file {"inventory": {...}, "findings": [...]}: a FakeProbe
                           (R10's one allowed substitute) replaces the psutil probe, so tests can
                           simulate a dead disk and never depend on the machine they run on
  REGEN_TEST_KILL_AFTER=N  the run SIGKILLs itself after N apply operations (a real kill of the
                           real process, at every point of an apply in turn: tests/*/test_*crash*)

Run it as `python tests/regend_harness.py ARGS...` (tests.conftest.argv_of("regend") does).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Mapping
from typing import Any


def _fake_probe(path: str) -> Any:
    from regen.daemon.gate.hardware import FakeProbe
    from regen.store import HardwareFinding

    with open(path, encoding="utf-8") as fp:
        data = json.load(fp)
    probe = FakeProbe(data.get("inventory") or {}, [HardwareFinding(**f) for f in data.get("findings") or []])
    return lambda _cfg: probe


def _kill_after(n: int) -> Any:
    def on_tick(count: int) -> None:
        if count >= n:
            os.kill(os.getpid(), signal.SIGKILL)
    return on_tick


def install(environ: Mapping[str, str]) -> None:
    """Install the substitutes the environment asks for (nothing when it asks for none)."""
    from regen.daemon.oneshot import Substitutes

    hardware = environ.get("REGEN_TEST_HARDWARE")
    if hardware:
        Substitutes.probe = _fake_probe(hardware)
    kill = environ.get("REGEN_TEST_KILL_AFTER")
    if kill and kill.isdigit():
        Substitutes.on_tick = _kill_after(int(kill))


if __name__ == "__main__":
    install(os.environ)
    sys.path.pop(0)  # (this folder: regend must import nothing from the tests)
    from regen.daemon.__main__ import main

    main()
