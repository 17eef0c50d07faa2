"""What this regen is: its version, the store format versions it reads, its User-Agent (pure).

One place for what `regen --version` and `regend --version` print, what a report's `version`
says and what HTTP and S3 servers see in their logs (`regen/<version>` instead of aiohttp's or
botocore's default), so an administrator can tell which clients talk to a store.
"""

from __future__ import annotations

from functools import lru_cache

__all__ = ["formats", "user_agent", "version", "version_line"]


@lru_cache(maxsize=1)
def version() -> str:
    """The installed distribution's version ("unknown" when run from a bare checkout)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("regen")
    except PackageNotFoundError:
        return "unknown"


def formats() -> dict[str, int]:
    """The on-store format version of each record this regen reads and writes (FORMAT.md §17)."""
    from .config import STORE_FORMAT
    from .generation import FORMAT as GENERATION_FORMAT
    from .manifest import FORMAT as MANIFEST_FORMAT
    from .report import FORMAT as REPORT_FORMAT

    return {"store": STORE_FORMAT, "manifest": MANIFEST_FORMAT, "generation": GENERATION_FORMAT,
            "report": REPORT_FORMAT}


def version_line(prog: str) -> str:
    """`regen 0.1.0 (store format 1; manifest 1, generation 1, report 1)`."""
    f = formats()
    rest = ", ".join(f"{k} {v}" for k, v in f.items() if k != "store")
    return f"{prog} {version()} (store format {f['store']}; {rest})"


def user_agent() -> str:
    return f"regen/{version()}"
