"""Two helper threads that take a video's reading and writing off the inference's path.

:class:`Ahead` decodes frames ahead of the consumer and :class:`Behind` draws and encodes them
behind it, each through a bounded queue (a few frames: memory stays flat, and a slow side holds
the other back instead of piling frames up). The network (torch, ONNX Runtime, OpenVINO), OpenCV's
decoder, drawing and encoder all release the GIL, so the three threads overlap on separate cores.

Both keep order (one thread each, first in first out), hand an error of their thread to the
caller (raised where it next touches them), and stop cleanly: the caller's thread is the only one
that sees signals (:mod:`litepose.interrupt`), and it decides whether :class:`Behind` finishes
what it was given (:meth:`Behind.finish`) or stops after its current item (:meth:`Behind.abort`).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

__all__ = ["Ahead", "Behind"]

_END = object()
_POLL_S = 0.2  # how often a waiting side looks whether the other has gone


class Ahead:
    """Iterate ``items`` in a thread, up to ``depth`` items ahead of the consumer; iteration yields
    ``(item, ms)``: each item with the milliseconds its thread spent producing it (a frame's
    decoding). An error of ``items`` is raised by the iteration, after the items before it.
    :meth:`close` (called when the iteration ends or is left) stops the thread, which then closes
    ``items`` itself (a ``VideoReader`` is released by the thread that reads it)."""

    def __init__(self, items: Iterable[Any], depth: int = 4, name: str = "litepose-read") -> None:
        self._items = items
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False

    def _put(self, entry: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        it = iter(self._items)
        try:
            while not self._stop.is_set():
                start = time.perf_counter()
                try:
                    item = next(it)
                except StopIteration:
                    break
                if not self._put((item, (time.perf_counter() - start) * 1000.0)):
                    break
        except BaseException as e:  # handed to the consumer
            self._put((_END, e))
            return
        finally:
            for done in (it, self._items):  # the generator, then its source (a VideoReader: idempotent)
                close = getattr(done, "close", None)
                if close is not None:
                    close()
        self._put((_END, None))

    def __iter__(self) -> Iterator[tuple[Any, float]]:
        if not self._started:
            self._started = True
            self._thread.start()
        try:
            while True:
                try:
                    item, extra = self._queue.get(timeout=_POLL_S)
                except queue.Empty:
                    if not self._thread.is_alive() and self._queue.empty():
                        return
                    continue
                if item is _END:
                    if extra is not None:
                        raise extra
                    return
                yield item, extra
        finally:
            self.close()

    def close(self, timeout: float = 10.0) -> None:
        """Stop reading ahead; wait (up to ``timeout`` seconds: a stream's read has a time limit of
        its own) for the thread to close its source."""
        self._stop.set()
        while True:  # unblock a thread waiting for room
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._started:
            self._thread.join(timeout)
        else:  # never iterated: the source is closed here, no thread ever touched it
            self._started = True
            close = getattr(self._items, "close", None)
            if close is not None:
                close()


class Behind:
    """Run ``work(item)`` on each item given to :meth:`put`, in order, in a thread up to ``depth``
    items behind the caller. An error of ``work`` ends the thread; :meth:`put`, :meth:`finish`
    raise it in the caller (the items after it are not worked on)."""

    def __init__(self, work: Callable[[Any], None], depth: int = 4, name: str = "litepose-write") -> None:
        self._work = work
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, depth))
        self._abort = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _END or self._abort.is_set():
                return
            try:
                self._work(item)
            except BaseException as e:  # handed to the caller
                self.error = e
                self._abort.set()
                return

    def _raise(self) -> None:
        if self.error is not None:
            e, self.error = self.error, None
            raise e

    def put(self, item: Any) -> None:
        """Queue ``item`` (waiting while ``depth`` items are queued); raises the thread's error."""
        while True:
            self._raise()
            if not self._thread.is_alive():
                raise RuntimeError("the writer thread has stopped")
            try:
                self._queue.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def finish(self) -> None:
        """Work on every queued item, then end the thread; raises its error. Interrupted (a second
        signal), it stops after the current item instead and re-raises."""
        try:
            while self._thread.is_alive():
                try:
                    self._queue.put(_END, timeout=_POLL_S)
                    break
                except queue.Full:
                    continue
            while self._thread.is_alive():
                self._thread.join(_POLL_S)
        except BaseException:
            self.abort()
            raise
        self._raise()

    def abort(self, timeout: float = 10.0) -> None:
        """Stop after the current item (the queued ones are dropped); errors are dropped too."""
        self._abort.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        try:
            self._queue.put_nowait(_END)
        except queue.Full:
            pass
        self._thread.join(timeout)
        self.error = None
