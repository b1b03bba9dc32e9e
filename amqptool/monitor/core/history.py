"""History for the graphs: throughput, failures, queue depth and runtime p95 over time.

Ten-second buckets over the last hour (``window`` buckets), recorded as the state folds events
(succeeded/failed and runtimes) and as the queue poller reports depths. Bounded: a ring of
buckets, each a few numbers and a runtime histogram. With ``--state`` the buckets are saved and
loaded back, so the graphs survive a restart. Pure core.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from amqptool.monitor.core.totals import Runtimes

__all__ = ["BUCKET_SECONDS", "Bucket", "History", "Series"]

BUCKET_SECONDS = 10


@dataclass
class Bucket:
    start: int  # epoch seconds, a multiple of BUCKET_SECONDS
    succeeded: int = 0
    failed: int = 0
    depth: int | None = None  # ready messages in the watched queues (last sample)
    runtimes: Runtimes = field(default_factory=Runtimes)
    p95: float | None = None  # when loaded from a file (no histogram kept there)

    def runtime_p95(self) -> float | None:
        value = self.runtimes.percentile(0.95)
        return self.p95 if value is None else value


@dataclass(frozen=True)
class Series:
    """What a graph draws: x as minutes before now (negative), one y list per graph."""

    minutes: list[float]
    throughput: list[float]  # succeeded per second
    failures: list[float]  # failed per second
    depth: list[float | None]
    p95: list[float | None]


class History:
    """A ring of :class:`Bucket` (see the module docstring)."""

    def __init__(self, window: int = 360) -> None:
        self.window = window
        self.buckets: dict[int, Bucket] = {}
        self.dirty: set[int] = set()

    def _bucket(self, now: float) -> Bucket:
        start = int(now) // BUCKET_SECONDS * BUCKET_SECONDS
        bucket = self.buckets.get(start)
        if bucket is None:
            bucket = self.buckets[start] = Bucket(start)
            oldest = start - self.window * BUCKET_SECONDS
            for old in [s for s in self.buckets if s <= oldest]:
                del self.buckets[old]
        self.dirty.add(start)
        return bucket

    def finished(self, failed: bool, now: float, runtime: float | None = None) -> None:
        bucket = self._bucket(now)
        if failed:
            bucket.failed += 1
        else:
            bucket.succeeded += 1
            if runtime is not None:
                bucket.runtimes.add(runtime)

    def finished_many(
        self, succeeded: int, failed: int, now: float, runtimes: Iterable[float] = ()
    ) -> None:
        """:meth:`finished` for a batch received at ``now`` (one bucket, counted at once)."""
        if not (succeeded or failed):
            return
        bucket = self._bucket(now)
        bucket.succeeded += succeeded
        bucket.failed += failed
        add = bucket.runtimes.add
        for runtime in runtimes:
            add(runtime)

    def depth(self, ready: int, now: float) -> None:
        self._bucket(now).depth = ready

    def series(self, now: float, minutes: int = 15) -> Series:
        end = int(now) // BUCKET_SECONDS * BUCKET_SECONDS
        count = minutes * 60 // BUCKET_SECONDS
        xs: list[float] = []
        ok: list[float] = []
        failed: list[float] = []
        depth: list[float | None] = []
        p95: list[float | None] = []
        for i in range(count - 1, -1, -1):  # the current (partial) bucket last
            start = end - i * BUCKET_SECONDS
            bucket = self.buckets.get(start)
            xs.append(-(end - start) / 60)
            ok.append(bucket.succeeded / BUCKET_SECONDS if bucket else 0.0)
            failed.append(bucket.failed / BUCKET_SECONDS if bucket else 0.0)
            depth.append(bucket.depth if bucket else None)
            p95.append(bucket.runtime_p95() if bucket else None)
        return Series(xs, ok, failed, depth, p95)

    # ------------------------------------------------------------------ --state

    def drain(self) -> list[tuple[int, int, int, int | None, float | None]]:
        """Rows for the store: the buckets changed since the last call."""
        rows = []
        for start in sorted(self.dirty):
            b = self.buckets.get(start)
            if b is not None:
                rows.append((b.start, b.succeeded, b.failed, b.depth, b.runtime_p95()))
        self.dirty.clear()
        return rows

    def load(self, rows: Iterable[tuple[int, int, int, int | None, float | None]]) -> None:
        for start, ok, failed, depth, p95 in rows:
            self.buckets[int(start)] = Bucket(int(start), int(ok), int(failed), depth, p95=p95)
