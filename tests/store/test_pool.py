"""bounded_map: pool.map's results in order, with bounded memory (a client installing 100,000
files once held a future per object)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from hypothesis import given, settings
from hypothesis import strategies as st

from regen.store.pool import bounded_map


@settings(deadline=None, max_examples=50)
@given(st.lists(st.integers(), max_size=200), st.integers(min_value=1, max_value=9))
def test_results_come_in_input_order(items: list[int], window: int) -> None:
    with ThreadPoolExecutor(3) as pool:
        assert list(bounded_map(pool, lambda x: x * 2, items, window)) == [x * 2 for x in items]


def test_never_more_than_the_window_in_flight() -> None:
    lock = threading.Lock()
    live = {"now": 0, "most": 0}
    submitted = []

    def work(x: int) -> int:
        with lock:
            live["now"] += 1
            live["most"] = max(live["most"], live["now"])
        time.sleep(0.001)
        with lock:
            live["now"] -= 1
        return x

    def source():  # counts what bounded_map has pulled from its input
        for i in range(500):
            submitted.append(i)
            yield i

    with ThreadPoolExecutor(4) as pool:
        out = bounded_map(pool, work, source(), 8)
        first = [next(out) for _ in range(10)]
        assert first == list(range(10))
        assert len(submitted) <= 10 + 8  # the input is consumed lazily, a window ahead
        assert list(out) == list(range(10, 500))
    assert live["most"] <= 4


def test_a_consumer_that_stops_early_leaves_the_rest_unstarted() -> None:
    started = []

    def work(x: int) -> int:
        started.append(x)
        time.sleep(0.01)
        return x

    with ThreadPoolExecutor(1) as pool:
        out = bounded_map(pool, work, range(1000), 4)
        assert next(out) == 0
        out.close()
    assert len(started) < 10
