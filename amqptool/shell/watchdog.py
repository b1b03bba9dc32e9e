"""The per-command timeout: no broker request of a shell command may wait longer than it.

A command that is stuck waiting for the broker (a half-open connection: the peer stopped
answering but the socket is still up) is interrupted by ``SIGALRM`` after ``seconds`` without
progress. Long commands (a consume, a move of thousands of messages) call :meth:`Watchdog.alive`
as they make progress, which starts the count again, so the timeout bounds each wait, not the
whole command. The alarm raises :class:`CommandTimeout`, a BaseException like
KeyboardInterrupt, so that no ``except Exception`` on the way (pika's, the transport's error
translation) swallows it.

The alarm only works in the main thread (a Python rule); elsewhere the watchdog does nothing.
Pure standard library.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["DEFAULT_TIMEOUT", "CommandTimeout", "Watchdog"]

DEFAULT_TIMEOUT = 30.0


class CommandTimeout(BaseException):
    """The broker did not answer within the command timeout."""


class Watchdog:
    def __init__(self, seconds: float = DEFAULT_TIMEOUT) -> None:
        self.seconds = seconds
        self._armed = False

    @property
    def usable(self) -> bool:
        return self.seconds > 0 and threading.current_thread() is threading.main_thread()

    def alive(self, seconds: float | None = None) -> None:
        """Progress was made: the next wait gets ``seconds`` (default: the timeout) again."""
        if self._armed:
            signal.setitimer(signal.ITIMER_REAL, seconds or self.seconds)

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Arm the alarm for the duration of one command (nested guards are no-ops)."""
        if self._armed or not self.usable:
            yield
            return
        previous = signal.signal(signal.SIGALRM, _raise_timeout)
        # Someone else's alarm (a test runner's timeout) is put back afterwards, minus our time.
        pending, interval = signal.getitimer(signal.ITIMER_REAL)
        started = time.monotonic()
        self._armed = True
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            self._armed = False
            signal.signal(signal.SIGALRM, previous)
            if pending > 0:
                left = max(pending - (time.monotonic() - started), 0.001)
                signal.setitimer(signal.ITIMER_REAL, left, interval)


def _raise_timeout(_signum: int, _frame: FrameType | None) -> None:
    raise CommandTimeout
