"""The drift window's running sum equals summing its chunks, through expiry and restarts."""

from __future__ import annotations

import numpy as np

from serving.monitor.bin_window import BinWindow


def test_the_running_sum_is_the_sum_of_the_chunks_in_the_window() -> None:
    rng = np.random.default_rng(2)
    window = BinWindow(seconds=10.0, max_chunks=25)
    kept: list[tuple[float, np.ndarray]] = []
    for i in range(100):
        ts = i * 0.5
        chunk = rng.integers(0, 9, size=(4, 6))
        assert window.add(ts, chunk.tolist())
        kept = [(t, c) for t, c in [*kept, (ts, chunk)] if ts - t <= 10.0][-25:]
        total = window.total(ts)
        assert total is not None
        assert (total == np.sum([c for _, c in kept], axis=0)).all()
    assert window.total(49.5 + 10.5) is None  # every chunk has left the window


def test_chunks_that_are_not_tables_are_refused_and_a_new_shape_restarts() -> None:
    window = BinWindow(seconds=60.0)
    assert not window.add(1.0, [[1, 2], [3]])  # ragged
    assert not window.add(1.0, [1, 2, 3])  # not a table
    assert window.total(1.0) is None
    assert window.add(1.0, [[1, 2], [3, 4]])
    assert window.add(2.0, [[1, 1, 1]])
    total = window.total(2.0)
    assert total is not None and total.tolist() == [[1, 1, 1]]
