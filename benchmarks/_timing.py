"""Wall-clock timing shared by the benchmark scripts (run as ``python benchmarks/<name>.py``,
which puts this folder on ``sys.path``)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def timed(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    """(median, min) milliseconds of ``fn()`` over ``runs`` calls after one warm-up call; the
    minimum is the figure least disturbed by other load."""
    fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), min(times)
