"""Waits on the broker that end in time: pika's blocking calls wait for answers a blocked
broker never sends (it stops reading our socket), and its ``process_data_events`` does not
return for events of its inner connection (publisher confirms). Internals of pika 1.x, kept
here in one place."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["bounded", "wake", "watch"]

CHECK_EVERY = 0.05  # s


class _Wake:
    """A no-op ready event: makes a running ``process_data_events`` return at once."""

    @staticmethod
    def dispatch() -> None:
        return None


class _GaveUpError(Exception):
    """Raised inside pika's I/O loop to end a wait (see :func:`bounded`)."""


def wake(conn: Any) -> None:
    """End the current ``process_data_events`` of the BlockingConnection ``conn`` now."""
    conn._ready_events.append(_Wake())


def watch(
    conn: Any, timeout: float, blocked: Callable[[], bool], give_up: Callable[[], None]
) -> list[bool]:
    """Call ``give_up`` from ``conn``'s I/O loop once ``timeout`` s pass or ``blocked()`` is
    true, whichever comes first. Setting the returned flag's item to True ends the watch."""
    impl = conn._impl
    deadline = time.monotonic() + timeout
    over = [False]

    def check() -> None:
        if over[0]:
            return
        if not blocked() and time.monotonic() < deadline:
            impl._adapter_call_later(CHECK_EVERY, check)
            return
        over[0] = True
        give_up()

    impl._adapter_call_later(CHECK_EVERY, check)
    return over


def bounded(conn: Any, op: Callable[[], None], timeout: float, blocked: Callable[[], bool]) -> bool:
    """Run ``op`` (a pika call on ``conn`` waiting for the broker); give up after ``timeout`` s
    or once ``blocked()``. False when it gave up (the answer may still come later)."""

    def give_up() -> None:
        raise _GaveUpError

    over = watch(conn, timeout, blocked, give_up)
    try:
        op()
    except _GaveUpError:
        return False
    finally:
        over[0] = True
    return True
