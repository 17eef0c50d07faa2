"""Which procedures a run fires (pure): declaration order, each at most once, by phase and path."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from regen.daemon.run.firing import Fired, Firing, changed_paths, fire
from regen.daemon.tree.plan import Observed, Plan
from regen.store import Entry, Procedure, matches
from regen.store.procedure import PHASES

SEGMENTS = ["etc", "nginx", "app", "bin", "lib", "x.conf", "y.so"]
paths = st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=3).map("/".join)
globs = st.lists(st.sampled_from([*SEGMENTS, "*", "**", "*.conf"]), min_size=1, max_size=3).map("/".join)
procs = st.lists(st.builds(
    Procedure, name=st.text("abcdef", min_size=1, max_size=3), when=st.lists(globs, min_size=1, max_size=2).map(tuple),
    run=st.just(("/bin/true",)), on=st.sets(st.sampled_from(PHASES), min_size=1).map(tuple),
    stage=st.sampled_from(["before", "after"])), max_size=6, unique_by=lambda p: p.name)


@settings(max_examples=300, deadline=None)
@given(procs, st.lists(paths, max_size=8), st.sampled_from(PHASES))
def test_fire_is_declaration_order_each_once_and_exactly_the_matching(procedures: list[Procedure],
                                                                     changed: list[str], phase: str) -> None:
    fired = fire(procedures, changed, phase)
    names = [f.name for f in fired]
    assert len(names) == len(set(names))
    declared = [p.name for p in procedures]
    assert names == [n for n in declared if n in names]
    for p in procedures:
        hits = [c for c in changed if matches(c, p.when)]
        should = phase in p.on and bool(hits)
        assert (p.name in names) == should
        if should:
            f = fired[names.index(p.name)]
            assert f.count == len(hits) and set(f.paths) <= set(hits) and f.stage == p.stage and f.phase == phase
    assert fire(procedures, [], phase) == ()


@settings(max_examples=200, deadline=None)
@given(procs, st.lists(st.tuples(st.lists(paths, max_size=4), st.sampled_from(PHASES)), max_size=4))
def test_a_run_of_several_applies_runs_each_fired_procedure_once(procedures: list[Procedure],
                                                                 applies: list[tuple[list[str], str]]) -> None:
    order = [p.name for p in procedures]
    firing = Firing()
    for changed, phase in applies:
        firing = firing.add(fire(procedures, changed, phase), order)
    expected = {p.name for p in procedures for changed, phase in applies
                if phase in p.on and any(matches(c, p.when) for c in changed)}
    due = firing.pending()
    assert sorted(f.name for f in due) == sorted(expected)  # changed back later or not: still fired
    stages = [f.stage for f in due]
    assert stages == sorted(stages, key=lambda s: s != "before")  # "before" ones first
    for stage in ("before", "after"):
        names = [f.name for f in firing.pending(stage)]
        assert names == [n for n in order if n in names]  # declaration order within a stage
    # the journal's form reads back, and what is done is never due again
    assert Firing.from_dict(firing.as_dict()) == firing
    for f in due:
        firing = firing.mark(f.name)
    assert firing.pending() == ()
    assert Firing.from_dict(firing.as_dict()).pending() == ()


def test_changed_paths_are_every_change_but_regends_own_temp_files() -> None:
    e = Entry("etc/a", "file", 0o644, 1, "0" * 64, "0" * 16)
    plan = Plan(delete=(Observed("old", "file", 0o644), Observed("etc/.regen-tmp-x", "file", 0o600, temp=True)),
                mkdir=(Entry("d", "dir", 0o755),), create=(e,), replace=(Entry("etc/b", "file", 0o644, 1, "0" * 64,
                                                                               "0" * 16),),
                symlink=(Entry("l", "symlink", 0o777, target="a"),), chmod=(Entry("etc/c", "file", 0o600),))
    assert sorted(changed_paths(plan)) == ["d", "etc/a", "etc/b", "etc/c", "l", "old"]
    assert changed_paths(Plan()) == []


def test_fired_round_trips() -> None:
    f = Fired("reload", "after", "update", ("etc/a",), 3)
    assert Fired.from_dict(f.as_dict()) == f
