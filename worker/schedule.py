"""Timers on the broker thread, and ETA/countdown holding (PROTOCOL.md §5.3).

:class:`Timer` is a plain heap of callbacks keyed by monotonic time; the broker loop asks it how
long it may block (:meth:`Timer.next_delay`) and runs what is due (:meth:`Timer.run_due`). It
reads no clock by itself: callers pass ``now``.

:class:`EtaHolder` keeps requests whose ``eta`` is in the future in memory, unacknowledged, each
on a timer; the prefetch count is raised by one per held request (so the worker keeps
receiving other work) and lowered when it is released. This is the simple version the
scheduling issue will replace; it keeps the same small interface (``hold``, ``held``,
``clear``).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

__all__ = ["EtaHolder", "Timer", "TimerEntry"]

T = TypeVar("T")


@dataclass(order=True)
class TimerEntry:
    when: float
    seq: int
    callback: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class Timer:
    """A heap of (monotonic deadline, callback)."""

    def __init__(self) -> None:
        self._heap: list[TimerEntry] = []
        self._seq = itertools.count()

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerEntry:
        entry = TimerEntry(when, next(self._seq), callback)
        heapq.heappush(self._heap, entry)
        return entry

    def next_delay(self, now: float) -> float | None:
        """Seconds until the next live entry (0 if overdue), None when there is none."""
        while self._heap and self._heap[0].cancelled:
            heapq.heappop(self._heap)
        if not self._heap:
            return None
        return max(0.0, self._heap[0].when - now)

    def run_due(self, now: float) -> int:
        """Run every entry due at ``now``; returns how many ran."""
        ran = 0
        while self._heap and self._heap[0].when <= now:
            entry = heapq.heappop(self._heap)
            if not entry.cancelled:
                entry.cancelled = True
                entry.callback()
                ran += 1
        return ran

    def clear(self) -> None:
        self._heap.clear()

    def __len__(self) -> int:
        return sum(1 for e in self._heap if not e.cancelled)


class EtaHolder(Generic[T]):
    """Holds items until their ETA, then hands them to ``release``.

    ``on_count(delta)`` is told +1 when an item is held and -1 when it leaves (the worker moves
    its prefetch count by the same amount).
    """

    def __init__(
        self,
        timer: Timer,
        release: Callable[[T], None],
        on_count: Callable[[int], None],
    ) -> None:
        self._timer = timer
        self._release = release
        self._on_count = on_count
        self._held: dict[int, tuple[T, datetime, TimerEntry]] = {}
        self._ids = itertools.count()

    def hold(self, item: T, eta: datetime, delay: float, now: float) -> None:
        """Keep ``item`` for ``delay`` seconds (its ETA is ``eta``, shown by ``scheduled``)."""
        key = next(self._ids)

        def fire() -> None:
            held = self._held.pop(key, None)
            if held is not None:
                self._on_count(-1)
                self._release(held[0])

        entry = self._timer.call_at(now + delay, fire)
        self._held[key] = (item, eta, entry)
        self._on_count(+1)

    def held(self) -> Iterator[tuple[T, datetime]]:
        """The items waiting, soonest first."""
        for item, eta, _entry in sorted(self._held.values(), key=lambda h: h[2].when):
            yield item, eta

    def clear(self) -> list[T]:
        """Drop everything held (connection lost, shutdown); returns the items."""
        items = []
        for item, _eta, entry in self._held.values():
            entry.cancel()
            items.append(item)
        if items:
            self._on_count(-len(items))
        self._held.clear()
        return items

    def __len__(self) -> int:
        return len(self._held)
