"""One stop policy for every long run: SIGINT (Ctrl-C) and SIGTERM (``kill``, ``timeout``,
``docker stop``, systemd) both stop cleanly.

The command line calls :func:`handle_signals` once. From then on a signal is handled in one of two
ways, by where the program is:

- inside :func:`graceful` (a loop over items that checks :func:`stop_requested` between them): the
  first signal only asks to stop, so the loop finishes its current item, closes its writers and
  reports what it did; a second signal stops at once (:class:`Stopped`);
- anywhere else: :class:`Stopped` is raised at once. It is a ``KeyboardInterrupt``, so every
  ``finally`` and ``except BaseException`` that cleans up after Ctrl-C runs for SIGTERM too.

Either way the process exits with ``128 + signal number`` (130 for SIGINT, 143 for SIGTERM), the
shells' convention. Library users who never call :func:`handle_signals` keep Python's defaults:
:func:`stop_requested` is then always False and Ctrl-C raises ``KeyboardInterrupt`` as usual.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["Stopped", "exit_code", "graceful", "handle_signals", "request_stop", "stop_requested", "stop_signal"]

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(KeyboardInterrupt):
    """The run was stopped by ``signum`` (SIGINT or SIGTERM)."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


class _State:
    installed = False
    depth = 0  # nesting of graceful() regions
    requested: int | None = None  # the signal that asked to stop
    raised = False  # Stopped was raised: the run is unwinding through its cleanups
    closing = False  # the process is ending: its exit code stands


_state = _State()


def _name(signum: int) -> str:
    return signal.Signals(signum).name


def _handler(signum: int, frame: Any) -> None:
    if _state.raised or _state.closing:  # already stopping at once, or ending: cleanups are not cut short
        return
    request_stop(signum)


def closing() -> None:
    """The process ends next: later SIGINT / SIGTERM are ignored, so its exit code stands."""
    _state.closing = True
    if threading.current_thread() is threading.main_thread():
        for s in SIGNALS:
            signal.signal(s, signal.SIG_IGN)


def request_stop(signum: int = signal.SIGTERM) -> None:
    """Do what receiving ``signum`` does under this policy, from code (the main thread): inside
    :func:`graceful` the first call asks the loop to stop after its current item, otherwise (or the
    second time) :class:`Stopped` is raised here. For a service's own shutdown hook, and for tests."""
    if _state.depth > 0 and _state.requested is None:
        _state.requested = signum
        print(
            f"{_name(signum)}: stopping after the current item (send it again to stop at once)",
            file=sys.stderr,
            flush=True,
        )
        return
    _state.requested = _state.requested or signum
    _state.raised = True
    raise Stopped(signum)


def handle_signals() -> Callable[[], None]:
    """Route SIGINT and SIGTERM through this module's policy (main thread only; elsewhere a no-op).
    Returns a function that puts the previous handlers back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    for s in SIGNALS:
        signal.signal(s, _handler)
    _state.installed, _state.requested, _state.depth = True, None, 0
    _state.raised = _state.closing = False

    def restore() -> None:
        for s, h in previous.items():
            signal.signal(s, h)
        _state.installed = False

    return restore


@contextlib.contextmanager
def graceful() -> Iterator[None]:
    """A region whose loop checks :func:`stop_requested` between items: a first signal lets the
    current item finish instead of raising in its middle."""
    _state.depth += 1
    try:
        yield
    finally:
        _state.depth -= 1


def stop_requested() -> bool:
    """Whether a signal asked the run to stop (see :func:`graceful`)."""
    return _state.requested is not None


def stop_signal() -> int | None:
    """The signal that asked to stop, if any."""
    return _state.requested


def exit_code(e: BaseException | None = None) -> int:
    """The exit code of a stopped run: 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM)."""
    signum = getattr(e, "signum", None) or _state.requested or signal.SIGINT
    return 128 + int(signum)


def stopped_by() -> str:
    """The stopping signal's name, for messages ("SIGTERM"); "SIGINT" when none was recorded."""
    return _name(_state.requested or signal.SIGINT)
