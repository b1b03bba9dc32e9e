"""Pipelined publisher confirms: many messages in flight, settled by the broker's acks.

pika's ``BlockingChannel.confirm_delivery`` waits for each message's confirm before the next
publish (one round trip per message). :class:`ConfirmedPublisher` instead queues publishes on a
confirm-mode channel, numbers them as the broker does (delivery tags 1, 2, ...), and settles
them from ``basic.ack`` / ``basic.nack`` (with the ``multiple`` flag) as they arrive.

- A ``basic.nack`` settles its messages with :class:`~amqptool.errors.PublishError`; a
  ``basic.return`` of a ``mandatory`` message (it comes before its ack) with
  :class:`~amqptool.transport.errors.UnroutableError`.
- A body larger than the broker's ``max_message_size`` is refused before it is sent
  (:class:`~amqptool.errors.MessageTooLargeError`).
- When the broker closes the channel under unconfirmed messages, they are published again on a
  new channel, except those the close names: bigger than the size the broker reports (406
  "message size N is larger than configured max size M"), or to the exchange a 404 names. A
  message that closes the channel again and again is failed with the broker's reason.
- :meth:`ConfirmedPublisher.wait` honours its timeout: past it, unconfirmed messages raise
  :class:`~amqptool.errors.BlockedError` when the broker blocks publishers, else
  :class:`~amqptool.errors.UnconfirmedError`; both say the outcome is unknown.

One publisher belongs to the thread that owns its :class:`Connection`. After the connection is
lost, :meth:`rebind` moves the unconfirmed messages to a new connection and sends them again
(at-least-once: the broker may have kept some of them). A resend cut short by yet another loss
keeps the messages it did not reach (still in flight) for the next one: none is ever dropped.
"""

from __future__ import annotations

import itertools
import logging
import re
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pika.exceptions as pex

from amqptool.codec.envelope import Envelope
from amqptool.codec.wire import WireEnvelope
from amqptool.errors import (
    AmqpToolError,
    BlockedError,
    ChannelClosedError,
    ConnectionFailedError,
    MessageTooLargeError,
    PublishError,
    UnconfirmedError,
)
from amqptool.transport.frames import publish
from amqptool.transport.properties import pika_properties

if TYPE_CHECKING:
    from amqptool.transport.connection import Connection
from amqptool.transport.errors import UnroutableError, translate_errors

__all__ = ["ConfirmedPublisher", "Pending", "too_large"]

log = logging.getLogger("amqptool.transport")

MAX_CLOSES = 3  # a message that was in flight for this many channel closes is failed
_SIZE_TEXT = re.compile(r"message size (\d+) is larger than (?:configured )?max size (\d+)")
_NO_EXCHANGE = re.compile(r"no exchange '([^']*)'")
SLICE = 0.05  # longest single read while waiting, so deadlines hold


@dataclass(eq=False)
class Pending:
    """One message handed to the publisher; ``done`` once the broker settled it."""

    env: Envelope
    mandatory: bool = False
    tag: int = 0
    done: bool = False
    error: AmqpToolError | None = None
    returned: str | None = None
    closes: int = 0
    data: Any = field(default=None)  # the caller's own reference (e.g. the task it is for)

    @property
    def ok(self) -> bool:
        return self.done and self.error is None


def too_large(env: Envelope, limit: int) -> MessageTooLargeError:
    size = len(env.body)
    return MessageTooLargeError(
        f"message is {size} bytes, the broker accepts {limit}",
        size=size,
        limit=limit,
        hint="send less data (a reference to it), or raise the broker's max_message_size",
    )


class ConfirmedPublisher:
    """Publish with confirms on a channel of its own; see the module doc."""

    def __init__(
        self, connection: Connection, *, adopt: Any = None, keep_failed: bool = False
    ) -> None:
        """``adopt``: a pika BlockingChannel to use (a :class:`Channel` with ``confirm=True``);
        its close is not recovered from: the messages in flight fail with the broker's reason.
        ``keep_failed``: collect every failed message in :attr:`failed` (for a caller that
        does not wait, e.g. the worker's loop)."""
        self.connection = connection
        self.failed: list[Pending] | None = [] if keep_failed else None
        self._impl: Any = None  # pika.channel.Channel in confirm mode
        self._blocking: Any = None
        self._next_tag = 1
        self._unconfirmed: dict[int, Pending] = {}
        self._unsent: deque[Pending] = deque()  # to send again (a resend cut short), in order
        self._close_reason: BaseException | None = None
        self._select_ok = False
        self._recovers = adopt is None
        self.last: Pending | None = None  # the latest message handed in (a barrier for callers)
        if adopt is not None:
            self._open(adopt)

    # ------------------------------------------------------------------ state

    @property
    def in_flight(self) -> int:
        """Messages handed in and not settled yet (sent, or waiting to be sent again)."""
        return len(self._unconfirmed) + len(self._unsent)

    @property
    def max_message_size(self) -> int:
        return self.connection.max_message_size

    def unconfirmed(self) -> list[Pending]:
        """The messages not settled yet, oldest first."""
        return [*self._unconfirmed.values(), *self._unsent]

    # ------------------------------------------------------------------ publish

    def publish(self, env: Envelope, *, mandatory: bool = False, data: Any = None) -> Pending:
        """Queue ``env`` (sent on the next read of the connection). Raises
        MessageTooLargeError before sending anything if the body is over the broker's limit."""
        limit = self.max_message_size
        if len(env.body) > limit:
            raise too_large(env, limit)
        item = Pending(env, mandatory=mandatory, data=data)
        self._recover()
        if self._unsent:
            self._send_unsent()
        self._send(item)
        self.last = item
        return item

    def _send(self, item: Pending) -> None:
        if self._impl is None:
            if not self._recovers:
                raise ChannelClosedError("basic.publish: the channel is closed")
            self._open()
        env = item.env
        # a WireEnvelope's properties are encoded already (by a prefork child): sent as they are
        props = env.wire if type(env) is WireEnvelope else pika_properties(env.properties)
        with translate_errors("basic.publish"):
            publish(self._impl, env.exchange, env.routing_key, env.body, props, item.mandatory)
        item.tag = self._next_tag
        self._next_tag += 1
        item.returned = None
        self._unconfirmed[item.tag] = item

    def _send_unsent(self) -> None:
        """Send :attr:`_unsent` in order. If that fails midway (the connection is lost again),
        the messages not sent yet stay there, still counted in flight, for the next try."""
        unsent = self._unsent
        while unsent:
            self._send(unsent[0])
            unsent.popleft()

    def _open(self, blocking: Any = None) -> None:
        if blocking is None:
            with translate_errors("channel.open"):
                blocking = self.connection._require().channel()
        impl = blocking._impl
        self._blocking = blocking
        self._impl = impl
        self._next_tag = 1
        self._close_reason = None
        self._select_ok = False
        impl.add_on_return_callback(self._on_return)
        impl.add_on_close_callback(self._on_close)

        def selected(_frame: Any) -> None:
            self._select_ok = True
            self.connection.wake()

        with translate_errors("confirm.select"):
            impl.confirm_delivery(ack_nack_callback=self._on_confirm, callback=selected)
        deadline = time.monotonic() + 30.0
        while not self._select_ok:
            if self._close_reason is not None or time.monotonic() > deadline:
                raise ConnectionFailedError("confirm.select: no answer from the broker")
            self.connection.process_events(SLICE)

    # ------------------------------------------------------------------ broker callbacks

    def _fail(self, item: Pending, error: AmqpToolError) -> None:
        item.done = True
        item.error = error
        if self.failed is not None:
            self.failed.append(item)

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        nack = method.NAME.endswith("Nack")
        tag = int(method.delivery_tag)
        if method.multiple:
            tags = list(itertools.takewhile(lambda t: t <= tag, self._unconfirmed))
        else:
            tags = [tag] if tag in self._unconfirmed else []
        if tags:
            self.connection.wake()
        for t in tags:
            item = self._unconfirmed.pop(t)
            item.done = True
            env = item.env
            if nack:
                self._fail(
                    item,
                    PublishError(
                        f"basic.publish: the broker nacked the message to exchange "
                        f"{env.exchange!r} with routing key {env.routing_key!r}",
                        reply_text="NACK",
                    ),
                )
            elif item.returned is not None:
                self._fail(
                    item,
                    UnroutableError(
                        f"basic.publish: message unroutable ({item.returned}): no queue bound to "
                        f"exchange {env.exchange!r} with routing key {env.routing_key!r}",
                        reply_code=312,
                        reply_text="NO_ROUTE",
                    ),
                )

    def _on_return(self, _ch: Any, method: Any, _props: Any, body: bytes) -> None:
        text = f"{method.reply_code} {method.reply_text}"
        for item in self._unconfirmed.values():
            env = item.env
            if (
                item.returned is None
                and env.exchange == (method.exchange or "")
                and env.routing_key == (method.routing_key or "")
                and env.body == body
            ):
                item.returned = text
                return

    def _on_close(self, _ch: Any, reason: BaseException) -> None:
        self._close_reason = reason
        self.connection.wake()

    # ------------------------------------------------------------------ recovery

    def _recover(self) -> None:
        """If the broker closed our channel, settle what its reason names, resend the rest."""
        impl = self._impl
        if impl is None or impl.is_open:
            return
        reason = self._close_reason
        self._impl = self._blocking = None
        if not self.connection.is_open:
            raise ConnectionFailedError(f"connection lost: {reason}")
        code = getattr(reason, "reply_code", None)
        text = str(getattr(reason, "reply_text", "") or reason or "channel closed")
        items = list(self._unconfirmed.values())
        self._unconfirmed = {}
        if not self._recovers:
            for item in items:
                self._fail(
                    item,
                    ChannelClosedError(
                        f"basic.publish: {code} {text}", reply_code=code, reply_text=text
                    ),
                )
            return
        size = _SIZE_TEXT.search(text)
        if size is not None:
            self.connection.learned_max_message_size = int(size.group(2))
        missing = _NO_EXCHANGE.search(text) if code == 404 else None
        again: list[Pending] = []
        if items:
            log.warning(
                "the broker closed the publish channel (%s %s); %d unconfirmed message(s) "
                "checked and sent again",
                code,
                text,
                len(items),
            )
        for item in items:
            item.closes += 1
            env = item.env
            if size is not None and len(env.body) > int(size.group(2)):
                item.error = too_large(env, int(size.group(2)))
            elif missing is not None and env.exchange == missing.group(1):
                item.error = ChannelClosedError(
                    f"basic.publish: {code} {text}", reply_code=code, reply_text=text
                )
            elif item.closes >= MAX_CLOSES:
                item.error = ChannelClosedError(
                    f"basic.publish: the broker closed the channel {item.closes} times with "
                    f"this message in flight (last: {code} {text})",
                    reply_code=code,
                    reply_text=text,
                )
            if item.error is not None:
                self._fail(item, item.error)
            else:
                again.append(item)
        self._unsent.extendleft(reversed(again))  # before any left from an earlier resend
        self._send_unsent()

    def rebind(self, connection: Connection) -> None:
        """Use ``connection`` (a new one after a loss) and resend every unconfirmed message.

        If that connection fails too before all are sent again, the rest stay in flight (in
        order) and go out on the next :meth:`rebind` or :meth:`publish`: none is dropped."""
        items = self.unconfirmed()
        self.connection = connection
        self._impl = self._blocking = None
        self._unconfirmed = {}
        self._unsent = deque(items)
        self._send_unsent()

    # ------------------------------------------------------------------ waiting

    def recover(self) -> None:
        """After the broker closed the channel: settle what its reason names, resend the rest."""
        self._recover()

    def wait(self, items: Iterable[Pending] | None = None, timeout: float | None = None) -> None:
        """Until ``items`` (default: everything in flight) are settled; raise the first error.

        Past ``timeout`` it raises BlockedError or UnconfirmedError (outcome unknown).
        """
        wanted = self.unconfirmed() if items is None else list(items)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._recover()
            if self._unsent:
                self._send_unsent()
            if all(item.done for item in wanted):
                break
            remaining = SLICE if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                left = sum(1 for item in wanted if not item.done)
                reason = self.connection.blocked_reason
                if reason is not None:
                    raise BlockedError(reason, unknown=True)
                raise UnconfirmedError(
                    f"{left} message(s) not confirmed by the broker within {timeout:g}s: "
                    "they may or may not have gone through"
                )
            try:
                self.connection.process_until(
                    lambda: all(item.done for item in wanted), min(remaining, SLICE)
                )
            except ChannelClosedError:
                continue  # pika raises a close of our channel here too; _recover handles it
        for item in wanted:
            if item.error is not None:
                raise item.error

    def close(self) -> None:
        """Close the channel (the next publish opens a new one). Call with nothing in flight.

        Through pika's blocking channel, which waits for the broker's CloseOk (bounded): a
        channel left half-closed makes pika's own connection close fail later."""
        impl, self._impl = self._impl, None
        blocking, self._blocking = self._blocking, None
        if impl is not None and impl.is_open and self.connection.blocked_reason is None:
            try:
                if blocking is not None:
                    self.connection.bounded(blocking.close)
                else:
                    impl.close()
            except (pex.AMQPError, OSError, AmqpToolError) as exc:
                log.debug("closing the publish channel: %s", exc)
