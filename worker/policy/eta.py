"""When a task with an ``eta``/``countdown`` runs: the policy and the in-memory timer heap.

Pure: every call takes the time as an explicit, timezone-aware ``now`` (naive values are taken
as UTC, like Celery 5).

The policy (:func:`decide`), fixing the trap of docs/protocol.md §5.3 (RabbitMQ's
``consumer_timeout``, 30 min by default, kills a channel that holds a message unacknowledged too
long; many held ETA tasks overflow prefetch):

- ``"run"``: no eta, or it has passed: hand the request to the pool now.
- ``"hold"``: due within ``threshold`` seconds (default 600, well under the consumer timeout):
  keep it unacknowledged in an :class:`EtaSchedule` with prefetch raised by one, as Celery does.
  If the worker dies, the broker redelivers it.
- ``"park"``: due later: publish a copy to a broker-side parking queue that dead-letters it back
  to the task's queue (:mod:`amqptool.transport.delayed`), and ack the original only after the
  broker confirmed the copy. It comes back in time, possibly after a few hops, and is decided
  again; it never runs before its eta because the last stretch is always held here.

A threshold of ``None`` never parks (Celery's behaviour).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar

from amqptool.codec.times import format_iso

__all__ = [
    "DEFAULT_PARK_THRESHOLD",
    "ETA_PRIORITY",
    "MIN_PARK_SECONDS",
    "Decision",
    "EtaSchedule",
    "decide",
    "is_expired",
    "seconds_until",
]

T = TypeVar("T")

Decision = Literal["run", "hold", "park"]

DEFAULT_PARK_THRESHOLD = 600.0
MIN_PARK_SECONDS = 1.0  # the smallest parking bucket; shorter waits are always held
ETA_PRIORITY = 6  # what Celery's ``scheduled`` reply shows for every timer entry


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def seconds_until(when: datetime, now: datetime) -> float:
    """Seconds from ``now`` to ``when`` (negative when it has passed)."""
    return (_aware(when) - _aware(now)).total_seconds()


def decide(
    eta: datetime | None, now: datetime, threshold: float | None = DEFAULT_PARK_THRESHOLD
) -> Decision:
    """``"run"``, ``"hold"`` (in memory) or ``"park"`` (on the broker) for a request's eta."""
    if eta is None:
        return "run"
    remaining = seconds_until(eta, now)
    if remaining <= 0:
        return "run"
    if threshold is None or remaining <= max(threshold, MIN_PARK_SECONDS):
        return "hold"
    return "park"


def is_expired(expires: datetime | None, now: datetime) -> bool:
    """True when a request with this ``expires`` must not run at ``now`` (docs/protocol.md §1.5)."""
    return expires is not None and _aware(now) >= _aware(expires)


@dataclass(order=True)
class _Entry(Generic[T]):
    when: datetime
    seq: int
    item_id: str = field(compare=False)
    item: T = field(compare=False)


class EtaSchedule(Generic[T]):
    """Requests waiting for their eta, earliest first; ``key`` gives a request's task id.

    Scheduling an id again replaces the earlier entry. Cancelled entries are dropped lazily.
    """

    def __init__(self, key: Callable[[T], str]) -> None:
        self._key = key
        self._heap: list[_Entry[T]] = []
        self._live: dict[str, _Entry[T]] = {}
        self._seq = itertools.count()

    def schedule(self, when: datetime, item: T) -> None:
        """Hold ``item`` until ``when``."""
        item_id = self._key(item)
        entry = _Entry(_aware(when), next(self._seq), item_id, item)
        self._live[item_id] = entry
        heapq.heappush(self._heap, entry)
        if len(self._heap) > 2 * len(self._live) + 64:  # many cancelled: rebuild
            self._heap = list(self._live.values())
            heapq.heapify(self._heap)

    def cancel(self, item_id: str) -> T | None:
        """Take a request out (e.g. revoked); returns it, or None when it was not held."""
        entry = self._live.pop(item_id, None)
        return None if entry is None else entry.item

    def _skip_dead(self) -> None:
        while self._heap and self._live.get(self._heap[0].item_id) is not self._heap[0]:
            heapq.heappop(self._heap)

    def pop_due(self, now: datetime) -> list[T]:
        """The requests whose eta is at or before ``now``, earliest first (removed)."""
        at = _aware(now)
        due: list[T] = []
        self._skip_dead()
        while self._heap and self._heap[0].when <= at:
            entry = heapq.heappop(self._heap)
            del self._live[entry.item_id]
            due.append(entry.item)
            self._skip_dead()
        return due

    def next_due(self) -> datetime | None:
        """The earliest eta held, or None."""
        self._skip_dead()
        return self._heap[0].when if self._heap else None

    def seconds_until_next(self, now: datetime) -> float | None:
        """Seconds until the earliest eta (0.0 when one is due), or None when empty."""
        nxt = self.next_due()
        return None if nxt is None else max(0.0, seconds_until(nxt, now))

    def get(self, item_id: str) -> T | None:
        entry = self._live.get(item_id)
        return None if entry is None else entry.item

    def eta_of(self, item_id: str) -> datetime | None:
        entry = self._live.get(item_id)
        return None if entry is None else entry.when

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._live

    def __len__(self) -> int:
        return len(self._live)

    def entries(self) -> list[tuple[datetime, T]]:
        """``(eta, request)`` pairs, earliest first (ties in scheduling order)."""
        return [(e.when, e.item) for e in sorted(self._live.values())]

    def items(self, describe: Callable[[T], Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The ``scheduled`` inspect reply: ``{"eta", "priority": 6, "request"}`` per request.

        ``describe`` gives the request-info object (docs/protocol.md §4.6).
        """
        return [
            {
                "eta": format_iso(when.astimezone(UTC)),
                "priority": ETA_PRIORITY,
                "request": dict(describe(item)),
            }
            for when, item in self.entries()
        ]

    def drain(self) -> list[T]:
        """Everything held, earliest first, leaving the schedule empty (shutdown)."""
        items = [item for _, item in self.entries()]
        self._heap.clear()
        self._live.clear()
        return items
