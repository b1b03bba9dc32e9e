"""Celery events: building, batching and decoding (§3), and the Lamport clock (§5.8)."""

from __future__ import annotations

import os
import platform
import threading
import time
from collections.abc import Collection, Iterable
from typing import Any

from amqptool.codec.envelope import Envelope, Properties
from amqptool.codec.serialization import DEFAULT_ACCEPT, dumps, loads
from amqptool.codec.times import utcoffset_hours
from amqptool.errors import DecodeError

__all__ = [
    "EVENT_EXCHANGE",
    "LamportClock",
    "decode_events",
    "encode_event",
    "encode_event_batch",
    "event_routing_key",
    "make_event",
    "worker_event_fields",
]

EVENT_EXCHANGE = "celeryev"
SW_IDENT = "py-amqptool"


class LamportClock:
    """A thread-safe Lamport clock: ``forward()`` = +1, ``adjust(v)`` = max(own, v) + 1."""

    def __init__(self, initial: int = 0) -> None:
        self._value = initial
        self._lock = threading.Lock()

    @property
    def value(self) -> int:
        return self._value

    def forward(self) -> int:
        with self._lock:
            self._value += 1
            return self._value

    def adjust(self, other: Any) -> int:
        with self._lock:
            if isinstance(other, int | float) and not isinstance(other, bool):
                self._value = max(self._value, int(other)) + 1
            return self._value


def event_routing_key(event_type: str) -> str:
    return event_type.replace("-", ".")


def make_event(
    event_type: str,
    *,
    hostname: str,
    clock: int,
    pid: int | None = None,
    timestamp: float | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """An event body with the common fields of §3.2."""
    body: dict[str, Any] = {
        "hostname": hostname,
        "utcoffset": utcoffset_hours(),
        "pid": os.getpid() if pid is None else pid,
        "clock": clock,
    }
    body.update(fields)
    body["timestamp"] = time.time() if timestamp is None else timestamp
    body["type"] = event_type
    return body


def worker_event_fields(
    *, freq: float, active: int, processed: int, sw_ver: str, sw_ident: str = SW_IDENT
) -> dict[str, Any]:
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = [0.0, 0.0, 0.0]
    return {
        "freq": freq,
        "active": active,
        "processed": processed,
        "loadavg": load,
        "sw_ident": sw_ident,
        "sw_ver": sw_ver,
        "sw_sys": platform.system(),
    }


def _event_props(hostname: str) -> Properties:
    return Properties(
        content_type="application/json",
        content_encoding="utf-8",
        delivery_mode=1,
        priority=0,
        headers={"hostname": hostname},
    )


def encode_event(event: dict[str, Any], *, exchange: str = EVENT_EXCHANGE) -> Envelope:
    body, _, _ = dumps(event, "json")
    return Envelope(
        body=body,
        properties=_event_props(str(event.get("hostname", ""))),
        exchange=exchange,
        routing_key=event_routing_key(str(event.get("type", "unknown"))),
    )


def encode_event_batch(
    events: Iterable[dict[str, Any]], *, hostname: str, exchange: str = EVENT_EXCHANGE
) -> Envelope:
    """Task events batched as one ``task.multi`` message (a JSON array)."""
    body, _, _ = dumps(list(events), "json")
    return Envelope(
        body=body, properties=_event_props(hostname), exchange=exchange, routing_key="task.multi"
    )


def decode_events(
    env: Envelope, *, accept: Collection[str] = DEFAULT_ACCEPT
) -> list[dict[str, Any]]:
    """The events in one message: an object or an array of objects (``task.multi``).

    Raises :class:`DecodeError` when the body is not an event or a list of events.
    """
    payload = loads(
        env.body, env.properties.content_type, env.properties.content_encoding, accept=accept
    )
    items = payload if isinstance(payload, list) else [payload]
    out: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise DecodeError("event body is not an object with a 'type'")
        if "hostname" not in item and env.headers.get("hostname"):
            item["hostname"] = env.headers["hostname"]
        out.append(item)
    return out
