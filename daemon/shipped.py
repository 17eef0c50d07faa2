"""The files a wheel ships beside the code (regen.contrib's package data) and the units written
for this installation (I/O).

Why: a pip-installed regen has no contrib/ folder, yet its messages and guides point at the
example configuration, and its units must name the regend that was installed (a venv's
/opt/regen/bin/regend is not on systemd's executable path, so `ExecStart=regend` fails
`systemd-analyze verify`).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from importlib import resources
from importlib.abc import Traversable

from regen.daemon.errors import UsageError
from regen.store import save_atomic

UNITS = ("regend-boot.service", "regend.service", "regen-protected.target")
EXAMPLES = {"config": "regend.toml", "policy": "policy.toml"}

__all__ = ["EXAMPLES", "UNITS", "example", "install_units", "regend_path", "shipped", "unit_text"]


def shipped(name: str) -> Traversable:
    """A file of regen.contrib, e.g. "regend.toml" or "systemd/regend.service"."""
    node = resources.files("regen.contrib")
    for part in name.split("/"):
        node = node / part
    if not node.is_file():
        raise UsageError(f"{name} is not part of this installation of regen",
                         hint="reinstall regen; the wheel ships it as package data")
    return node


def example(kind: str) -> str:
    """The text of the example `kind` ("config" or "policy")."""
    return shipped(EXAMPLES[kind]).read_text(encoding="utf-8")


def regend_path() -> str:
    """The absolute path of the regend of this installation (next to its Python, else on PATH)."""
    beside = os.path.join(os.path.dirname(sys.executable), "regend")
    if os.access(beside, os.X_OK):
        return os.path.abspath(beside)
    found = shutil.which("regend")
    if found is None:
        raise UsageError("cannot find the installed regend", hint="install regen so that regend is on PATH")
    return os.path.abspath(found)


def unit_text(name: str, regend: str) -> str:
    """Unit `name` with ExecStart= naming `regend` by its absolute path."""
    text = shipped(f"systemd/{name}").read_text(encoding="utf-8")
    return re.sub(r"^ExecStart=regend\b", f"ExecStart={regend}", text, flags=re.M)


def install_units(directory: str, regend: str | None = None) -> list[str]:
    """Write the units into `directory` (e.g. /etc/systemd/system); the paths written."""
    path = regend or regend_path()
    os.makedirs(directory, exist_ok=True)
    written = []
    for name in UNITS:
        dest = os.path.join(directory, name)
        save_atomic(dest, unit_text(name, path).encode("utf-8"), mode=0o644)
        written.append(dest)
    return written
