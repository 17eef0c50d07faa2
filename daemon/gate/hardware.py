"""Hardware diagnosis: what the machine has and what is wrong with it (I/O behind a Protocol).

`PsutilProbe.probe(previous)` collects an inventory (I/O, every call time-boxed) and then
judges it with the pure `assess(inventory, previous, config)`. The inventory is plain JSON
so the index can keep it and the next run can compare against it.

Why every call is time-boxed: a dead NFS/CIFS/FUSE mount, or a dying disk, makes statvfs
block in the kernel, possibly forever, and a boot that waits on it never ends. Each call runs
in a daemon thread; one that misses its deadline becomes a finding and its thread is left
behind (daemon threads do not hold up interpreter exit). A `PsutilProbe` remembers such
stuck calls and does not pile up new threads on the same mount while the old one hangs, so
the long-running daemon should keep one probe for its lifetime.

This module holds the probe Protocol and its results, and `PsutilProbe`, which joins the parts
kept in their own modules (the [hardware] thresholds, `HardwareConfig`, live in `config`):
- `probe`: `collect` and the psutil-like `ProbeSources` it reads (I/O; psutil imported lazily);
- `health`: `assess` and `smart_verdict`, findings from an inventory (pure);
- `timebox`: `TimeBox` and `call_with_timeout`, calls bounded by a deadline.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from regen.daemon.tables import HardwareConfig
from regen.store import HardwareFinding

if TYPE_CHECKING:
    from regen.daemon.gate.probe import ProbeSources

__all__ = [
    "FakeProbe", "HardwareConfig", "HardwareProbe", "ProbeResult", "PsutilProbe",
]


# ---------------------------------------------------------------------------------------------
# results and the probe protocol


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What a probe saw (JSON-able, kept for the next comparison) and what it found wrong."""

    inventory: dict[str, Any]
    findings: tuple[HardwareFinding, ...]


class HardwareProbe(Protocol):
    def probe(self, previous: Mapping[str, Any] | None) -> ProbeResult:
        """Inspect the machine; compare with `previous` (the last run's inventory) when given."""
        ...


class FakeProbe:
    """Fixed results, for tests of the daemon: the only allowed substitute for the real probe."""

    def __init__(self, inventory: Mapping[str, Any] | None = None,
                 findings: Iterable[HardwareFinding] = ()) -> None:
        self.inventory = dict(inventory or {})
        self.findings = tuple(findings)
        self.seen: list[Mapping[str, Any] | None] = []  # the `previous` of every call, oldest first

    def probe(self, previous: Mapping[str, Any] | None) -> ProbeResult:
        self.seen.append(previous)
        return ProbeResult(dict(self.inventory), self.findings)


# ---------------------------------------------------------------------------------------------
# the real probe


class PsutilProbe:
    """The machine's hardware through psutil (or injected `sources`), every call time-boxed."""

    def __init__(self, config: HardwareConfig, sources: ProbeSources | None = None) -> None:
        # (imported here: every command parses [hardware], only a run probes)
        from regen.daemon.gate.probe import PsutilSources
        from regen.daemon.gate.timebox import TimeBox

        self.config = config
        self.sources: ProbeSources = sources if sources is not None else PsutilSources()
        self._box = TimeBox()  # keeps calls that hung so the next probe does not start them again

    def probe(self, previous: Mapping[str, Any] | None) -> ProbeResult:
        from regen.daemon.gate.health import assess
        from regen.daemon.gate.probe import collect

        inventory = collect(self.sources, self.config, self._box)
        return ProbeResult(inventory, assess(inventory, previous, self.config))
