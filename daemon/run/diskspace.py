"""The disk-space checks a run makes before it writes (I/O: free space through startcheck.free_bytes).

Why before, not on ENOSPC: a fetch or an apply that runs out of space half way has spent its
time for nothing and, for the apply, leaves a journal to finish. Checked first, the step fails
at once with a NoSpace that says how much is needed where, and the installed generation stays.

    need_cache_space  the objects a fetch adds to the local cache (state_dir), with
                      limits.min_free_bytes left free after it
    need_stage_space  an apply stages files next to their targets one batch at a time: at most
                      BATCH_BYTES (or the plan's bytes, when fewer) must fit in root
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from regen.daemon.errors import NoSpace
from regen.daemon.gate import startcheck

if TYPE_CHECKING:
    from regen.daemon.config import DaemonConfig
    from regen.daemon.run.target import Target
    from regen.daemon.tree.plan import Plan

__all__ = ["need_cache_space", "need_stage_space"]


def need_cache_space(cfg: DaemonConfig, target: Target, phase: str, need: int) -> None:
    """Raise NoSpace unless `need` bytes fit in state_dir with limits.min_free_bytes to spare."""
    free = startcheck.free_bytes(cfg.state_dir)
    if need + cfg.limits.min_free_bytes > free:
        raise NoSpace(f"the {phase} to generation {target.number} needs {_human(need)} in "
                      f"{cfg.state_dir} but only {_human(free)} are free", need=need, free=free)


def need_stage_space(cfg: DaemonConfig, the_plan: Plan, target: Target) -> None:
    """Files are staged next to their targets, one batch at a time: that much must fit in root."""
    from regen.daemon.tree.apply import BATCH_BYTES

    need = min(the_plan.stats()["bytes_to_write"], BATCH_BYTES)
    free = startcheck.free_bytes(cfg.root)
    if need > free:
        raise NoSpace(f"the update to generation {target.number} stages up to {_human(need)} in "
                      f"{cfg.root} but only {_human(free)} are free", need=need, free=free)


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"
