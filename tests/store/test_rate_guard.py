"""min_rate: a transfer that trickles below the floor for a whole timeout window is cut (a server
sending a byte now and then never trips the idle timeout); a reader that pauses is not."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from regen.store import InvalidInput, StoreUnreachable
from regen.store.backend import RateGuard, open_backend


class Trickle(io.RawIOBase):
    """A stream handing out `step` bytes per read, each after `delay` seconds (a slow server)."""

    def __init__(self, data: bytes, step: int, delay: float) -> None:
        self.data, self.step, self.delay, self.pos = data, step, delay, 0

    def read(self, n: int = -1) -> bytes:
        time.sleep(self.delay)
        out = self.data[self.pos:self.pos + min(self.step, n if n >= 0 else self.step)]
        self.pos += len(out)
        return out


def drain(guard: RateGuard, fp: Trickle, pause: float = 0.0) -> int:
    got = 0
    while chunk := guard.read(fp, 1 << 16):
        got += len(chunk)
        time.sleep(pause)
    return got


def test_a_trickle_below_the_floor_is_cut_naming_the_option() -> None:
    guard = RateGuard(1024, 0.3, "http://store", "objects/ab/cd")
    with pytest.raises(StoreUnreachable, match=r"bytes/s.*min_rate") as exc:
        drain(guard, Trickle(b"x" * 10_000, 16, 0.02))  # ~800 bytes/s
    assert exc.value.path == "objects/ab/cd"


def test_a_fast_enough_transfer_and_a_pausing_reader_are_not_cut() -> None:
    assert drain(RateGuard(1024, 0.2, "u", "p"), Trickle(b"x" * 20_000, 500, 0.01)) == 20_000  # ~50 KB/s
    # the reader's own pauses (0.1 s between reads, 10 bytes/s overall) are not counted
    assert drain(RateGuard(1024, 0.2, "u", "p"), Trickle(b"x" * 40, 20, 0.0), pause=0.1) == 40


def test_zero_turns_the_floor_off() -> None:
    assert drain(RateGuard(0, 0.05, "u", "p"), Trickle(b"x" * 200, 10, 0.01)) == 200


@pytest.mark.parametrize("bad", ["fast", -1, float("nan"), float("inf"), None])
def test_a_bad_min_rate_is_one_clear_error(tmp_path: Path, bad: object) -> None:
    with pytest.raises(InvalidInput, match="min_rate"):
        open_backend(f"file://{tmp_path}", {"min_rate": bad})


def test_min_rate_is_not_passed_to_the_storage_library(tmp_path: Path) -> None:
    b = open_backend(f"file://{tmp_path}", {"min_rate": 0, "timeout": 5})
    b.write("x", b"data")  # fsspec's local filesystem would reject an unknown option
    assert b.read("x") == b"data" and b.min_rate == 0
