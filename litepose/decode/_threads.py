"""One small thread pool for the decoder's compiled kernels, which release the GIL: independent
pieces of one decode (refine's searches of different joints, the merge of the image and of its
mirror) then run at once on separate cores, with the same results."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["MAX_THREADS", "even_ranges", "in_threads"]

T = TypeVar("T")
R = TypeVar("R")

#: threads one call uses at most: the caller's own and the pool's helpers
MAX_THREADS = 8
_POOL: ThreadPoolExecutor | None = None
_LOCK = threading.Lock()


def _forget_pool() -> None:
    """In a forked child the pool's threads do not exist: a new pool is made on first use."""
    global _POOL, _LOCK
    _POOL, _LOCK = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def in_threads(work: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """``[work(item) for item in items]``, the first item in the calling thread and the others at
    the same time on a shared pool (created on first use); at most :data:`MAX_THREADS` items."""
    global _POOL
    if len(items) > MAX_THREADS:
        raise ValueError(f"at most {MAX_THREADS} items at once, got {len(items)}")
    if len(items) <= 1:
        return [work(item) for item in items]
    with _LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(MAX_THREADS - 1, thread_name_prefix="litepose-decode")
    futures = [_POOL.submit(work, item) for item in items[1:]]
    first = work(items[0])
    return [first, *(f.result() for f in futures)]


def even_ranges(n: int, parts: int) -> list[tuple[int, int]]:
    """``range(n)`` cut into ``parts`` contiguous ``(start, stop)`` ranges of about equal length
    (at least one, at most ``n`` and :data:`MAX_THREADS`)."""
    parts = max(1, min(parts, n, MAX_THREADS))
    cuts = [round(i * n / parts) for i in range(parts + 1)]
    return list(zip(cuts, cuts[1:]))
