"""Fire-and-forget channel operations for a consumer loop (the worker's hot path).

pika's ``BlockingChannel.basic_publish``/``basic_ack`` flush the socket after every call (a
poll and a send per message). A loop that calls :meth:`Connection.process_events` anyway can
queue frames with these functions instead: they go out together on the next
``process_events`` (or :func:`flush`). Only for connections owned by the calling thread.

Errors come out translated like everything else in :mod:`amqptool.transport`. A channel the
broker closed is only noticed on the next call (or ``Channel.is_open``), so loops should check.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from amqptool.codec.envelope import Envelope
from amqptool.transport.connection import Channel, Connection, pika_properties
from amqptool.transport.errors import translate_errors

__all__ = ["ack", "flush", "nack", "on_cancelled", "publish", "reject"]


def publish(channel: Channel, env: Envelope) -> None:
    """Queue a ``basic.publish`` (no confirm, no mandatory)."""
    with translate_errors("basic.publish"):
        channel._ch._impl.basic_publish(
            exchange=env.exchange,
            routing_key=env.routing_key,
            body=env.body,
            properties=pika_properties(env.properties),
        )


def ack(channel: Channel, delivery_tag: int, *, multiple: bool = False) -> None:
    with translate_errors("basic.ack"):
        channel._ch._impl.basic_ack(delivery_tag=delivery_tag, multiple=multiple)


def reject(channel: Channel, delivery_tag: int, *, requeue: bool) -> None:
    with translate_errors("basic.reject"):
        channel._ch._impl.basic_reject(delivery_tag=delivery_tag, requeue=requeue)


def nack(channel: Channel, delivery_tag: int, *, multiple: bool = False, requeue: bool) -> None:
    with translate_errors("basic.nack"):
        channel._ch._impl.basic_nack(delivery_tag=delivery_tag, multiple=multiple, requeue=requeue)


def on_cancelled(channel: Channel, callback: Callable[[str], None]) -> None:
    """Call ``callback(consumer_tag)`` when the broker cancels a consumer (queue deleted...)."""

    def cancelled(frame: Any) -> None:
        callback(str(getattr(frame.method, "consumer_tag", "")))

    with translate_errors("basic.cancel callback"):
        channel._ch.add_on_cancel_callback(cancelled)


def flush(connection: Connection) -> None:
    """Write everything queued (and handle whatever arrived meanwhile)."""
    connection.process_events(0)
