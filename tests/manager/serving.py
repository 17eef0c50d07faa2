"""`regen serve` as a real subprocess on a free loopback port, for the dashboard tests."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ..conftest import BIN


@dataclass(frozen=True)
class Served:
    url: str  # ends with "/"
    proc: subprocess.Popen[str]


@contextmanager
def regen_serve(store_url: str, *args: str, env: dict[str, str] | None = None,
                timeout: float = 30.0) -> Iterator[Served]:
    """Start `regen serve --port 0 ARGS` and yield its URL once it listens; stopped with SIGTERM after."""
    proc = subprocess.Popen([str(BIN / "regen"), "serve", "--store", store_url, "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})}, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        line = ""
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line.startswith("serving the fleet at ") or not line:
                break
        if not line.startswith("serving the fleet at "):
            proc.kill()
            _out, err = proc.communicate(timeout=10)
            raise AssertionError(f"regen serve did not start (exit {proc.returncode}): {line}{err}")
        yield Served(line.split()[4], proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
