"""The target tree's guards against paths this client's root cannot hold as distinct files."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from regen.daemon.run.target import case_insensitive, folded


def test_a_case_sensitive_root_is_recognised_and_left_as_it_was(tmp_path: Path) -> None:
    assert case_insensitive(str(tmp_path)) is False  # empty: probed with a temp file, removed after
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "Etc").mkdir()
    (tmp_path / "etc").mkdir()  # both exist: case-sensitive, found without writing anything
    assert case_insensitive(str(tmp_path)) is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Etc", "etc"]


def test_a_root_that_cannot_be_probed_counts_as_case_insensitive(tmp_path: Path) -> None:
    assert case_insensitive(str(tmp_path / "missing")) is True  # colliding paths refused; nothing else changes


def test_names_a_folding_filesystem_merges_fold_alike() -> None:
    assert folded("doc/README") == folded("Doc/readme")
    assert folded("Stra\u00dfe") == folded("STRASSE")  # full case folding
    assert folded("Re\u0301sume\u0301") == folded("R\u00e9sum\u00e9")  # NFD and NFC forms
    assert folded("doc/readme") != folded("doc/readme2")


@given(st.text(alphabet=st.characters(codec="ascii", categories=["L", "N", "P"]), min_size=1, max_size=40))
def test_names_differing_only_in_case_fold_alike(name: str) -> None:
    assert folded(name.upper()) == folded(name.lower()) == folded(name)
