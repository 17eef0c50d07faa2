"""Fixtures shared by every test area. Area-specific fixtures live in tests/<area>/conftest.py."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from regen.store import SecretKey, Store, generate

# Hypothesis profiles (HYPOTHESIS_PROFILE=name; contrib/test.sh runs "ci"). Each keeps every
# property and its assertions; they differ in how many examples they try and how long one may
# take. "dev" (the default) is Hypothesis's own 100 examples; "ci" the same count without the
# per-example deadline (a 2-core machine running the suite on every core is slow now and then:
# a deadline failure there is the machine, not the code); "thorough" 1,000 examples.
settings.register_profile("dev", settings())
settings.register_profile("ci", settings(deadline=None, suppress_health_check=[HealthCheck.too_slow],
                                         print_blob=True))
settings.register_profile("thorough", settings(max_examples=1000, deadline=None))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

BIN = Path(sys.executable).parent
HARNESS = Path(__file__).resolve().parent / "regend_harness.py"


def argv_of(name: str) -> list[str]:
    """How the tests start `regen` or `regend`: the installed regen; regend through the test harness,
    which installs the fakes the test's environment asks for (REGEN_TEST_HARDWARE, ..._KILL_AFTER)."""
    return [sys.executable, str(HARNESS)] if name == "regend" else [str(BIN / name)]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No REGEN_*, FSSPEC_* or AWS_* from the developer's shell; HOME and XDG in a temp dir."""
    for key in list(os.environ):
        if key.startswith(("REGEN_", "FSSPEC_", "AWS_")):
            monkeypatch.delenv(key)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    for var in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(var, str(home / var.lower()))


def _clear_memory_fs() -> None:
    from fsspec.implementations.memory import MemoryFileSystem

    MemoryFileSystem.store.clear()
    MemoryFileSystem.pseudo_dirs.clear()
    MemoryFileSystem.pseudo_dirs.append("")
    MemoryFileSystem.clear_instance_cache()


@pytest.fixture
def mem_url() -> Iterator[str]:
    """A fresh memory:// store URL; the global memory filesystem is cleared before and after."""
    _clear_memory_fs()
    yield f"memory://regen-test-{uuid.uuid4().hex[:8]}/store"
    _clear_memory_fs()


@pytest.fixture
def mem_store(mem_url: str) -> Store:
    return Store.init(mem_url)


@pytest.fixture
def file_url(tmp_path: Path) -> str:
    return f"file://{tmp_path / 'store'}"


@pytest.fixture
def file_store(file_url: str) -> Store:
    return Store.init(file_url)


@pytest.fixture(scope="session")
def signing_key() -> SecretKey:
    return generate()


@pytest.fixture(scope="session")
def other_key() -> SecretKey:
    return generate()


@pytest.fixture
def key_files(tmp_path: Path, signing_key: SecretKey) -> tuple[Path, Path]:
    """(secret key file, public key file) for the session's signing key."""
    secret = tmp_path / "keys" / "admin.key"
    secret.parent.mkdir(exist_ok=True)
    secret.write_text(signing_key.text())
    secret.chmod(0o600)
    public = secret.with_name("admin.key.pub")
    public.write_text(signing_key.public.text())
    return secret, public


@dataclass(frozen=True)
class Symlink:
    target: str


@dataclass(frozen=True)
class Mode:
    """A file with explicit permission bits (content, mode)."""

    content: bytes
    mode: int


def make_tree(root: Path, spec: dict[str, bytes | str | Symlink | Mode | None]) -> Path:
    """Build a real tree: bytes/str -> file, Symlink -> symlink, Mode -> file+chmod, None -> empty dir."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, value in spec.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if value is None:
            p.mkdir(exist_ok=True)
        elif isinstance(value, Symlink):
            os.symlink(value.target, p)
        elif isinstance(value, Mode):
            p.write_bytes(value.content)
            p.chmod(value.mode)
        else:
            p.write_bytes(value.encode() if isinstance(value, str) else value)
    return root


@pytest.fixture
def tree_factory(tmp_path: Path):  # type: ignore[no-untyped-def]
    def factory(spec: dict[str, bytes | str | Symlink | Mode | None], name: str = "tree") -> Path:
        return make_tree(tmp_path / name, spec)
    return factory


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def run_cli(command: str, *args: str, exit_code: int | None = 0, env: dict[str, str] | None = None,
            timeout: float = 300, input: str | None = None) -> Result:
    """Run the installed `regen` or `regend` as a real subprocess and check its exit status."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run([*argv_of(command), *args], capture_output=True, text=True, env=full_env,
                          timeout=timeout, input=input)
    res = Result(proc.returncode, proc.stdout, proc.stderr)
    if exit_code is not None and proc.returncode != exit_code:
        raise AssertionError(
            f"{command} {' '.join(args)} exited {proc.returncode}, expected {exit_code}\n"
            f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
    return res


@pytest.fixture
def run_regen():  # type: ignore[no-untyped-def]
    return lambda *a, **kw: run_cli("regen", *a, **kw)


@pytest.fixture
def run_regend():  # type: ignore[no-untyped-def]
    return lambda *a, **kw: run_cli("regend", *a, **kw)
pytest_plugins = ["tests.servers"]
