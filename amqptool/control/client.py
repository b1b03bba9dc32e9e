"""A remote-control (pidbox) client: Celery's ``broadcast``/``inspect`` over our transport.

::

    with ControlClient(BrokerSettings.from_url(url)) as client:
        client.call("ping", destination=["w1@host"])        # {"w1@host": {"ok": "pong"}}
        client.call("rate_limit", {"task_name": "t.add", "rate_limit": "10/m"})
        client.cast("shutdown", destination=["w1@host"])    # fire and forget

Wire (docs/protocol.md §4, §6.5): before the first publish the client declares ``celery.pidbox``
(fanout) and ``reply.celery.pidbox`` (direct), both non-durable, and its own reply queue
``<oid>.reply.celery.pidbox`` (auto_delete, exclusive, ``x-expires`` 10 s, ``x-message-ttl``
300 s) bound to the reply exchange with routing key ``<oid>``, consumed without acks. Requests
carry the headers ``clock`` and ``expires`` as ints. Replies are matched on the ``ticket``
header; a reply for an earlier request (a late one) is dropped. When to stop waiting is the
rule in :mod:`amqptool.control.collect`: the moment ``limit`` replies are in, or after a
silence.

One client belongs to one thread (pika's rule); give every thread its own client. A client
made without a ``connection`` opens its own on first use and reconnects once if the broker
dropped it while idle; ``close()`` closes only what the client opened.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from typing import Any

from amqptool.codec.control import (
    CONTROL_EXCHANGE,
    QUEUE_ARGUMENTS,
    REPLY_EXCHANGE,
    encode_request,
    new_request,
    reply_queue_name,
)
from amqptool.codec.envelope import Envelope
from amqptool.codec.events import LamportClock
from amqptool.codec.signing import Verifier, sign
from amqptool.control.collect import ReplyCollector
from amqptool.errors import BlockedError, ConnectionFailedError, UsageError
from amqptool.settings import BrokerSettings
from amqptool.transport import Channel, Connection

__all__ = ["DEFAULT_TIMEOUT", "ControlClient", "sign_request"]

DEFAULT_TIMEOUT = 1.0
ReplyCallback = Callable[[str, Any], None]


class ControlClient:
    """Send remote-control commands to workers and collect their replies."""

    def __init__(self, settings: BrokerSettings, *, connection: Connection | None = None) -> None:
        self.settings = settings
        self._conn = connection
        self._owns_connection = connection is None
        self._channel: Channel | None = None
        self._exchange_ready = False
        self._reply_ready = False
        self._collector: ReplyCollector | None = None
        self._published = False  # a request went out on the current connection
        self.oid = str(uuid.uuid4())
        self.clock = LamportClock()
        key = settings.control_key
        self._verifier = Verifier(key) if key is not None else None
        self.malformed: list[str] = []  # the last call's replies that were not counted

    @property
    def reply_queue(self) -> str:
        return reply_queue_name(self.oid)

    # ------------------------------------------------------------------ public API

    def call(
        self,
        method: str,
        arguments: dict[str, Any] | None = None,
        *,
        destination: list[str] | None = None,
        pattern: str | None = None,
        matcher: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        limit: int | None = None,
        idle: float | None = None,
        on_reply: ReplyCallback | None = None,
    ) -> dict[str, Any]:
        """{node: reply} merged; empty dict when nobody replied.

        ``limit`` defaults to ``len(destination)`` when a destination list is given; the call
        returns as soon as that many replies are in. ``idle`` overrides the silence allowed
        after a reply (see :mod:`amqptool.control.collect`). ``on_reply(node, reply)`` is
        called as each reply arrives.
        """
        _check_timing(timeout, limit)
        if destination:
            destination = list(dict.fromkeys(destination))  # a node named twice replies once
        if limit is None and destination:
            limit = len(destination)
        for attempt in (1, 2):
            try:
                channel = self._prepare(reply=True)
                req = new_request(
                    method,
                    arguments,
                    destination=destination,
                    pattern=pattern,
                    matcher=matcher,
                    reply_oid=self.oid,
                )
                assert req.ticket is not None  # new_request gives a ticket with reply_oid
                env = self._encode(req, timeout)
                collector = ReplyCollector(
                    req.ticket,
                    timeout=timeout,
                    started=time.monotonic(),
                    limit=limit,
                    idle=idle,
                    on_reply=on_reply,
                )
                if self._verifier is not None:
                    collector.verify = self._verifier.check
                self._collector = collector
                channel.publish(env)
                self._published = True
                break
            except ConnectionFailedError:
                self._collector = None
                if attempt == 2 or not self._reset_for_retry():
                    raise
        try:
            self._wait(collector)
        finally:
            self._collector = None
        conn = self._conn
        if not collector.replies and conn is not None and conn.blocked_reason is not None:
            # Nobody could answer: replies are publishes too. Whether our request reached the
            # workers cannot be known.
            raise BlockedError(conn.blocked_reason, unknown=True)
        for clock in collector.clocks:
            self.clock.adjust(clock)
        self.malformed = collector.malformed
        return collector.replies

    def cast(
        self,
        method: str,
        arguments: dict[str, Any] | None = None,
        *,
        destination: list[str] | None = None,
        pattern: str | None = None,
        matcher: str | None = None,
    ) -> None:
        """Send a command without asking for a reply (no ticket, no reply_to)."""
        for attempt in (1, 2):
            try:
                channel = self._prepare(reply=False)
                req = new_request(
                    method, arguments, destination=destination, pattern=pattern, matcher=matcher
                )
                channel.publish(self._encode(req, DEFAULT_TIMEOUT))
                self._published = True
                return
            except ConnectionFailedError:
                if attempt == 2 or not self._reset_for_retry():
                    raise

    def close(self) -> None:
        """Close the channel, and the connection if this client opened it."""
        channel, self._channel = self._channel, None
        self._exchange_ready = self._reply_ready = False
        if channel is not None:
            channel.close()
        if self._owns_connection and self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ internals

    def _encode(self, req: Any, timeout: float) -> Envelope:
        expires = math.ceil(time.time() + timeout)
        env = encode_request(req, clock=self.clock.forward(), expires=expires)
        return sign_request(env, self.settings)

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = Connection(self.settings, name="amqptool control")
        if not self._conn.is_open:
            self._conn.connect()
        return self._conn

    def _prepare(self, *, reply: bool) -> Channel:
        """An open channel with the exchanges (and, for calls, the reply queue) in place."""
        conn = self._connection()
        if self._channel is None or not self._channel.is_open:
            self._channel = conn.channel()
            self._exchange_ready = self._reply_ready = False
        ch = self._channel
        if not self._exchange_ready:
            ch.exchange_declare(CONTROL_EXCHANGE, "fanout", durable=False, auto_delete=False)
            self._exchange_ready = True
        if reply and not self._reply_ready:
            ch.exchange_declare(REPLY_EXCHANGE, "direct", durable=False, auto_delete=False)
            ch.queue_declare(
                self.reply_queue,
                durable=False,
                exclusive=True,
                auto_delete=True,
                arguments=QUEUE_ARGUMENTS,
            )
            ch.queue_bind(self.reply_queue, REPLY_EXCHANGE, routing_key=self.oid)
            ch.consume(self.reply_queue, self._on_reply, no_ack=True)
            self._reply_ready = True
        return ch

    def _reset_for_retry(self) -> bool:
        """After a dropped idle connection: forget it so the next attempt reconnects.

        Only for a connection this client opened and already used: a broker that cannot be
        reached at all is reported at once, not tried twice.
        """
        if not self._owns_connection or not self._published:
            return False
        self._published = False
        conn, self._conn = self._conn, None
        self._channel = None
        self._exchange_ready = self._reply_ready = False
        if conn is not None:
            conn.close()
        return True

    def _on_reply(self, env: Envelope) -> None:
        collector = self._collector
        if collector is not None:
            collector.offer(env, time.monotonic())

    def _wait(self, collector: ReplyCollector) -> None:
        conn = self._connection()
        while True:
            wait = collector.next_wait(time.monotonic())
            if wait is None:
                return
            conn.process_events(time_limit=wait)


def sign_request(env: Envelope, settings: BrokerSettings) -> Envelope:
    """*env* signed with the configured control key (as it is when no key is configured)."""
    key = settings.control_key
    return env if key is None else sign(env, key)


def _check_timing(timeout: float, limit: int | None) -> None:
    if not timeout > 0 or math.isinf(timeout):
        raise UsageError(f"timeout must be a positive number of seconds, got {timeout}")
    if limit is not None and limit < 1:
        raise UsageError(f"limit must be at least 1, got {limit}")
