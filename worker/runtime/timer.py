"""Timers on the broker thread (ETA releases, rate-limit releases, time limits, heartbeats).

:class:`Timer` is a plain heap of callbacks keyed by monotonic time; the broker loop asks it how
long it may block (:meth:`Timer.next_delay`) and runs what is due (:meth:`Timer.run_due`). It
reads no clock by itself: callers pass ``now``. ETA tasks wait in
:mod:`worker.runtime.pipeline.eta_stage`.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Timer", "TimerEntry"]


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
