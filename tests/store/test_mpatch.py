"""Manifest line patches (regen.store.mpatch): applying the patch made from two byte strings gives
the second exactly; a malformed patch or one that reaches past its base is refused, never applied."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regen.store.mpatch import PatchInvalid, apply_patch, header, lines_of, make_patch

A, B = "a" * 64, "b" * 64
lines = st.lists(st.binary(max_size=12).map(lambda b: b.replace(b"\n", b"") + b"\n"), max_size=40)


@given(lines, lines, st.binary(max_size=5))
def test_applying_the_patch_gives_the_new_bytes(old: list[bytes], new: list[bytes], tail: bytes) -> None:
    base, target = b"".join(old), b"".join(new) + tail.replace(b"\n", b"")
    patch = make_patch(A, base, B, target)
    assert header(patch)["base"] == A and header(patch)["target"] == B
    assert apply_patch(base, patch) == target


@given(lines)
def test_lines_of_cuts_only_after_newlines(parts: list[bytes]) -> None:
    data = b"".join(parts) + b"x\r\x0b"
    assert b"".join(lines_of(data)) == data
    assert all(line.endswith(b"\n") for line in lines_of(data)[:-1])


def test_a_small_change_makes_a_small_patch() -> None:
    base = b"".join(b'{"path":"f%05d","id":"%064d"}\n' % (i, i) for i in range(5000))
    new = base.replace(b'"f02500","id":"', b'"f02500","id":"9', 1)
    patch = make_patch(A, base, B, new)
    assert len(patch) < 400
    assert apply_patch(base, patch) == new


@pytest.mark.parametrize("bad", [b"", b"not json\n", b'{"type":"x"}\n',
                                 b'{"base":"a","format":1,"size":2,"target":"b","type":"regen-manifest-patch"}\n'
                                 b"c 0 9\n",
                                 b'{"base":"a","format":1,"size":2,"target":"b","type":"regen-manifest-patch"}\n'
                                 b"i 1 5\nab\n",
                                 b'{"base":"a","format":1,"size":9,"target":"b","type":"regen-manifest-patch"}\n'
                                 b"c 0 1\n",
                                 b'{"base":"a","format":1,"size":2,"target":"b","type":"regen-manifest-patch"}\n'
                                 b"x 0 1\n"])
def test_a_malformed_patch_is_refused(bad: bytes) -> None:
    with pytest.raises(PatchInvalid):
        apply_patch(b"x\ny\n", bad)


def test_a_patch_over_the_size_limit_is_refused() -> None:
    patch = make_patch(A, b"", B, b"z\n" * 100)
    with pytest.raises(PatchInvalid):
        apply_patch(b"", patch, max_bytes=10)
