"""What a pip-installed regen carries (issue 17): the LICENSE, man pages generated from the CLIs,
the example configuration, policy, units and guides as package data, units that name the
installed regend and pass `systemd-analyze verify`, and a wheel that works in a fresh venv."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_license_matches_pyproject() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert 'license = { text = "Apache-2.0" }' in (ROOT / "pyproject.toml").read_text()


def test_examples_units_guides_and_man_pages_are_package_data() -> None:
    shipped = resources.files("regen.contrib")
    for name in ("regend.toml", "policy.toml", "systemd/regend-boot.service", "systemd/regend.service",
                 "systemd/regen-protected.target", "systemd/README.md", "backends/http-nginx.md",
                 "man/regen.1", "man/regend.8"):
        node = shipped
        for part in name.split("/"):
            node = node / part
        assert node.is_file(), name


def test_man_pages_name_every_command(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "contrib/manpages.py"), str(tmp_path)], check=True,
                   capture_output=True)
    import typer

    from regen.daemon.cli import app as regend_app
    from regen.manager.cli import app as regen_app
    for page, app, prog in ((tmp_path / "regen.1", regen_app, "regen"), (tmp_path / "regend.8", regend_app, "regend")):
        text = page.read_text()
        assert text.startswith(f".TH {prog.upper()} ")
        for name in typer.main.get_command(app).commands:  # type: ignore[attr-defined]
            assert f"{prog.upper()} {name.upper()}" in text, (prog, name)
    shipped = (ROOT / "contrib/man/regend.8").read_text()
    assert ".SH COMMAND REGEND RUN" in shipped and "--once" in shipped


def test_example_config_is_the_documented_one() -> None:
    assert run_cli("regend", "example-config").stdout == (ROOT / "contrib/regend.toml").read_text()
    assert run_cli("regend", "example-config", "--policy").stdout == (ROOT / "contrib/policy.toml").read_text()


def test_installed_units_name_this_regend_and_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: contrib/test.sh installs the systemd package"
    out = run_cli("regend", "install-units", "--dir", str(tmp_path)).stdout.split()
    assert sorted(Path(p).name for p in out) == ["regen-protected.target", "regend-boot.service", "regend.service"]
    boot = (tmp_path / "regend-boot.service").read_text()
    assert f"ExecStart={BIN / 'regend'} run --once" in boot and "SuccessExitStatus=10 11 12" in boot
    assert "KillMode=mixed" in boot and "SystemCallFilter=@system-service" in boot
    res = subprocess.run([analyze, "verify", *(str(tmp_path / Path(p).name) for p in out)], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "regend" not in res.stderr, res.stderr  # (no complaint about ExecStart=)


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_finds_its_example_config(tmp_path: Path) -> None:
    """Build the wheel, install it alone (--no-index --no-deps) in a fresh venv whose dependencies
    come from this test venv (a .pth: no download), and ask it for its example configuration."""
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)],
                   check=True, capture_output=True, timeout=600)
    wheel = next(wheels.glob("regen-*.whl"))
    fresh = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(fresh)], check=True, timeout=120)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(fresh / "bin/python"), "install", "-q",
                    "--no-index", "--no-deps", str(wheel)], check=True, capture_output=True, timeout=300)
    purelib = next((fresh / "lib").glob("python3*/site-packages"))
    (purelib / "zz-test-deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    res = subprocess.run([str(fresh / "bin/regend"), "example-config"], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout == (ROOT / "contrib/regend.toml").read_text()
    where = subprocess.run([str(fresh / "bin/python"), "-c", "import regen.daemon; print(regen.daemon.__file__)"],
                           capture_output=True, text=True, env=env, cwd=tmp_path, check=True).stdout
    assert where.startswith(str(fresh)), where  # the wheel's regen, not the checkout's
    version = subprocess.run([str(fresh / "bin/regen"), "--version"], capture_output=True, text=True, env=env,
                             cwd=tmp_path, check=True).stdout
    assert version.startswith("regen 0.") and "store format" in version
