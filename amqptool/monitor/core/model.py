"""The monitor's data: workers, tasks and throughput buckets (plain objects, no I/O).

:mod:`amqptool.monitor.core.state` folds events into these; the selectors read them. Pure core:
no pika, no textual, no clock reads.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "FAILURE",
    "FINISHED_STATES",
    "PENDING",
    "RECEIVED",
    "REJECTED",
    "RETRY",
    "REVOKED",
    "STARTED",
    "STATES",
    "SUCCESS",
    "Task",
    "Throughput",
    "Worker",
    "as_float",
]

PENDING = "PENDING"
RECEIVED = "RECEIVED"
STARTED = "STARTED"
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
RETRY = "RETRY"
REVOKED = "REVOKED"
REJECTED = "REJECTED"

#: The states every view knows, in lifecycle order (custom states come on top of these).
STATES: tuple[str, ...] = (PENDING, RECEIVED, STARTED, RETRY, SUCCESS, FAILURE, REVOKED, REJECTED)
FINISHED_STATES = frozenset({SUCCESS, FAILURE, REVOKED, REJECTED})
DEFAULT_FREQ = 2.0  # Celery's default heartbeat interval (seconds)


def as_float(value: Any, default: float) -> float:
    """``value`` as a finite float, or ``default`` when it is not one (events are untrusted:
    ``1e999``, ``NaN`` and ``Infinity`` parse as JSON, and an infinite clock or timestamp would
    break the arithmetic and the formatting downstream)."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return default
    return number if math.isfinite(number) else default


class Worker:
    """What is known about one worker node, from its heartbeats and task events."""

    __slots__ = (
        "active",
        "clock",
        "freq",
        "heartbeat_timestamp",
        "hostname",
        "last_heartbeat",
        "loadavg",
        "offline_since",
        "online_since",
        "pid",
        "processed",
        "sw_ident",
        "sw_sys",
        "sw_ver",
    )

    def __init__(self, hostname: str) -> None:
        self.hostname = hostname
        self.freq: float = DEFAULT_FREQ
        self.last_heartbeat: float | None = None  # local receipt time
        self.heartbeat_timestamp: float | None = None  # the sender's own time
        self.offline_since: float | None = None  # set by worker-offline
        self.online_since: float | None = None
        self.active: int | None = None
        self.processed: int | None = None
        self.loadavg: list[float] | None = None
        self.sw_ident: str | None = None
        self.sw_ver: str | None = None
        self.sw_sys: str | None = None
        self.pid: int | None = None
        self.clock: int = 0

    def expires_at(self) -> float | None:
        """When the worker goes offline if no heartbeat arrives (local time)."""
        if self.last_heartbeat is None:
            return None
        return self.last_heartbeat + 2.0 * self.freq

    def is_online(self, now: float) -> bool:
        if self.offline_since is not None or self.last_heartbeat is None:
            return False
        return now < self.last_heartbeat + 2.0 * self.freq

    def offline_at(self) -> float | None:
        """Since when the worker is offline (event or expired heartbeat), or None if unknown."""
        if self.offline_since is not None:
            return self.offline_since
        return self.expires_at()

    def heartbeat_age(self, now: float) -> float | None:
        return None if self.last_heartbeat is None else max(0.0, now - self.last_heartbeat)

    def __repr__(self) -> str:
        return f"<Worker {self.hostname} freq={self.freq} last={self.last_heartbeat}>"


class Task:
    """One task as folded from its events. Attributes are None until an event sets them."""

    __slots__ = (
        "args",
        "client",
        "clock",
        "eta",
        "exception",
        "exchange",
        "expired",
        "expires",
        "extra",
        "failed",
        "first_seen",
        "kwargs",
        "name",
        "parent_id",
        "queue",
        "received",
        "rejected",
        "requeue",
        "result",
        "retried",
        "retries",
        "revoked",
        "root_id",
        "routing_key",
        "runtime",
        "sent",
        "seq",
        "signum",
        "size",
        "started",
        "state",
        "state_host",
        "succeeded",
        "terminated",
        "timeline",
        "timestamp",
        "traceback",
        "updated",
        "uuid",
        "worker",
    )

    def __init__(self, uuid: str, seq: int = 0, first_seen: float = 0.0) -> None:
        self.uuid = uuid
        self.seq = seq
        self.first_seen = first_seen
        self.updated = first_seen
        self.state: str | None = None
        self.timestamp: float | None = None  # sender time of the event that set ``state``
        self.clock: int = 0  # Lamport clock of the event that set ``state``
        self.state_host: str | None = None  # sender of the event that set ``state``
        self.name: str | None = None
        self.worker: str | None = None
        self.client: str | None = None
        self.args: str | None = None
        self.kwargs: str | None = None
        self.result: str | None = None
        self.exception: str | None = None
        self.traceback: str | None = None
        self.retries: int | None = None
        self.eta: str | None = None
        self.expires: str | None = None
        self.runtime: float | None = None
        self.root_id: str | None = None
        self.parent_id: str | None = None
        self.queue: str | None = None
        self.exchange: str | None = None
        self.routing_key: str | None = None
        self.terminated: bool | None = None
        self.signum: int | None = None
        self.expired: bool | None = None
        self.requeue: bool | None = None
        self.sent: float | None = None
        self.received: float | None = None
        self.started: float | None = None
        self.succeeded: float | None = None
        self.failed: float | None = None
        self.retried: float | None = None
        self.revoked: float | None = None
        self.rejected: float | None = None
        self.extra: dict[str, Any] | None = None  # fields of custom events
        self.size = 0  # approximate bytes held (MonitorState's --max-bytes bound)
        # (event type, sender timestamp, hostname, clock), oldest first
        self.timeline: list[tuple[str, float, str, int]] = []

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    def __repr__(self) -> str:
        return f"<Task {self.uuid} {self.name} {self.state}>"


class Throughput:
    """Succeeded / failed tasks per second in a ring of one-second buckets."""

    __slots__ = ("_failed", "_ok", "_sec", "window")

    def __init__(self, window: int = 600) -> None:
        self.window = window
        self._sec: list[int] = [-1] * window
        self._ok: list[int] = [0] * window
        self._failed: list[int] = [0] * window

    def record(self, failed: bool, now: float) -> None:
        self.record_many(0 if failed else 1, 1 if failed else 0, now)

    def record_many(self, succeeded: int, failed: int, now: float) -> None:
        """:meth:`record` for a batch received at ``now`` (one bucket)."""
        if not (succeeded or failed):
            return
        sec = int(now)
        i = sec % self.window
        if self._sec[i] != sec:
            self._sec[i] = sec
            self._ok[i] = 0
            self._failed[i] = 0
        self._ok[i] += succeeded
        self._failed[i] += failed

    def series(self, now: float, seconds: int) -> tuple[list[int], list[int]]:
        """Per-second (succeeded, failed) counts for the last ``seconds`` whole seconds."""
        seconds = min(seconds, self.window)
        end = int(now)
        ok: list[int] = []
        failed: list[int] = []
        for sec in range(end - seconds + 1, end + 1):
            i = sec % self.window
            if self._sec[i] == sec:
                ok.append(self._ok[i])
                failed.append(self._failed[i])
            else:
                ok.append(0)
                failed.append(0)
        return ok, failed

    def rate(self, now: float, seconds: int = 5) -> tuple[float, float]:
        """Average (succeeded/s, failed/s) over the last ``seconds`` complete seconds."""
        ok, failed = self.series(now - 1.0, seconds)
        return sum(ok) / seconds, sum(failed) / seconds
