"""Procedures in the signed policy: what a policy file may declare, and what a record must carry."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regen.store import Generation, Policy, PolicyInvalid, Procedure, RecordInvalid, UnsupportedFormat, load_policy_toml
from regen.store.generation import PROCEDURES
from regen.store.procedure import FAILURES, PHASES, STAGES

NGINX = '''
preserve = ["home"]

[[procedure]]
name    = "reload nginx"
when    = ["etc/nginx/**"]
on      = ["update", "install", "repair"]
run     = ["/usr/sbin/nginx", "-s", "reload"]
stage   = "after"
timeout = "30s"
failure = "report"

[[procedure]]
name = "ldconfig"
when = ["usr/lib/**/*.so*"]
run  = ["/sbin/ldconfig"]
chroot = true
failure = "fail-run"
timeout = "1m30s"
'''


def test_policy_file_declares_procedures_in_order(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(NGINX)
    policy = load_policy_toml(str(path))
    assert [p.name for p in policy.procedures] == ["reload nginx", "ldconfig"]
    nginx, ldconfig = policy.procedures
    assert nginx == Procedure("reload nginx", ("etc/nginx/**",), ("/usr/sbin/nginx", "-s", "reload"),
                              on=PHASES, stage="after", timeout=30.0, failure="report", chroot=False)
    # defaults: every phase, after, five minutes
    assert ldconfig.on == PHASES and ldconfig.stage == "after" and ldconfig.timeout == 90.0 and ldconfig.chroot
    # the record's form reads back to the same policy
    assert Policy.from_dict(policy.as_dict()) == policy
    assert policy.as_dict()["procedure"][1]["timeout"] == 90


def test_the_same_file_under_a_policy_table(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text('[policy]\njunk = "keep"\n[[policy.procedure]]\nname = "x"\nwhen = ["a"]\nrun = ["/bin/true"]\n')
    assert load_policy_toml(str(path)).procedures[0].name == "x"


BASE = 'name = "reload"\nwhen = ["etc/**"]\nrun = ["/bin/true"]\n'


@pytest.mark.parametrize("extra, drop, needle", [
    ('stgae = "before"\n', None, "procedure 'reload': unknown key 'stgae'"),
    ("", "run", "procedure 'reload': key 'run' is missing"),
    ("", "when", "procedure 'reload': key 'when' is missing"),
    ("", "name", "a procedure: key 'name' is missing"),
    ("run = []\n", "run", "procedure 'reload': key 'run' must be a non-empty list"),
    ('run = ["nginx", "-s", "reload"]\n', "run", "procedure 'reload': key 'run': the command 'nginx' must be an absolute"),
    ('run = "/bin/true"\n', "run", "procedure 'reload': key 'run' must be a non-empty list"),
    ('when = []\n', "when", "procedure 'reload': key 'when' must be a non-empty list"),
    ('when = ["../etc"]\n', "when", "procedure 'reload': key 'when': invalid glob"),
    ('timeout = "30 parsecs"\n', None, "procedure 'reload': key 'timeout' must be a duration"),
    ('timeout = "0s"\n', None, "procedure 'reload': key 'timeout' must be a duration"),
    ('timeout = "2d"\n', None, "procedure 'reload': key 'timeout' must be a duration"),
    ('timeout = true\n', None, "procedure 'reload': key 'timeout' must be a duration"),
    ('stage = "during"\n', None, "procedure 'reload': key 'stage' must be one of before, after"),
    ('failure = "panic"\n', None, "procedure 'reload': key 'failure' must be one of report, fail-run, quarantine"),
    ('on = ["boot"]\n', None, "procedure 'reload': key 'on': 'boot' is not one of"),
    ('on = ["update", "update"]\n', None, "procedure 'reload': key 'on': repeats a phase"),
    ('on = "update"\n', None, "procedure 'reload': key 'on' must be a non-empty list"),
    ('chroot = "yes"\n', None, "procedure 'reload': key 'chroot' must be true or false"),
])
def test_bad_procedure_is_refused_naming_procedure_and_key(tmp_path: Path, extra: str, drop: str | None,
                                                           needle: str) -> None:
    lines = [line for line in BASE.splitlines(keepends=True) if drop is None or not line.startswith(drop + " ")]
    path = tmp_path / "policy.toml"
    path.write_text("[[procedure]]\n" + "".join(lines) + extra)
    with pytest.raises(PolicyInvalid) as info:
        load_policy_toml(str(path))
    assert needle in info.value.message and "\n" not in info.value.one_line()
    assert str(path) in info.value.message


def test_names_are_unique(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(f"[[procedure]]\n{BASE}[[procedure]]\n{BASE}")
    with pytest.raises(PolicyInvalid, match="procedure 'reload': key 'name': the name is used twice"):
        load_policy_toml(str(path))


def test_procedure_must_be_an_array_of_tables(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text("[procedure]\n" + BASE)
    with pytest.raises(PolicyInvalid, match="'procedure' must be a list of tables"):
        load_policy_toml(str(path))


GEN: dict[str, Any] = {"store_id": "0123456789abcdef0123456789abcdef", "channel": "stable", "number": 1,
                       "manifest": "0" * 64, "created": "2025-01-02T03:04:05Z"}


def test_a_generation_with_procedures_requires_the_feature() -> None:
    proc = Procedure("x", ("etc",), ("/bin/true",))
    gen = Generation(**GEN, policy=Policy(procedures=(proc,)))
    rec = gen.to_record()
    assert rec["features"] == [PROCEDURES]
    assert Generation.from_record(rec) == gen
    # without procedures the record is what every client reads (no feature, no key)
    plain = Generation(**GEN).to_record()
    assert plain["features"] == [] and "procedure" not in plain["policy"]
    # procedures without the feature: an old client would skip them silently, so it is malformed
    with pytest.raises(RecordInvalid, match="carries procedures but not the 'procedures' feature"):
        Generation.from_record({**rec, "features": []})


def test_an_overlay_carries_procedures_only_with_the_feature() -> None:
    from regen.store import Overlay

    proc = Procedure("reload", ("etc/x",), ("/bin/true",))
    ov = Overlay(GEN["store_id"], "pc-01", 1, None, GEN["created"], procedures=(proc,))
    rec = ov.to_record()
    assert rec["features"] == [PROCEDURES] and Overlay.from_record(rec) == ov
    with pytest.raises(RecordInvalid, match="not the 'procedures' feature"):
        Overlay.from_record({**rec, "features": []})
    with pytest.raises(RecordInvalid, match="carries no procedure"):
        Overlay.from_record({**Overlay(GEN["store_id"], "pc-01", 1, None, GEN["created"]).to_record(),
                             "features": [PROCEDURES]})
    assert "procedure" not in Overlay(GEN["store_id"], "pc-01", 1, None, GEN["created"]).to_record()


def test_a_channel_policy_decides_whether_overlay_procedures_run() -> None:
    mine = Procedure("host reload", ("etc/x",), ("/bin/true",))
    channel = Procedure("reload", ("etc/y",), ("/bin/true",))
    with pytest.raises(PolicyInvalid, match="does not allow them"):
        Policy(procedures=(channel,)).with_overlay((mine,), "overlay")
    allowed = Policy(procedures=(channel,), overlay_procedures=True)
    assert allowed.with_overlay((mine,), "overlay").procedures == (channel, mine)  # channel's first
    assert Policy().with_overlay((), "overlay") == Policy()
    with pytest.raises(PolicyInvalid, match="used twice"):
        allowed.with_overlay((channel,), "overlay")


names = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FFF, exclude_characters="\x7f"),
                min_size=1, max_size=40).filter(str.strip)
segments = st.text("abcxyz019._-", min_size=1, max_size=8).filter(lambda s: s not in (".", ".."))
globs = st.lists(segments, min_size=1, max_size=4).map("/".join)
procedures = st.builds(
    Procedure, name=names, when=st.lists(globs, min_size=1, max_size=3).map(tuple),
    run=st.tuples(st.text("abc/", min_size=1, max_size=10).map(lambda s: "/" + s),
                  *[st.text(max_size=10).filter(lambda s: "\x00" not in s)] * 2),
    on=st.sets(st.sampled_from(PHASES), min_size=1).map(lambda s: tuple(p for p in PHASES if p in s)),
    stage=st.sampled_from(STAGES), timeout=st.integers(1, 86400).map(float), failure=st.sampled_from(FAILURES),
    chroot=st.booleans())


@settings(max_examples=100, deadline=None)
@given(st.lists(procedures, max_size=4, unique_by=lambda p: p.name))
def test_procedures_round_trip_through_the_record(procs: list[Procedure]) -> None:
    policy = Policy(procedures=tuple(procs))
    assert Policy.from_dict(policy.as_dict()) == policy


scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 100000), st.floats(allow_nan=True),
                    st.text(max_size=12))
values = st.one_of(scalars, st.lists(scalars, max_size=3))
tables = st.dictionaries(st.sampled_from(["name", "when", "on", "run", "stage", "timeout", "failure", "chroot",
                                          "bogus"]), values, max_size=9)


@settings(max_examples=300, deadline=None)
@given(st.lists(tables, max_size=3))
def test_any_procedure_table_is_accepted_or_refused_in_one_line(items: list[dict[str, object]]) -> None:
    try:
        policy = Policy.from_dict({"procedure": items})
    except PolicyInvalid as exc:
        assert "\n" not in exc.message and "procedure" in exc.message
        return
    for p in policy.procedures:  # what is accepted is a runnable, bounded command
        assert p.run and p.run[0].startswith("/") and 0 < p.timeout <= 86400 and p.when
    assert Policy.from_dict(policy.as_dict()) == policy


def test_contrib_policy_example_parses() -> None:
    path = Path(__file__).resolve().parents[2] / "contrib" / "policy.toml"
    with open(path, "rb") as fp:
        tomllib.load(fp)
    load_policy_toml(str(path))
