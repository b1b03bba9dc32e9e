"""A channel over pika with amqptool-shaped operations, and the pika <-> Envelope mapping.

Split from :mod:`amqptool.transport.connection`, which opens these channels. A channel belongs to
its connection's thread; every pika error leaves here translated into amqptool's error tree.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pika.exceptions as pex
from pika.adapters.blocking_connection import BlockingChannel

from amqptool.codec.envelope import Envelope
from amqptool.transport.confirms import ConfirmedPublisher
from amqptool.transport.errors import translate_errors
from amqptool.transport.properties import QueueInfo, envelope_from_pika, pika_properties

if TYPE_CHECKING:
    from amqptool.transport.connection import Connection

__all__ = ["Channel"]


class Channel:
    """A channel with amqptool-shaped operations. Errors come out translated."""

    def __init__(self, ch: BlockingChannel, connection: Connection, *, confirm: bool) -> None:
        self._ch = ch
        self.connection = connection
        self.confirm = confirm
        self._confirms = ConfirmedPublisher(connection, adopt=ch) if confirm else None

    @property
    def is_open(self) -> bool:
        return bool(self._ch.is_open)

    @property
    def close_reason(self) -> str:
        """Why the broker closed this channel (``"406 PRECONDITION_FAILED - ..."``), or ``""``."""
        reason = getattr(self._ch, "_closing_reason", None)  # pika keeps it there, unexported
        if isinstance(reason, pex.ChannelClosed):
            return f"{reason.reply_code} {reason.reply_text}"
        return ""

    def close(self) -> None:
        """Close; without waiting past CLOSE_TIMEOUT, or at all while the broker blocks us."""
        if self._ch.is_open and self.connection.blocked_reason is None:
            with contextlib.suppress(pex.AMQPError, OSError):
                self.connection.bounded(self._ch.close)

    # ------------------------------------------------------------------ topology

    def exchange_declare(
        self,
        exchange: str,
        type: str = "direct",
        *,
        passive: bool = False,
        durable: bool = False,
        auto_delete: bool = False,
        internal: bool = False,
        arguments: Mapping[str, Any] | None = None,
    ) -> None:
        with translate_errors("exchange.declare"):
            self._ch.exchange_declare(
                exchange=exchange,
                exchange_type=type,
                passive=passive,
                durable=durable,
                auto_delete=auto_delete,
                internal=internal,
                arguments=dict(arguments or {}) or None,
            )

    def exchange_delete(self, exchange: str, *, if_unused: bool = False) -> None:
        with translate_errors("exchange.delete"):
            self._ch.exchange_delete(exchange=exchange, if_unused=if_unused)

    def exchange_bind(
        self,
        destination: str,
        source: str,
        routing_key: str = "",
        arguments: Mapping[str, Any] | None = None,
    ) -> None:
        with translate_errors("exchange.bind"):
            self._ch.exchange_bind(
                destination=destination,
                source=source,
                routing_key=routing_key,
                arguments=dict(arguments or {}) or None,
            )

    def exchange_unbind(
        self,
        destination: str,
        source: str,
        routing_key: str = "",
        arguments: Mapping[str, Any] | None = None,
    ) -> None:
        with translate_errors("exchange.unbind"):
            self._ch.exchange_unbind(
                destination=destination,
                source=source,
                routing_key=routing_key,
                arguments=dict(arguments or {}) or None,
            )

    def queue_declare(
        self,
        queue: str = "",
        *,
        passive: bool = False,
        durable: bool = False,
        exclusive: bool = False,
        auto_delete: bool = False,
        arguments: Mapping[str, Any] | None = None,
    ) -> QueueInfo:
        with translate_errors("queue.declare"):
            ok = self._ch.queue_declare(
                queue=queue,
                passive=passive,
                durable=durable,
                exclusive=exclusive,
                auto_delete=auto_delete,
                arguments=dict(arguments or {}) or None,
            )
        m = ok.method
        return QueueInfo(m.queue, m.message_count, m.consumer_count)

    def queue_delete(self, queue: str, *, if_unused: bool = False, if_empty: bool = False) -> int:
        with translate_errors("queue.delete"):
            ok = self._ch.queue_delete(queue=queue, if_unused=if_unused, if_empty=if_empty)
        return int(ok.method.message_count)

    def queue_purge(self, queue: str) -> int:
        with translate_errors("queue.purge"):
            ok = self._ch.queue_purge(queue=queue)
        return int(ok.method.message_count)

    def queue_bind(
        self,
        queue: str,
        exchange: str,
        routing_key: str = "",
        arguments: Mapping[str, Any] | None = None,
    ) -> None:
        with translate_errors("queue.bind"):
            self._ch.queue_bind(
                queue=queue,
                exchange=exchange,
                routing_key=routing_key or None,
                arguments=dict(arguments or {}) or None,
            )

    def queue_unbind(
        self,
        queue: str,
        exchange: str,
        routing_key: str = "",
        arguments: Mapping[str, Any] | None = None,
    ) -> None:
        with translate_errors("queue.unbind"):
            self._ch.queue_unbind(
                queue=queue,
                exchange=exchange,
                routing_key=routing_key or None,
                arguments=dict(arguments or {}) or None,
            )

    # ------------------------------------------------------------------ messages

    def publish(
        self, env: Envelope, *, mandatory: bool = False, timeout: float | None = None
    ) -> None:
        """Publish. With confirms on, return once the broker confirmed it: a nack, an
        unroutable ``mandatory`` message (UnroutableError) or a body over the broker's limit
        (MessageTooLargeError, nothing sent) raise; past ``timeout`` (None: no limit) raise
        BlockedError / UnconfirmedError (the outcome is unknown)."""
        if self._confirms is not None:
            item = self._confirms.publish(env, mandatory=mandatory)
            self._confirms.wait([item], timeout=timeout)
            return
        with translate_errors("basic.publish"):
            self._ch.basic_publish(
                exchange=env.exchange,
                routing_key=env.routing_key,
                body=env.body,
                properties=pika_properties(env.properties),
                mandatory=mandatory,
            )

    def get(self, queue: str, *, no_ack: bool = False) -> Envelope | None:
        with translate_errors("basic.get"):
            method, props, body = self._ch.basic_get(queue=queue, auto_ack=no_ack)
        if method is None:
            return None
        return envelope_from_pika(method, props, body or b"")

    def ack(self, delivery_tag: int, *, multiple: bool = False) -> None:
        with translate_errors("basic.ack"):
            self._ch.basic_ack(delivery_tag=delivery_tag, multiple=multiple)

    def nack(self, delivery_tag: int, *, multiple: bool = False, requeue: bool = True) -> None:
        with translate_errors("basic.nack"):
            self._ch.basic_nack(delivery_tag=delivery_tag, multiple=multiple, requeue=requeue)

    def reject(self, delivery_tag: int, *, requeue: bool = True) -> None:
        with translate_errors("basic.reject"):
            self._ch.basic_reject(delivery_tag=delivery_tag, requeue=requeue)

    def recover(self, *, requeue: bool = True) -> None:
        with translate_errors("basic.recover"):
            self._ch.basic_recover(requeue=requeue)

    def qos(self, prefetch_count: int, *, prefetch_size: int = 0, global_qos: bool = False) -> None:
        with translate_errors("basic.qos"):
            self._ch.basic_qos(
                prefetch_size=prefetch_size, prefetch_count=prefetch_count, global_qos=global_qos
            )

    def consume(
        self,
        queue: str,
        callback: Callable[[Envelope], None],
        *,
        no_ack: bool = False,
        exclusive: bool = False,
        consumer_tag: str | None = None,
        arguments: Mapping[str, Any] | None = None,
    ) -> str:
        """Start a consumer; ``callback`` gets each message as an Envelope."""

        def on_message(_ch: Any, method: Any, properties: Any, body: bytes) -> None:
            callback(envelope_from_pika(method, properties, body))

        with translate_errors("basic.consume"):
            tag: str = self._ch.basic_consume(
                queue=queue,
                on_message_callback=on_message,
                auto_ack=no_ack,
                exclusive=exclusive,
                consumer_tag=consumer_tag,
                arguments=dict(arguments or {}) or None,
            )
        return tag

    def cancel(self, consumer_tag: str) -> None:
        with translate_errors("basic.cancel"):
            self._ch.basic_cancel(consumer_tag)

    def iter_messages(
        self,
        queue: str,
        *,
        no_ack: bool = False,
        inactivity_timeout: float = 1.0,
    ) -> Iterator[Envelope | None]:
        """Yield messages (or None after ``inactivity_timeout`` of silence)."""
        with translate_errors("basic.consume"):
            for method, props, body in self._ch.consume(
                queue, auto_ack=no_ack, inactivity_timeout=inactivity_timeout
            ):
                if method is None:
                    yield None
                else:
                    yield envelope_from_pika(method, props, body)

    def cancel_iter(self) -> None:
        with translate_errors("basic.cancel"):
            self._ch.cancel()
