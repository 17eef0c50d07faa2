"""README is the first thing a new user reads: it must name every command, the two set-up
scripts, every backend scheme and every exit status, and its examples must refer to files
that exist."""

from __future__ import annotations

import re
from pathlib import Path

import typer

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _leaf_commands(app: typer.Typer, prefix: str) -> set[str]:
    root = typer.main.get_command(app)
    out: set[str] = set()

    def walk(cmd: object, path: str) -> None:
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, f"{path} {name}")
        else:
            out.add(path)

    walk(root, prefix)
    return out


def test_every_regen_command_is_in_the_readme() -> None:
    from regen.manager.cli import app

    for command in _leaf_commands(app, "regen"):
        assert command in README, f"README does not show `{command}`"


def test_every_regend_command_is_in_the_readme() -> None:
    from regen.daemon.cli import app

    for command in _leaf_commands(app, "regend"):
        assert command in README, f"README does not show `{command}`"


def test_readme_gives_the_two_commands_and_they_exist() -> None:
    for script in ("contrib/demo.sh", "contrib/test.sh", "contrib/bench.sh"):
        assert script in README
        assert (ROOT / script).stat().st_mode & 0o111, f"{script} is not executable"
    assert "contrib/test.sh" in (ROOT / ".ci" / "run").read_text()


def test_readme_documents_every_backend_and_exit_status() -> None:
    for scheme in ("file://", "s3://", "smb://", "sftp://", "https://"):
        assert scheme in README
    table = README[README.index("## Exit statuses"):]
    for code in ("| 0 |", "| 1 |", "| 2 |", "| 3 |"):
        assert code in table


def test_files_the_readme_links_exist() -> None:
    for link in re.findall(r"\]\(([^)#]+)\)", README):
        if "://" not in link:
            assert (ROOT / link).exists(), f"README links to missing {link}"
