"""Every `regen` command explains itself: help text and its exit statuses."""

from __future__ import annotations

from collections.abc import Iterator

import typer

from regen.manager.cli import app


def commands() -> Iterator[tuple[str, object]]:
    root = typer.main.get_command(app)

    def walk(cmd: object, path: str) -> Iterator[tuple[str, object]]:
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                yield from walk(sub, f"{path} {name}")
        else:
            yield path, cmd

    yield from walk(root, "regen")


EXPECTED = {"regen init", "regen keygen", "regen snapshot", "regen publish", "regen rollback", "regen renumber",
            "regen refresh", "regen root init", "regen root add-key",
            "regen root revoke-key", "regen root sign", "regen log",
            "regen show", "regen diff", "regen host set", "regen host show", "regen host rm",
            "regen host enroll", "regen status",
            "regen history", "regen serve", "regen gc", "regen fsck", "regen migrate", "regen unlock"}


def test_every_command_is_there() -> None:
    assert {name for name, _ in commands()} == EXPECTED


def test_every_command_has_help_and_lists_its_exit_statuses() -> None:
    for name, cmd in commands():
        assert (getattr(cmd, "help", None) or "").strip(), f"{name} has no help text"
        assert "Exit status: 0" in (getattr(cmd, "epilog", None) or ""), f"{name} does not list its exit statuses"
        for param in getattr(cmd, "params", []):
            if getattr(param, "param_type_name", "") == "option" and param.name != "help":
                assert (param.help or "").strip(), f"{name} option {param.name} has no help"


def test_help_is_shown(cli) -> None:
    for name, _ in commands():
        out = cli(*name.split()[1:], "--help").stdout
        assert "Usage:" in out and "Exit status" in out, name


def test_the_example_policy_file_loads() -> None:
    from pathlib import Path

    from regen.store import load_policy_toml

    policy = load_policy_toml(str(Path(__file__).parents[2] / "contrib" / "policy.toml"))
    assert "home/**" in policy.preserve and policy.junk == "quarantine" and policy.base and policy.exclude
