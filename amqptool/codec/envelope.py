"""A transport-neutral AMQP message: what the codec reads and writes.

The transport converts pika's ``BasicProperties``/``Basic.Deliver`` to and from this value, so
the codec never imports pika.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Envelope", "Properties"]


@dataclass
class Properties:
    content_type: str | None = None
    content_encoding: str | None = None
    headers: dict[str, Any] = field(default_factory=dict)
    delivery_mode: int | None = None
    priority: int | None = None
    correlation_id: str | None = None
    reply_to: str | None = None
    expiration: str | None = None
    message_id: str | None = None
    timestamp: int | None = None
    type: str | None = None
    user_id: str | None = None
    app_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The properties that are set (``headers`` included when not empty)."""
        out: dict[str, Any] = {}
        for name in (
            "content_type",
            "content_encoding",
            "delivery_mode",
            "priority",
            "correlation_id",
            "reply_to",
            "expiration",
            "message_id",
            "timestamp",
            "type",
            "user_id",
            "app_id",
        ):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.headers:
            out["headers"] = self.headers
        return out


@dataclass
class Envelope:
    """A message with its routing. Incoming ones also carry delivery info."""

    body: bytes
    properties: Properties = field(default_factory=Properties)
    exchange: str = ""
    routing_key: str = ""
    delivery_tag: int | None = None
    redelivered: bool = False
    consumer_tag: str | None = None
    message_count: int | None = None

    @property
    def headers(self) -> dict[str, Any]:
        return self.properties.headers

    def delivery_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "exchange": self.exchange,
            "routing_key": self.routing_key,
            "delivery_tag": self.delivery_tag,
            "redelivered": self.redelivered,
        }
        if self.message_count is not None:
            info["message_count"] = self.message_count
        return info
