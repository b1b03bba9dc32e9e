"""The worker's event sender (docs/protocol.md §3): task events batched, worker events at once.

Task events (``task-received`` ... ``task-rejected``) are sent only while task events are
enabled (``-E`` or the ``enable_events`` control command). They are buffered and flushed as one
``task.multi`` message (a JSON array) per broker-loop iteration or every ``batch_size`` events.
Worker events (``worker-online``, ``worker-heartbeat``, ``worker-offline``) are always sent, at
once and never batched. Every event carries the ``hostname`` header and the common fields of
§3.2 with a fresh Lamport clock value.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from amqptool import __version__
from amqptool.codec.envelope import Envelope
from amqptool.codec.events import (
    LamportClock,
    encode_event,
    encode_event_batch,
    worker_event_fields,
)
from amqptool.codec.times import utcoffset_hours

__all__ = ["EventDispatcher"]

HEARTBEAT_FREQ = 2.0


class EventDispatcher:
    def __init__(
        self,
        hostname: str,
        clock: LamportClock,
        publish: Callable[[Envelope], None],
        *,
        task_events: bool = False,
        batch_size: int = 100,
        freq: float = HEARTBEAT_FREQ,
    ) -> None:
        self.hostname = hostname
        self.clock = clock
        self.publish = publish
        self.task_events = task_events
        self.batch_size = batch_size
        self.freq = freq
        self.pid = os.getpid()
        self._buffer: list[dict[str, Any]] = []
        self.refresh()

    def refresh(self) -> None:
        """Re-read the UTC offset (it changes with DST); called with each heartbeat."""
        self._utcoffset = utcoffset_hours()

    # ------------------------------------------------------------------ task events

    def task(self, event_type: str, uuid: str, fields: dict[str, Any] | None = None) -> None:
        """Buffer a task event (dropped when task events are off)."""
        if not self.task_events:
            return
        event: dict[str, Any] = {
            "hostname": self.hostname,
            "utcoffset": self._utcoffset,
            "pid": self.pid,
            "clock": self.clock.forward(),
            "uuid": uuid,
        }
        if fields:
            event.update(fields)
        event["timestamp"] = time.time()
        event["type"] = event_type
        self._buffer.append(event)
        if len(self._buffer) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        batch, self._buffer = self._buffer, []
        self.publish(encode_event_batch(batch, hostname=self.hostname))

    def discard(self) -> None:
        self._buffer = []

    # ------------------------------------------------------------------ worker events

    def worker(self, event_type: str, *, active: int = 0, processed: int = 0) -> dict[str, Any]:
        """Send ``worker-online``/``-heartbeat``/``-offline`` now; returns the event."""
        self.flush()
        fields = worker_event_fields(
            freq=self.freq, active=active, processed=processed, sw_ver=__version__
        )
        event = self._worker_event(event_type, fields)
        self.publish(encode_event(event))
        return event

    def forced_heartbeat(self) -> dict[str, Any]:
        """The heartbeat the ``heartbeat`` control command asks for: ``freq`` 5, ``sw_*`` only."""
        fields = worker_event_fields(freq=5, active=0, processed=0, sw_ver=__version__)
        for key in ("active", "processed", "loadavg"):
            fields.pop(key, None)
        event = self._worker_event("worker-heartbeat", fields)
        self.publish(encode_event(event))
        return event

    def _worker_event(self, event_type: str, fields: dict[str, Any]) -> dict[str, Any]:
        event: dict[str, Any] = {
            "hostname": self.hostname,
            "utcoffset": self._utcoffset,
            "pid": self.pid,
            "clock": self.clock.forward(),
        }
        event.update(fields)
        event["timestamp"] = time.time()
        event["type"] = event_type
        return event
