"""Per-task-type rate limits: Celery's rate strings and a token bucket per task name.

Pure: every method takes the time as an explicit ``now`` (seconds on a monotonic clock, e.g.
``time.monotonic()``). :class:`RateLimiter` reads its ``clock`` only when ``now`` is left out.

Semantics (as Celery's worker, docs/protocol.md §5.5):

- A rate is ``"N/s"``, ``"N/m"``, ``"N/h"`` or a number (per second); ``0``, ``"0"``, ``None``
  and ``""`` mean *unlimited*. Anything else raises ``ValueError`` whose text is what Celery
  replies to the ``rate_limit`` control command, e.g.
  ``Invalid rate limit string: ValueError("could not convert string to float: 'bogus'")``.
- Each task name has its own bucket, per worker (not cluster-wide, like Celery).
- Burst: the bucket holds ``burst`` tokens (default **1**, Celery's capacity), refilled at the
  rate, and starts full. With burst 1 a limit of ``N/s`` admits the first task at once and then
  one every ``1/N`` s; a larger ``burst`` lets that many through back to back after an idle
  spell. Over any window of ``W`` seconds at most ``burst + N*W`` tasks start.
- Tasks that must wait are *held* in FIFO order per task name (:meth:`RateLimiter.submit`), never
  dropped; :meth:`RateLimiter.release` hands them out as tokens come in, and
  :meth:`RateLimiter.drain` gives back what is still held (warm shutdown leaves those messages
  unacknowledged, so the broker redelivers them).
- Changing a rate (the ``rate_limit`` control command) gives the task a fresh, full bucket (as
  Celery's ``reset_rate_limits``); removing it lets everything held for that name go.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = [
    "RateLimiter",
    "TokenBucket",
    "format_rate",
    "parse_rate",
    "rate_disables",
]

T = TypeVar("T")

_UNITS: dict[str, float] = {"s": 1.0, "m": 60.0, "h": 3600.0}

RateSpec = str | int | float | None
_EPSILON = 1e-9


def _invalid(inner: Exception) -> ValueError:
    return ValueError(f"Invalid rate limit string: {inner!r}")


def parse_rate(value: RateSpec) -> float | None:
    """Tokens per second for a Celery rate limit, or ``None`` for "no limit".

    >>> parse_rate("10/m")
    0.16666666666666666
    >>> parse_rate("0") is None
    True
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise _invalid(ValueError(f"a rate limit is not a boolean: {value!r}"))
    if isinstance(value, int | float):
        per_second = float(value)
    elif isinstance(value, str):
        ops, _, unit = value.partition("/")
        unit = unit.strip() or "s"
        try:
            count = float(ops)
        except ValueError as exc:  # Celery's reply quotes float()'s own message
            raise _invalid(exc) from None
        divisor = _UNITS.get(unit)
        if divisor is None:
            raise _invalid(ValueError(f"unknown rate unit {unit!r} (use s, m or h)"))
        per_second = count / divisor
    else:
        raise _invalid(TypeError(f"a rate limit must be a string or a number, not {value!r}"))
    if math.isnan(per_second) or math.isinf(per_second) or per_second < 0:
        raise _invalid(ValueError(f"a rate limit must be a finite number >= 0: {value!r}"))
    return per_second or None


def rate_disables(value: RateSpec) -> bool:
    """True when the control command's raw value is falsy, as Celery tests it.

    Celery answers ``"rate limit disabled successfully"`` only for a falsy JSON value (``0``,
    ``null``, ``""``); the string ``"0"`` also removes the limit but is answered with
    ``"new rate limit set successfully"`` (docs/protocol.md §4.6).
    """
    return not value


def format_rate(per_second: float | None) -> str:
    """A readable rate (``"10/m"``, ``"2/s"``, ``"0"`` for unlimited) for logs and listings."""
    if per_second is None:
        return "0"
    for unit, divisor in (("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        count = per_second * divisor
        if count >= 1 and abs(count - round(count)) < 1e-9:
            return f"{round(count)}/{unit}"
    return f"{per_second:g}/s"


class TokenBucket:
    """A token bucket: ``capacity`` tokens, refilled at ``fill_rate`` per second.

    Starts full at ``now``. Taking never goes below zero: a caller that cannot take learns how
    long to wait.
    """

    def __init__(self, fill_rate: float, capacity: float = 1.0, *, now: float) -> None:
        if not fill_rate > 0:
            raise ValueError(f"fill rate must be > 0, not {fill_rate!r}")
        if not capacity >= 1:
            raise ValueError(f"capacity must be >= 1, not {capacity!r}")
        self.fill_rate = float(fill_rate)
        self.capacity = float(capacity)
        self._tokens = self.capacity
        self._stamp = now

    def tokens(self, now: float) -> float:
        """The tokens available at ``now`` (refills first)."""
        if now > self._stamp:
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.fill_rate)
            self._stamp = now
        return self._tokens

    def expected_time(self, now: float, tokens: float = 1.0) -> float:
        """Seconds until ``tokens`` are available (0 when they are now)."""
        missing = tokens - self.tokens(now)
        if missing <= _EPSILON:  # float dust from the refill arithmetic is not a wait
            return 0.0
        return missing / self.fill_rate

    def try_take(self, now: float, tokens: float = 1.0) -> float:
        """Take ``tokens`` and return 0.0, or take nothing and return the seconds to wait."""
        wait = self.expected_time(now, tokens)
        if wait <= 0.0:
            self._tokens = max(0.0, self._tokens - tokens)
            return 0.0
        return wait


@dataclass
class _Held(Generic[T]):
    seq: int
    item: T


@dataclass
class _Limit(Generic[T]):
    rate: float | None
    bucket: TokenBucket | None
    held: deque[_Held[T]] = field(default_factory=deque)


class RateLimiter(Generic[T]):
    """A bucket per task name, plus the requests held while they wait for a token.

    ``T`` is whatever the worker holds (a request object); the limiter never looks inside.
    """

    def __init__(self, *, burst: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        if not burst >= 1:
            raise ValueError(f"burst must be >= 1, not {burst!r}")
        self.burst = float(burst)
        self._clock = clock
        self._limits: dict[str, _Limit[T]] = {}
        self._seq = itertools.count()

    def _now(self, now: float | None) -> float:
        return self._clock() if now is None else now

    # ------------------------------------------------------------------ limits

    def set_rate(self, name: str, rate: RateSpec, *, now: float | None = None) -> float | None:
        """Set (or with 0/None/"" remove) the limit of ``name``; returns tokens per second.

        Raises ``ValueError`` (Celery's reply text) for a bad rate, leaving the old limit.
        A new limit starts with a full bucket; held requests stay held, in order.
        """
        per_second = parse_rate(rate)
        limit = self._limits.get(name)
        held: deque[_Held[T]] = limit.held if limit is not None else deque()
        bucket = (
            None if per_second is None else TokenBucket(per_second, self.burst, now=self._now(now))
        )
        if bucket is None and not held:
            self._limits.pop(name, None)
        else:
            self._limits[name] = _Limit(per_second, bucket, held)
        return per_second

    def rate_of(self, name: str) -> float | None:
        """Tokens per second for ``name``, or None when it is not limited."""
        limit = self._limits.get(name)
        return None if limit is None else limit.rate

    def rates(self) -> dict[str, float]:
        """Every limited task name and its rate (tokens per second)."""
        return {name: lim.rate for name, lim in self._limits.items() if lim.rate is not None}

    def try_acquire(self, name: str, now: float | None = None) -> float:
        """0.0 and a token taken when ``name`` may run now; else the seconds to wait.

        Ignores held requests: use :meth:`submit` to keep FIFO order with them.
        """
        limit = self._limits.get(name)
        if limit is None or limit.bucket is None:
            return 0.0
        return limit.bucket.try_take(self._now(now))

    # ------------------------------------------------------------------ holding

    def submit(self, name: str, item: T, now: float | None = None) -> bool:
        """True when ``item`` may run now (a token was taken); else it is held, in order."""
        limit = self._limits.get(name)
        if limit is None or (limit.bucket is None and not limit.held):
            return True
        if not limit.held and self.try_acquire(name, now) == 0.0:
            return True
        limit.held.append(_Held(next(self._seq), item))
        return False

    def release(self, now: float | None = None) -> list[T]:
        """The held items whose turn has come, in arrival order (tokens are taken for them)."""
        at = self._now(now)
        out: list[_Held[T]] = []
        for name in list(self._limits):
            limit = self._limits[name]
            while limit.held and (limit.bucket is None or limit.bucket.try_take(at) == 0.0):
                out.append(limit.held.popleft())
            if limit.bucket is None and not limit.held:
                del self._limits[name]
        out.sort(key=lambda h: h.seq)
        return [h.item for h in out]

    def next_release(self, now: float | None = None) -> float | None:
        """Seconds until :meth:`release` has something (0.0 = now), or None when nothing waits."""
        at = self._now(now)
        waits = [
            0.0 if limit.bucket is None else limit.bucket.expected_time(at)
            for limit in self._limits.values()
            if limit.held
        ]
        return min(waits) if waits else None

    def held(self, name: str | None = None) -> list[T]:
        """The held items (of one task name, or all), in arrival order."""
        entries = [h for n, lim in self._limits.items() if name in (None, n) for h in lim.held]
        entries.sort(key=lambda h: h.seq)
        return [h.item for h in entries]

    def remove(self, predicate: Callable[[T], bool]) -> list[T]:
        """Take the held items matching ``predicate`` out (e.g. a revoked request)."""
        removed: list[_Held[T]] = []
        for limit in self._limits.values():
            keep: deque[_Held[T]] = deque()
            for h in limit.held:
                (removed if predicate(h.item) else keep).append(h)
            limit.held = keep
        removed.sort(key=lambda h: h.seq)
        return [h.item for h in removed]

    def drain(self) -> list[T]:
        """Everything still held, in arrival order, leaving nothing held (warm shutdown)."""
        items = self.held()
        for name in list(self._limits):
            limit = self._limits[name]
            limit.held.clear()
            if limit.bucket is None:
                del self._limits[name]
        return items

    def __len__(self) -> int:
        """How many items are held."""
        return sum(len(lim.held) for lim in self._limits.values())
