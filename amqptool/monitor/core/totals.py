"""Totals since start, independent of how many tasks are kept in memory.

The task table forgets (``--max-tasks``, ``--max-bytes``); these counters never do. Every task
event is counted once, by kind (``sent`` ... ``rejected``), task name, worker, queue and, for
failures, exception class; succeeded tasks add their runtime to a histogram per task name.
Percentiles come from log-spaced buckets (5 % wide: p50/p95/p99 within 5 % of the exact value,
in constant memory), and fixed Prometheus buckets are kept beside them for ``/metrics``.

Label values are bounded too: past ``max_labels`` distinct names (or hosts, queues,
exceptions) new ones are counted under ``"other"``, so hostile events cannot grow memory.

The UI thread records; the metrics server thread reads :meth:`Totals.snapshot` (a lock guards
both). Pure core: no I/O, no UI toolkit.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["KINDS", "PROM_BUCKETS", "Runtimes", "Totals", "TotalsSnapshot", "TypeRow"]

#: Task event kinds, in lifecycle order (``task-<kind>``).
KINDS: tuple[str, ...] = (
    "sent",
    "received",
    "started",
    "succeeded",
    "failed",
    "retried",
    "revoked",
    "rejected",
)
#: prometheus_client's default histogram buckets (what celery-exporter uses by default).
PROM_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)
_LOG_BASE = math.log(1.05)
_LOG_MIN = 1e-6  # runtimes below 1 µs share the first bucket
OTHER = "other"

#: (kind, task name, hostname, queue, exception class) -> events
CountKey = tuple[str, str, str, str, str]


class Runtimes:
    """A runtime distribution: count, sum, Prometheus buckets and log buckets for percentiles."""

    __slots__ = ("count", "log_buckets", "prom", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.prom = [0] * (len(PROM_BUCKETS) + 1)  # the last one is +Inf
        self.log_buckets: dict[int, int] = {}

    def add(self, seconds: float) -> None:
        self.count += 1
        self.total += seconds
        self.prom[bisect.bisect_left(PROM_BUCKETS, seconds)] += 1
        index = int(math.log(max(seconds, _LOG_MIN) / _LOG_MIN) / _LOG_BASE)
        self.log_buckets[index] = self.log_buckets.get(index, 0) + 1

    def merge(self, other: Runtimes) -> None:
        self.count += other.count
        self.total += other.total
        for i, n in enumerate(other.prom):
            self.prom[i] += n
        for k, n in other.log_buckets.items():
            self.log_buckets[k] = self.log_buckets.get(k, 0) + n

    def copy(self) -> Runtimes:
        out = Runtimes()
        out.merge(self)
        return out

    def percentile(self, q: float) -> float | None:
        """The ``q`` quantile (0..1), the middle of its 5 % bucket; None when empty."""
        if not self.count:
            return None
        rank = max(1, math.ceil(q * self.count))
        seen = 0
        for index in sorted(self.log_buckets):
            seen += self.log_buckets[index]
            if seen >= rank:
                return _LOG_MIN * math.exp((index + 0.5) * _LOG_BASE)
        return None  # pragma: no cover - the buckets always hold ``count`` values

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None


@dataclass(frozen=True)
class TypeRow:
    """One task type in the task-types view."""

    name: str
    counts: dict[str, int]
    runtime: Runtimes

    @property
    def cells(self) -> tuple[str, ...]:
        from amqptool.monitor.core.formatting import fmt_duration

        def pct(q: float) -> str:
            value = self.runtime.percentile(q)
            return "-" if value is None else fmt_duration(value)

        return (
            self.name,
            *(str(self.counts.get(k, 0)) for k in ("received", "succeeded", "failed", "retried")),
            str(self.counts.get("revoked", 0) + self.counts.get("rejected", 0)),
            pct(0.5),
            pct(0.95),
            pct(0.99),
        )


@dataclass
class TotalsSnapshot:
    """A consistent copy for another thread (the metrics server)."""

    counts: dict[CountKey, int] = field(default_factory=dict)
    runtimes: dict[tuple[str, str, str], Runtimes] = field(default_factory=dict)


class _Labels:
    """Distinct values of one label, at most ``limit`` of them (then ``other``)."""

    __slots__ = ("limit", "seen")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.seen: set[str] = set()

    def __call__(self, value: str) -> str:
        seen = self.seen
        if value in seen:
            return value
        if len(seen) >= self.limit:
            return OTHER
        seen.add(value)
        return value


class Totals:
    """Counters since start (see the module docstring)."""

    def __init__(self, max_labels: int = 1000) -> None:
        self.lock = threading.Lock()  # guards the runtimes (the counts are single dict ops)
        self.counts: dict[CountKey, int] = {}
        # (name, hostname, queue) -> runtimes of succeeded tasks
        self.runtimes: dict[tuple[str, str, str], Runtimes] = {}
        self._name = _Labels(max_labels)
        self._host = _Labels(max_labels)
        self._queue = _Labels(max_labels)
        self._exc = _Labels(max_labels)
        self._by_kind: tuple[int, dict[str, int]] = (-1, {})
        self._version = 0

    def record(
        self,
        kind: str,
        name: str,
        hostname: str,
        queue: str = "",
        *,
        exception: str = "",
        runtime: float | None = None,
    ) -> None:
        """Count one ``task-<kind>`` event (and its runtime when it succeeded)."""
        counts = self.counts
        key = (kind, name, hostname, queue, exception)
        n = counts.get(key)
        if n is None:  # a new combination: bound each label's values first
            name = self._name(name)
            hostname = self._host(hostname)
            queue = self._queue(queue)
            key = (kind, name, hostname, queue, self._exc(exception) if exception else "")
            n = counts.get(key, 0)
        counts[key] = n + 1
        self._version += 1
        if runtime is not None:
            rkey = (name, hostname, queue)
            with self.lock:
                bucket = self.runtimes.get(rkey)
                if bucket is None:
                    bucket = self.runtimes[rkey] = Runtimes()
                bucket.add(runtime)

    def record_many(
        self, keys: Mapping[CountKey, int], runtimes: Sequence[tuple[CountKey, float]] = ()
    ) -> None:
        """Count a batch of events at once, exactly as :meth:`record` would one by one.

        ``keys`` maps ``(kind, name, hostname, queue, exception)`` to its number of events, in
        the order each key was first seen (so the label bounds see new values in the same
        order); ``runtimes`` holds the ``(key, runtime)`` of succeeded tasks, in order.
        """
        counts = self.counts
        mapped: dict[CountKey, CountKey] = {}  # raw key -> counted key, for the runtimes
        events = 0
        for key, n in keys.items():
            events += n
            seen = counts.get(key)
            if seen is not None:
                counts[key] = seen + n
                continue
            # a new combination: bound each label's values first
            kind, name, hostname, queue, exception = key
            target = (
                kind,
                self._name(name),
                self._host(hostname),
                self._queue(queue),
                self._exc(exception) if exception else "",
            )
            mapped[key] = target
            counts[target] = counts.get(target, 0) + n
        self._version += events
        if runtimes:
            with self.lock:
                buckets = self.runtimes
                for key, runtime in runtimes:
                    target = mapped.get(key, key)
                    rkey = (target[1], target[2], target[3])
                    bucket = buckets.get(rkey)
                    if bucket is None:
                        bucket = buckets[rkey] = Runtimes()
                    bucket.add(runtime)

    def _counts(self) -> list[tuple[CountKey, int]]:
        while True:
            try:
                return list(self.counts.items())
            except RuntimeError:  # pragma: no cover - resized by the UI thread meanwhile
                continue

    def total(self, kind: str) -> int:
        version, by_kind = self._by_kind
        if version != self._version:
            by_kind = {}
            for key, n in self._counts():
                by_kind[key[0]] = by_kind.get(key[0], 0) + n
            self._by_kind = (self._version, by_kind)
        return by_kind.get(kind, 0)

    def by(self, field: int) -> dict[str, dict[str, int]]:
        """``{label value: {kind: events}}`` by task name (1), hostname (2) or queue (3)."""
        out: dict[str, dict[str, int]] = {}
        for key, n in self._counts():
            per = out.setdefault(key[field], {})
            per[key[0]] = per.get(key[0], 0) + n
        return out

    def host_total(self, hostname: str, kind: str) -> int:
        return sum(n for key, n in self._counts() if key[2] == hostname and key[0] == kind)

    def runtime_by_name(self) -> dict[str, Runtimes]:
        out: dict[str, Runtimes] = {}
        with self.lock:
            for (name, _host, _queue), runtimes in self.runtimes.items():
                out.setdefault(name, Runtimes()).merge(runtimes)
        return out

    @property
    def all_runtime(self) -> Runtimes:
        out = Runtimes()
        with self.lock:
            for runtimes in self.runtimes.values():
                out.merge(runtimes)
        return out

    def type_rows(self) -> list[TypeRow]:
        """One row per task name, the busiest first."""
        runtimes = self.runtime_by_name()
        rows = [
            TypeRow(name, counts, runtimes.get(name, Runtimes()))
            for name, counts in self.by(1).items()
        ]
        rows.sort(key=lambda r: (-sum(r.counts.values()), r.name))
        return rows

    def snapshot(self) -> TotalsSnapshot:
        counts = dict(self._counts())
        with self.lock:
            return TotalsSnapshot(counts, {k: v.copy() for k, v in self.runtimes.items()})
