"""The conventions users expect of both CLIs (issue 17): --version with the store formats, shell
completion, -v/REGEN_DEBUG, -q, help rendered as written, flags shown as flags, one meaning per
short option across `regen` and `regend`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from regen.daemon.cli import app as regend_app
from regen.manager.cli import app as regen_app
from regen.store.about import formats, version
from regen.store.errors import EXIT_UNREACHABLE
from tests.conftest import run_cli
from tests.servers import dead_port

APPS = {"regen": regen_app, "regend": regend_app}


def _commands(name: str) -> Iterator[tuple[list[str], Any]]:
    root = typer.main.get_command(APPS[name])

    def walk(cmd: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
        yield path, cmd
        if hasattr(cmd, "commands"):  # a group (typer vendors its own click: duck typing)
            for sub_name, sub in cmd.commands.items():
                yield from walk(sub, [*path, sub_name])
    yield from walk(root, [])


def _is_option(p: object) -> bool:
    return any(c.__name__ in ("Option", "TyperOption") for c in type(p).__mro__)


EVERY_HELP = [(tool, path) for tool in APPS for path, _ in _commands(tool)]


@pytest.mark.parametrize("tool, path", EVERY_HELP, ids=[" ".join([t, *p]) for t, p in EVERY_HELP])
def test_every_help_renders_literally_with_flags_as_flags(tool: str, path: list[str]) -> None:
    cmd = dict((tuple(p), c) for p, c in _commands(tool))[tuple(path)]
    res = CliRunner().invoke(APPS[tool], [*path, "--help"], prog_name=tool)
    assert res.exit_code == 0, res.output
    written = " ".join(filter(None, [cmd.help, cmd.epilog, *(getattr(p, "help", None) or "" for p in cmd.params)]))
    for bracketed in re.findall(r"\[[a-z_]+\]", written):  # e.g. [schedule], [storage_options]
        assert bracketed in res.output, (bracketed, res.output)
    assert "<bool>" not in res.output and "BOOLEAN" not in res.output, res.output
    for p in cmd.params:
        if _is_option(p) and p.is_flag and not p.hidden:
            assert re.search(rf"{re.escape(max(p.opts, key=len))}(\s{{2,}}|\n)", res.output), (p.opts, res.output)


def test_one_meaning_per_short_option_across_both_tools() -> None:
    meaning: dict[str, set[str]] = {}
    for tool in APPS:
        for _path, cmd in _commands(tool):
            for p in cmd.params:
                if _is_option(p):
                    longs = [o for o in p.opts if o.startswith("--")]
                    for short in (o for o in p.opts if re.fullmatch(r"-[a-zA-Z]", o)):
                        meaning.setdefault(short, set()).update(longs)
    assert {s: m for s, m in meaning.items() if len(m) > 1} == {}
    assert meaning["-c"] == {"--channel"}


@pytest.mark.parametrize("tool", ["regen", "regend"])
def test_version_names_the_store_formats(tool: str) -> None:
    out = run_cli(tool, "--version").stdout
    assert out == f"{tool} {version()} (store format {formats()['store']}; manifest {formats()['manifest']}, " \
                  f"generation {formats()['generation']}, report {formats()['report']})\n"


@pytest.mark.parametrize("shell, needle", [("bash", "complete -o default -F _regen_completion regen"),
                                           ("zsh", "#compdef regen"), ("fish", "complete --command regen")])
def test_shell_completion_scripts(shell: str, needle: str) -> None:
    out = run_cli("regen", env={"_REGEN_COMPLETE": f"source_{shell}"}).stdout
    assert needle in out, out


def test_completion_completes_commands() -> None:
    out = run_cli("regen", env={"_REGEN_COMPLETE": "complete_bash", "COMP_WORDS": "regen sna",
                                "COMP_CWORD": "1"}).stdout
    assert "snapshot" in out.split()
    out = run_cli("regend", env={"_REGEND_COMPLETE": "complete_bash", "COMP_WORDS": "regend rec",
                                 "COMP_CWORD": "1"}).stdout
    assert "recover" in out.split()


@pytest.mark.slow  # (three runs retrying a dead port: ~6 s on 2 cores)
def test_verbose_and_regen_debug_log_to_stderr() -> None:
    url = f"http://127.0.0.1:{dead_port()}/store"
    quiet = run_cli("regen", "log", "--store", url, "-o", "timeout=1", exit_code=1)
    assert "retrying" not in quiet.stderr and len(quiet.stderr.splitlines()) == 1
    loud = run_cli("regen", "-v", "log", "--store", url, "-o", "timeout=1", exit_code=1)
    assert "regen: retrying regen.json" in loud.stderr
    env = run_cli("regen", "log", "--store", url, "-o", "timeout=1", exit_code=1, env={"REGEN_DEBUG": "1"})
    assert "regen: retrying regen.json" in env.stderr


def test_regend_quiet_prints_only_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.daemon.conftest import Client

    c = Client(tmp_path, f"http://127.0.0.1:{dead_port()}/store", tmp_path / "key.pub")
    (tmp_path / "key.pub").write_text("regen-ed25519-public:" + "A" * 43 + "=\n")
    c.root.mkdir()
    c.write_config(storage_options={"timeout": 1})
    loud = run_cli("regend", "run", "--once", "--config", str(c.config_path), exit_code=1,
                   env={"REGEN_TEST_HARDWARE": str(c.hardware({"inventory": {}, "findings": []}))})
    quiet = run_cli("regend", "-q", "run", "--once", "--config", str(c.config_path), exit_code=1,
                    env={"REGEN_TEST_HARDWARE": str(c.hardware({"inventory": {}, "findings": []}))})
    assert "warning" in loud.stderr and "warning" not in quiet.stderr
    assert quiet.stdout == "" and quiet.stderr.startswith("regend: error: install: ")
    assert EXIT_UNREACHABLE == 10
