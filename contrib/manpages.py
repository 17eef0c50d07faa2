"""Write the man pages of regen(1) and regend(8) from the CLIs themselves (their help texts):

    python contrib/manpages.py [OUTDIR]     (default: contrib/man, shipped in the wheel)

Run it after changing a command or its help; tests/test_packaging.py checks the pages exist and
that a fresh generation names every command.
"""

from __future__ import annotations

import datetime
import sys
from pathlib import Path
from typing import Any

PAGES = {"regen": ("regen.manager.cli", 1, "manage a regen store: snapshot, publish, watch the fleet"),
         "regend": ("regen.daemon.cli", 8, "keep this machine identical to its channel's signed generation")}


def _esc(text: str) -> str:
    lines = []
    for line in (text or "").replace("\\", "\\\\").splitlines():
        line = line.strip()
        lines.append(("\\&" + line) if line.startswith((".", "'")) else line)
    return "\n".join(lines)


def _commands(cmd: Any, path: list[str]) -> list[tuple[list[str], Any]]:
    out = [(path, cmd)]
    for name, sub in getattr(cmd, "commands", {}).items():
        out += _commands(sub, [*path, name])
    return out


def page(prog: str) -> str:
    import importlib

    import typer

    module, section, summary = PAGES[prog]
    root = typer.main.get_command(importlib.import_module(module).app)
    from regen.store.about import version

    date = datetime.date.today().isoformat()
    out = [f'.TH {prog.upper()} {section} "{date}" "regen {version()}" "regen"', ".SH NAME",
           f"{prog} \\- {summary}", ".SH SYNOPSIS", f".B {prog}", "[\\fIOPTIONS\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]",
           ".SH DESCRIPTION", _esc(root.help or "")]
    for path, cmd in _commands(root, []):
        if not path:
            title = "GLOBAL OPTIONS"
        else:
            title = f"{prog} {' '.join(path)}"
        if path:
            out += [".SH " + ("COMMAND " + title.upper() if len(path) == 1 else title.upper()),
                    _esc(cmd.help or "")]
            if cmd.epilog:
                out += [".PP", _esc(cmd.epilog)]
        else:
            out += [".SH " + title]
        for p in cmd.params:
            opts = getattr(p, "opts", [])
            if not any(o.startswith("-") for o in opts) or getattr(p, "hidden", False):
                continue
            out += [".TP", "\\fB" + ", ".join(opts + list(getattr(p, "secondary_opts", []))) + "\\fR",
                    _esc(getattr(p, "help", "") or "")]
    out += [".SH SEE ALSO", "regen(1), regend(8), the README and store/FORMAT.md of regen", ""]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    outdir = Path(argv[0]) if argv else Path(__file__).resolve().parent / "man"
    outdir.mkdir(parents=True, exist_ok=True)
    for prog, (_m, section, _s) in PAGES.items():
        (outdir / f"{prog}.{section}").write_text(page(prog), encoding="utf-8")
        print(outdir / f"{prog}.{section}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
