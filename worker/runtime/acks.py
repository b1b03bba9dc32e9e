"""Batched acknowledgements for one channel: as few ``basic.ack`` frames as is safe.

Every delivery on the task channel is registered in order. Marking a delivery "ack ready" does
not send anything; :meth:`AckTracker.flush` (once per broker-loop iteration) turns the ready
ones into frames: one ``basic.ack(multiple=True)`` for the longest run of ready deliveries at
the front (everything older is settled, so ``multiple`` cannot ack a message still held for an
ETA or waiting for the pool), and single acks for ready ones behind a delivery that is not.
Rejected/nacked deliveries are :meth:`forget`-ten (their frame was already sent).

A tracker belongs to one channel: after a reconnect the worker starts a new one (delivery tags
restart at 1, and acks for the old channel are meaningless).
"""

from __future__ import annotations

from collections import deque

__all__ = ["AckTracker"]


class AckTracker:
    def __init__(self) -> None:
        self._order: deque[int] = deque()
        self._ready: dict[int, bool] = {}  # tag -> ready to ack
        self._behind: set[int] = set()  # ready tags (maybe) not at the front

    def delivered(self, tag: int) -> None:
        self._order.append(tag)
        self._ready[tag] = False

    def ack(self, tag: int) -> None:
        if tag in self._ready:
            self._ready[tag] = True
            self._behind.add(tag)

    def forget(self, tag: int) -> None:
        self._ready.pop(tag, None)
        self._behind.discard(tag)

    def pending(self) -> int:
        """Deliveries not yet acked or forgotten."""
        return len(self._ready)

    def flush(self) -> list[tuple[int, bool]]:
        """The ``(delivery_tag, multiple)`` ack frames to send now."""
        if not self._behind:
            return []
        frames: list[tuple[int, bool]] = []
        order, ready = self._order, self._ready
        last = 0
        count = 0
        while order:
            tag = order[0]
            state = ready.get(tag)
            if state is None:  # forgotten
                order.popleft()
                continue
            if not state:
                break
            order.popleft()
            del ready[tag]
            last = tag
            count += 1
        if count:
            frames.append((last, count > 1))
        behind = self._behind
        for tag in sorted(behind):
            if ready.pop(tag, None):
                frames.append((tag, False))
        behind.clear()
        return frames
