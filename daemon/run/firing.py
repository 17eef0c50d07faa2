"""Which procedures a run fires, from the paths its applies change (pure).

Why pure: the rules (declaration order, at most once per run, a path changed and changed back
still fires, "before" ahead of the apply and "after" once the run's tree is final) decide what
runs as root on every client, so they are property-tested with plain values (issue 18).

A run may apply twice (a repair, then an update). `Firing` is the run's record: each apply
adds the procedures its changes fire (`add`); "before" ones are due before that apply, the
"after" ones all at the end of the run (`due_after`). The record is what the journal keeps,
so a run killed in between hands the unfinished ones to the next run (at least once).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from regen.store import matches

if TYPE_CHECKING:
    from regen.daemon.tree.plan import Plan
    from regen.store import Procedure

__all__ = ["Fired", "Firing", "changed_paths", "fire"]

MAX_PATHS = 20  # changed paths kept per procedure in the journal and the report (the file has them all)


@dataclass(frozen=True, slots=True)
class Fired:
    """One procedure fired: by which phase, and the changed paths that matched (`count` in all)."""

    name: str
    stage: str
    phase: str
    paths: tuple[str, ...]
    count: int

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "stage": self.stage, "phase": self.phase, "paths": list(self.paths),
                "count": self.count}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Fired:
        return cls(str(d["name"]), str(d["stage"]), str(d.get("phase", "repair")),
                   tuple(map(str, d.get("paths", ()))), int(d.get("count", 0)))


def changed_paths(plan: Plan) -> list[str]:
    """Every path an apply of `plan` creates, modifies, removes or changes the metadata of
    (regend's own temporary files, left by a killed run and removed now, are not changes; nor is
    a directory's mtime set again because its content changed: that content fires already)."""
    out = [o.path for o in plan.delete if not o.temp]
    for group in (plan.mkdir, plan.create, plan.replace, plan.symlink, plan.chmod, plan.link):
        out.extend(e.path for e in group)
    return out


def fire(procedures: Sequence[Procedure], changed: Iterable[str], phase: str) -> tuple[Fired, ...]:
    """The procedures `changed` fires in `phase`, in declaration order, each once."""
    paths = list(changed)
    out = []
    for p in procedures:
        if phase not in p.on:
            continue
        hits = [path for path in paths if matches(path, p.when)]
        if hits:
            out.append(Fired(p.name, p.stage, phase, tuple(hits[:MAX_PATHS]), len(hits)))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Firing:
    """A run's fired procedures (declaration order) and those already run (`done`)."""

    fired: tuple[Fired, ...] = ()
    done: frozenset[str] = field(default_factory=frozenset)

    def add(self, new: Iterable[Fired], order: Sequence[str]) -> Firing:
        """Merge `new` in: a procedure fired twice stays one (its paths joined), sorted by `order`
        (the policy's declaration order); names not in `order` keep their place at the end."""
        by_name = {f.name: f for f in self.fired}
        for f in new:
            old = by_name.get(f.name)
            if old is None:
                by_name[f.name] = f
            else:
                joined = old.paths + tuple(p for p in f.paths if p not in old.paths)
                # the newest phase names it (REGEN_PHASE): a repair then an update runs it as the update's
                by_name[f.name] = replace(old, phase=f.phase, paths=joined[:MAX_PATHS], count=old.count + f.count)
        rank = {name: i for i, name in enumerate(order)}
        fired = sorted(by_name.values(), key=lambda f: rank.get(f.name, len(rank)))
        return Firing(tuple(fired), self.done)

    def pending(self, stage: str | None = None) -> tuple[Fired, ...]:
        """Fired, not yet done, of `stage` (None: both, "before" ones first)."""
        left = [f for f in self.fired if f.name not in self.done]
        if stage is not None:
            return tuple(f for f in left if f.stage == stage)
        return tuple([f for f in left if f.stage == "before"] + [f for f in left if f.stage != "before"])

    def mark(self, name: str) -> Firing:
        return Firing(self.fired, self.done | {name})

    def as_dict(self) -> dict[str, Any]:
        return {"fired": [f.as_dict() for f in self.fired], "done": sorted(self.done)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Firing:
        if not d:
            return cls()
        return cls(tuple(Fired.from_dict(f) for f in d.get("fired", ())), frozenset(map(str, d.get("done", ()))))
