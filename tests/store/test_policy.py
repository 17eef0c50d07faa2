"""Policy globs (which paths are preserved, base, excluded) and the errors of a bad policy."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regen.store import Policy, PolicyInvalid, check_glob, load_policy_toml, matches


@pytest.mark.parametrize("glob, path, expected", [
    # * : any run of characters within one component
    ("*.log", "app.log", True),
    ("*.log", "var/app.log", False),
    ("var/*.log", "var/app.log", True),
    ("var/*", "var/a/b", True),  # var/a matches, so everything below it does
    ("*", "anything/at/all", True),
    # ** : any run including '/'
    ("**/*.log", "app.log", True),
    ("**/*.log", "var/log/app.log", True),
    ("var/**", "var/log/app.log", True),
    ("var/**", "var", False),
    ("var/**/cache", "var/cache", True),
    ("var/**/cache", "var/a/b/cache/x", True),
    # ? : one character, never '/'
    ("pc-??", "pc-01", True),
    ("pc-??", "pc-1", False),
    ("a?b", "a/b", False),
    # [...] : classes
    ("log[0-9]", "log7", True),
    ("log[0-9]", "logx", False),
    ("log[!0-9]", "logx", True),
    ("log[!0-9]", "log7", False),
    ("[]]x", "]x", True),
    ("[!]]x", "]x", False),
    ("[!]]x", "ax", True),
    ("[[]x", "[x", True),
    ("a[--/]b", "a/b", False),  # a class never matches '/'
    ("a[^x]", "a^", True),  # '^' is a member, not a negation
    ("[abc", "[abc", True),  # unclosed: literal
    # a matching directory covers its subtree; names are matched whole
    ("home", "home", True),
    ("home", "home/user/.bashrc", True),
    ("home", "homework", False),
    ("home", "x/home", False),
    ("etc/ssh", "etc/ssh/sshd_config", True),
    ("etc/ssh", "etc/sshd", False),
    # everything else is literal, including regex characters and spaces
    ("a+b (1).txt", "a+b (1).txt", True),
    ("a.b", "aXb", False),
    ("new\nline", "new\nline/x", True),
])
def test_glob_semantics(glob: str, path: str, expected: bool) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (no FutureWarning from nested-set look-alikes)
        assert matches(path, [check_glob(glob)]) is expected


def test_matches_any_of_several_globs_and_none_of_none() -> None:
    assert matches("var/log/x", ["home", "var/log"])
    assert not matches("var/log/x", [])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text("ab/.", min_size=1, max_size=6), min_size=1, max_size=4))
def test_a_literal_path_glob_matches_itself_and_everything_below(parts: list[str]) -> None:
    path = "/".join(p for p in parts if p not in ("", ".", "..") and "/" not in p)
    if not path:
        return
    assert matches(path, [path]) and matches(path + "/below/it", [path])
    assert not matches(path + "x", [path])


@pytest.mark.parametrize("glob", ["", "/", "../etc", "a/../b", "./a", "a\x00b", 3, None])
def test_invalid_globs(glob: object) -> None:
    with pytest.raises(PolicyInvalid) as err:
        check_glob(glob)
    assert err.value.exit_code == 2


def test_glob_slashes_are_normalised() -> None:
    assert check_glob("/home/") == "home"


# -- Policy -------------------------------------------------------------------------------------------

def test_policy_dict_round_trip_and_defaults() -> None:
    p = Policy.from_dict({"preserve": ["home", "var/lib/app/**"], "base": ["etc/**"], "junk": "keep"})
    assert p == Policy(("home", "var/lib/app/**"), ("etc/**",), (), "keep")
    assert Policy.from_dict(p.as_dict()) == p
    assert Policy.from_dict({}) == Policy()
    assert Policy().junk == "quarantine"


def test_client_preserve_globs_add_to_the_generation_policy() -> None:
    p = Policy(preserve=("home",), junk="quarantine").merged(["srv/data", "home"], junk="keep")
    assert p.preserve == ("home", "srv/data") and p.junk == "keep"
    with pytest.raises(PolicyInvalid):
        Policy().merged(["../escape"])


@pytest.mark.parametrize("data, message", [
    ({"preserv": ["home"]}, "unknown key(s) preserv"),
    ({"preserve": "home"}, "'preserve' must be a list of globs"),
    ({"base": ["ok", "../etc"]}, "'base': invalid glob '../etc'"),
    ({"exclude": [7]}, "'exclude': invalid glob 7"),
    ({"junk": "delete"}, "'junk' must be one of quarantine, keep, not 'delete'"),
    (["home"], "expected a table of rules"),
])
def test_policy_errors_are_one_clear_line(data: object, message: str) -> None:
    with pytest.raises(PolicyInvalid) as err:
        Policy.from_dict(data, where="policy.toml")  # type: ignore[arg-type]
    line = err.value.one_line()
    assert message in line and line.startswith("policy.toml") and "\n" not in line
    assert err.value.exit_code == 2 and err.value.hint


def test_load_policy_toml(tmp_path: Path) -> None:
    f = tmp_path / "policy.toml"
    f.write_text('[policy]\npreserve = ["home"]\nbase = ["etc/**"]\njunk = "keep"\n')
    assert load_policy_toml(str(f)) == Policy(("home",), ("etc/**",), (), "keep")
    f.write_text('exclude = ["tmp", "var/cache"]\n')  # top-level keys work too
    assert load_policy_toml(str(f)).exclude == ("tmp", "var/cache")


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"),
    (b"preserve = [", "is not valid TOML"),
    (b'preserve = ["\xff"]\n', "is not valid TOML"),
    (b'[policy]\npreserve = ["home"]\nkeep = 1\n', "unknown key(s) keep"),
    (b"policy = 3\n", "expected a table"),
])
def test_load_policy_toml_errors_name_the_file(tmp_path: Path, content: bytes | None, message: str) -> None:
    f = tmp_path / "policy.toml"
    if content is not None:
        f.write_bytes(content)
    with pytest.raises(PolicyInvalid) as err:
        load_policy_toml(str(f))
    assert message in str(err.value) and str(f) in str(err.value) and "\n" not in err.value.one_line()


def test_load_policy_toml_of_a_folder(tmp_path: Path) -> None:
    with pytest.raises(PolicyInvalid, match="cannot be read"):
        load_policy_toml(str(tmp_path))
