"""Mapping between pika's message objects and ours (no connection, no I/O).

:func:`pika_properties` builds pika's properties for a publish (floats in headers kept, see
:mod:`amqptool.transport.frames`); :func:`envelope_from_pika` turns a delivery into an
:class:`~amqptool.codec.envelope.Envelope`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pika

from amqptool.codec.envelope import Envelope, Properties
from amqptool.transport.frames import AmqpProperties

__all__ = ["QueueInfo", "envelope_from_pika", "pika_properties"]


@dataclass(frozen=True)
class QueueInfo:
    name: str
    message_count: int
    consumer_count: int


def pika_properties(props: Properties) -> pika.BasicProperties:
    """pika's BasicProperties for our Properties (floats in headers kept, see
    :mod:`amqptool.transport.frames`); content type/encoding always set."""
    return AmqpProperties(
        content_type=props.content_type or "application/octet-stream",
        content_encoding=props.content_encoding or "binary",
        headers=props.headers or None,
        delivery_mode=props.delivery_mode,
        priority=props.priority,
        correlation_id=props.correlation_id,
        reply_to=props.reply_to,
        expiration=props.expiration,
        message_id=props.message_id,
        timestamp=props.timestamp,
        type=props.type,
        user_id=props.user_id,
        app_id=props.app_id,
    )


def envelope_from_pika(method: Any, properties: Any, body: bytes) -> Envelope:
    """Our Envelope for a pika Basic.Deliver / Basic.GetOk / Basic.Return and properties."""
    if type(properties) is AmqpProperties and type(method) is pika.spec.Basic.Deliver:
        # what our connections decode (every field set): no getattr defaults, and the header
        # table is a fresh dict nobody else holds, so it is not copied
        p = properties
        return Envelope(
            body if type(body) is bytes else bytes(body),
            Properties(
                p.content_type,
                p.content_encoding,
                p.headers if p.headers is not None else {},
                p.delivery_mode,
                p.priority,
                p.correlation_id,
                p.reply_to,
                p.expiration,
                p.message_id,
                p.timestamp,
                p.type,
                p.user_id,
                p.app_id,
            ),
            method.exchange or "",
            method.routing_key or "",
            method.delivery_tag,
            bool(method.redelivered),
            method.consumer_tag,
        )
    props = Properties(
        content_type=getattr(properties, "content_type", None),
        content_encoding=getattr(properties, "content_encoding", None),
        headers=dict(getattr(properties, "headers", None) or {}),
        delivery_mode=getattr(properties, "delivery_mode", None),
        priority=getattr(properties, "priority", None),
        correlation_id=getattr(properties, "correlation_id", None),
        reply_to=getattr(properties, "reply_to", None),
        expiration=getattr(properties, "expiration", None),
        message_id=getattr(properties, "message_id", None),
        timestamp=getattr(properties, "timestamp", None),
        type=getattr(properties, "type", None),
        user_id=getattr(properties, "user_id", None),
        app_id=getattr(properties, "app_id", None),
    )
    return Envelope(
        body=bytes(body),
        properties=props,
        exchange=getattr(method, "exchange", "") or "",
        routing_key=getattr(method, "routing_key", "") or "",
        delivery_tag=getattr(method, "delivery_tag", None),
        redelivered=bool(getattr(method, "redelivered", False)),
        consumer_tag=getattr(method, "consumer_tag", None),
        message_count=getattr(method, "message_count", None),
    )
