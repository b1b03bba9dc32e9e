"""What the worker knows about its tasks: revoked ids, counters, rate limits (broker thread).

``revoked`` is a bounded, expiring set like Celery's ``LimitedSet`` (PROTOCOL.md §5.4): at most
50 000 ids, each kept 3 hours, oldest evicted first. Time is passed in, never read here.
"""

from __future__ import annotations

import re
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

__all__ = ["LimitedSet", "WorkerState", "parse_rate"]

REVOKES_MAX = 50_000
REVOKE_EXPIRES = 10_800.0


class LimitedSet:
    """A set with a size bound and an age bound (insertion order = age)."""

    def __init__(self, maxlen: int = REVOKES_MAX, expires: float = REVOKE_EXPIRES) -> None:
        self.maxlen = maxlen
        self.expires = expires
        self._data: OrderedDict[str, float] = OrderedDict()

    def add(self, item: str, now: float) -> None:
        self._data.pop(item, None)
        self._data[item] = now
        self.purge(now)

    def update(self, items: Iterable[str], now: float) -> None:
        for item in items:
            self._data.pop(item, None)
            self._data[item] = now
        self.purge(now)

    def purge(self, now: float) -> None:
        data = self._data
        while len(data) > self.maxlen:
            data.popitem(last=False)
        while data:
            first, when = next(iter(data.items()))
            if now - when <= self.expires:
                break
            del data[first]

    def discard(self, item: str) -> None:
        self._data.pop(item, None)

    def __contains__(self, item: object) -> bool:
        return item in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


_RATE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(?:/\s*([smh]))?\s*$")
_PER = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_rate(value: str | float | int | None) -> float:
    """Tasks per second for ``"10/m"``, ``"5/s"``, ``"2/h"`` or a number (per second).

    0, ``""`` and None mean "no limit" (0.0). Raises ValueError like Celery's ``rate()``.
    """
    if value is None or value == "":
        return 0.0
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = _RATE.match(str(value))
    if not match:
        raise ValueError(f"could not convert string to float: {value!r}")
    return float(match.group(1)) / _PER[match.group(2) or "s"]


@dataclass
class WorkerState:
    """Counters and sets the control commands and heartbeats read."""

    revoked: LimitedSet = field(default_factory=LimitedSet)
    total: Counter[str] = field(default_factory=Counter)  # task name (or shadow) -> accepted
    processed: int = 0
    rate_limits: dict[str, str | float] = field(default_factory=dict)
