"""The worker's link to the broker: one connection, three channels, Celery's topology.

- **task channel**: consumes the task queues (manual ack, ``basic.qos(N, global=true)``, or a
  per-consumer prefetch when a queue is a quorum or stream queue: RabbitMQ refuses those to a
  channel with a global prefetch), carries the acks and rejects (batched through
  :class:`~worker.runtime.acks.AckTracker`);
- **publish channel**: results, events, callbacks and retries (queued, flushed once per loop),
  all to exchanges that surely exist (the default one, ``celeryev``), with publisher confirms
  (:class:`~amqptool.transport.ConfirmedPublisher`, pipelined: the loop never waits for them).
  A channel the broker closes is reopened and its unconfirmed messages sent again; after a lost
  connection they are sent on the new one. A result bigger than the broker accepts is replaced
  by a FAILURE result saying so, so the client gets an answer;
- **follow-up channel**: messages to any other exchange (a callback whose options name one),
  also confirmed: if that exchange is missing the broker closes this channel, not the one
  carrying results;
- **control channel**: the pidbox queue ``<nodename>.celery.pidbox`` (no ack) and its replies.

Declarations follow Celery's topology exactly, so Celery clients and workers can share them.
A task queue that already exists is consumed as it is, whatever its arguments: it is inspected
first (:func:`amqptool.transport.existing.inspect_queue`) and never declared otherwise.
Everything here runs on the broker thread; other threads only call :meth:`BrokerLink.wake`.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from amqptool.codec.control import CONTROL_EXCHANGE, QUEUE_ARGUMENTS, REPLY_EXCHANGE
from amqptool.codec.control import node_queue_name as pidbox_queue_name
from amqptool.codec.envelope import Envelope
from amqptool.codec.events import EVENT_EXCHANGE
from amqptool.codec.results import too_large_failure
from amqptool.errors import (
    AmqpToolError,
    BrokerError,
    ChannelClosedError,
    ConnectionFailedError,
    MessageTooLargeError,
)
from amqptool.transport import Channel, ConfirmedPublisher, Connection, Pending, nowait
from amqptool.transport.coalesce import coalesce_sends, send_now
from amqptool.transport.existing import inspect_queue
from worker.config import WorkerConfig
from worker.policy.queues import QueueSpec
from worker.runtime.acks import AckTracker
from worker.runtime.native_delay import declare_topology

__all__ = ["BrokerLink", "MailboxInUse"]

log = logging.getLogger("worker.broker")

MAX_QOS = 65535
CONSUMER_TIMEOUT_HINT = (
    " (the broker's consumer_timeout: a task ran longer than it without an ack; the worker "
    "reconnects, and a redelivered copy of a task still running here waits for that run)"
)


class MailboxInUse(AmqpToolError):
    """Another node with the same name holds the pidbox queue (405 RESOURCE_LOCKED)."""


def _noop() -> None:
    """A wake-up: process_events returns once it has run."""


class BrokerLink:
    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.connection_name = f"amqptool-worker {config.nodename}"
        self.conn: Connection | None = None
        self.task_ch: Channel | None = None
        self.pub: ConfirmedPublisher | None = None  # kept across reconnects (see connect)
        self.aux: ConfirmedPublisher | None = None
        self.ctl_ch: Channel | None = None
        self.generation = 0
        self.acks = AckTracker()
        # Acks held until what was published before them is confirmed: (barriers, tag).
        self._held: deque[tuple[tuple[Pending | None, ...], int]] = deque()
        self.queue_by_tag: dict[str, str] = {}
        # The task queues consumed: ``-Q`` plus ``add_consumer`` (kept across reconnects).
        self.queues: dict[str, QueueSpec] = {
            q: config.queue_specs.get(q) or QueueSpec.default(q) for q in config.queues
        }
        self.queue_types: dict[str, str] = {}  # classic / quorum / stream / unknown, per queue
        self._on_task: Callable[[Envelope], None] | None = None
        self.prefetch = config.prefetch
        self.cancelled = ""  # a queue whose consumer the broker cancelled
        self._reply_exchanges: set[str] = set()

    # ------------------------------------------------------------------ connect

    def connect(
        self,
        on_task: Callable[[Envelope], None],
        on_control: Callable[[Envelope], None],
        *,
        consume: bool = True,
        should_stop: Callable[[], bool] | None = None,
        retries: int | None = None,
    ) -> None:
        """Connect (with backoff), declare, and start consuming. Raises MailboxInUse."""

        def on_retry(exc: AmqpToolError, interval: float) -> None:
            log.error("cannot connect to %s: %s; retrying in %.1fs", self.redacted(), exc, interval)

        conn = Connection(self.config.settings, name=self.connection_name)
        conn.connect_with_retry(
            max_retries=retries, on_retry=on_retry, should_stop=should_stop, interval_max=10.0
        )
        coalesce_sends(conn)  # one send() per loop iteration rather than one per frame
        self.conn = conn
        self.generation += 1
        self.acks = AckTracker()
        self._held.clear()  # delivery tags of the old connection mean nothing now
        self.queue_by_tag = {}
        self._reply_exchanges = set()
        self.task_ch = conn.channel()
        self.cancelled = ""
        nowait.on_cancelled(self.task_ch, self._on_cancelled)
        self.task_ch.exchange_declare(EVENT_EXCHANGE, "topic", durable=True)
        for pub in (self.pub, self.aux):
            if pub is not None:  # messages the broker never confirmed before the loss
                if pub.in_flight:
                    log.warning("sending again %d unconfirmed message(s)", pub.in_flight)
                pub.rebind(conn)
        if self.pub is None:
            self.pub = ConfirmedPublisher(conn, keep_failed=True)
        self.open_control(on_control)
        self._on_task = on_task
        for spec in self.queues.values():
            self.queue_types[spec.name] = self.prepare_queue(conn, self.task_ch, spec)
        if "quorum" in self.queue_types.values() and self.config.native_delayed_delivery:
            # as a Celery worker does when it consumes a quorum queue
            bound = declare_topology(
                conn, self.queues.values(), self.config.native_delayed_delivery
            )
            log.info("native delayed delivery: %d queue(s) bound", bound)
        self.set_prefetch(self.prefetch)
        if consume:
            for spec in self.queues.values():
                self._consume(spec)

    @staticmethod
    def declare_task_queue(ch: Channel, queue: str | QueueSpec) -> None:
        """Exchange, queue and binding as ``queue`` describes them (``-Q`` ones like Celery's)."""
        spec = QueueSpec.default(queue) if isinstance(queue, str) else queue
        if spec.no_declare:
            return
        ch.queue_declare(
            spec.name,
            durable=spec.durable,
            exclusive=spec.exclusive,
            auto_delete=spec.auto_delete,
            arguments=spec.declare_arguments(),
        )
        if spec.exchange:
            BrokerLink._declare_binding(ch, spec)

    @property
    def global_qos(self) -> bool:
        """Celery's global prefetch, unless a consumed queue may refuse it (quorum, stream)."""
        return all(kind == "classic" for kind in self.queue_types.values())

    @classmethod
    def prepare_queue(cls, conn: Connection, ch: Channel, spec: QueueSpec) -> str:
        """Declare ``spec`` on ``ch`` if its queue is missing; an existing queue is kept as it
        is (its exchange and binding are still declared, on a channel of their own, as Celery
        does). Returns the queue's type."""
        args = spec.declare_arguments()
        shape = None
        if not spec.exclusive:
            shape = inspect_queue(
                conn, spec.name, durable=spec.durable, auto_delete=spec.auto_delete, arguments=args
            )
        if shape is None:
            if spec.no_declare:
                return "unknown"
            cls.declare_task_queue(ch, spec)
            return str(args.get("x-queue-type") or "classic")
        if shape.arguments != args or shape.durable != spec.durable:
            log.info(
                "queue %r exists (%s, arguments %s): consuming it as it is",
                spec.name,
                shape.queue_type,
                shape.arguments,
            )
        if spec.exchange and not spec.no_declare:
            side = conn.channel()
            try:
                cls._declare_binding(side, spec)
            except ChannelClosedError as exc:
                log.warning("queue %r: cannot bind it to %r: %s", spec.name, spec.exchange, exc)
            finally:
                side.close()
        return shape.queue_type

    @staticmethod
    def _declare_binding(ch: Channel, spec: QueueSpec) -> None:
        ch.exchange_declare(
            spec.exchange,
            spec.exchange_type,
            durable=spec.exchange_durable,
            auto_delete=spec.exchange_auto_delete,
            arguments=spec.exchange_arguments,
        )
        ch.queue_bind(spec.name, spec.exchange, spec.routing_key, spec.binding_arguments)

    def _consume(self, spec: QueueSpec) -> None:
        assert self.task_ch is not None and self._on_task is not None
        tag = self.task_ch.consume(spec.name, self._on_task, arguments=spec.consumer_arguments)
        self.queue_by_tag[tag] = spec.name

    def add_queue(self, spec: QueueSpec, *, consume: bool) -> bool:
        """``add_consumer``: declare (on a channel of its own, so a refused declaration costs
        nothing else) and start consuming. False when already consuming from that queue;
        raises the broker's refusal (e.g. 406 for different flags) as a BrokerError."""
        if spec.name in self.queues:
            return False
        if self.conn is None or self.task_ch is None:
            raise ConnectionFailedError("not connected to the broker")
        ch = self.conn.channel()
        try:
            kind = self.prepare_queue(self.conn, ch, spec)
        finally:
            ch.close()
        if kind != "classic" and self.global_qos and self.queue_by_tag:
            raise BrokerError(
                f"queue {spec.name!r} is a {kind} queue: RabbitMQ refuses it to this worker's "
                "global prefetch; restart the worker with it in -Q instead"
            )
        self.queue_types[spec.name] = kind
        self.queues[spec.name] = spec
        if consume:
            self._consume(spec)
        return True

    def cancel_queue(self, name: str) -> bool:
        """``cancel_consumer``: stop consuming from ``name`` (False if we were not)."""
        known = self.queues.pop(name, None) is not None
        self.queue_types.pop(name, None)
        tags = [tag for tag, queue in self.queue_by_tag.items() if queue == name]
        for tag in tags:
            del self.queue_by_tag[tag]
            if self.task_ch is not None and self.task_ch.is_open:
                self.task_ch.cancel(tag)
        return known or bool(tags)

    def open_control(self, on_control: Callable[[Envelope], None]) -> None:
        assert self.conn is not None
        ch = self.ctl_ch = self.conn.channel()
        name = pidbox_queue_name(self.config.nodename)
        ch.exchange_declare(CONTROL_EXCHANGE, "fanout", durable=False)
        ch.exchange_declare(REPLY_EXCHANGE, "direct", durable=False)
        self._reply_exchanges.add(REPLY_EXCHANGE)
        try:
            ch.queue_declare(
                name, exclusive=True, auto_delete=True, arguments=dict(QUEUE_ARGUMENTS)
            )
        except ChannelClosedError as exc:
            if exc.reply_code == 405:
                raise MailboxInUse(
                    f"a node named {self.config.nodename} is already using this process mailbox",
                    hint="give this worker another name with -n",
                ) from exc
            raise
        ch.queue_bind(name, CONTROL_EXCHANGE, "")
        ch.consume(name, on_control, no_ack=True)

    def redacted(self) -> str:
        return self.config.settings.redacted()

    # ------------------------------------------------------------------ loop helpers

    def process(self, time_limit: float) -> None:
        if self.conn is None:
            raise ConnectionFailedError("not connected to the broker")
        self.conn.process_events(time_limit)

    def wake(self) -> None:
        """Thread-safe: make the broker thread's ``process`` return soon."""
        conn = self.conn
        if conn is not None:
            # While reconnecting this fails; the loop drains the outbox after it anyway.
            with contextlib.suppress(AmqpToolError, AttributeError, RuntimeError):
                conn.call_soon_threadsafe(_noop)

    def _on_cancelled(self, consumer_tag: str) -> None:
        self.cancelled = self.queue_by_tag.pop(consumer_tag, consumer_tag)

    def check_channels(self, on_control: Callable[[Envelope], None]) -> None:
        """Raise if the task channel died (its unacked messages are gone) or the broker cancelled
        a task consumer (its queue was deleted): the worker reconnects and declares again, rather
        than answering pings while it consumes nothing. Reopen the other channels."""
        if self.task_ch is None or not self.task_ch.is_open:
            reason = self.task_ch.close_reason if self.task_ch is not None else ""
            raise ConnectionFailedError(
                "the task channel was closed by the broker"
                + (f": {reason}" if reason else "")
                + (CONSUMER_TIMEOUT_HINT if "acknowledgement" in reason else "")
            )
        if self.cancelled:
            raise ConnectionFailedError(
                f"the broker cancelled the consumer of queue {self.cancelled!r} (deleted?)"
            )
        for pub in (self.pub, self.aux):
            if pub is not None:
                pub.recover()
                self._settle_failures(pub)
        if self.ctl_ch is None or not self.ctl_ch.is_open:
            log.warning("control channel was closed; reopening it")
            self.open_control(on_control)

    def ack_after_publishes(self, tag: int) -> None:
        """Ack ``tag`` once everything published so far (a task's result, retries, callbacks)
        is confirmed by the broker: a worker lost before that leaves the task to run again
        rather than acknowledged with its result gone."""
        barriers = (
            self.pub.last if self.pub is not None else None,
            self.aux.last if self.aux is not None else None,
        )
        if all(b is None or b.done for b in barriers):
            self.acks.ack(tag)
        else:
            self._held.append((barriers, tag))

    def flush_acks(self, *, write_now: bool = False) -> None:
        """Send the acks that are ready. ``write_now``: write them to the socket at once, not
        on the next poll, so the broker refills the prefetch window while we work. Only worth
        it when no pool thread waits for the GIL: the socket write releases it, and a waiting
        pool thread would then hold the broker thread up until it blocks (measured: a gain
        for ``solo``, a loss for ``threads -c 2`` when done unconditionally)."""
        held = self._held
        while held and all(b is None or b.done for b in held[0][0]):
            self.acks.ack(held.popleft()[1])
        ch = self.task_ch
        if ch is None:
            return
        frames = self.acks.flush()
        if not frames:
            return
        for tag, multiple in frames:
            nowait.ack(ch, tag, multiple=multiple)
        if write_now and self.conn is not None:
            send_now(self.conn)

    def reject(self, tag: int, *, requeue: bool) -> None:
        self.acks.forget(tag)
        if self.task_ch is not None:
            nowait.reject(self.task_ch, tag, requeue=requeue)

    def publish(self, env: Envelope) -> None:
        """Queue a publish (see the module doc for which channel carries it)."""
        if self.conn is None or self.pub is None:
            raise ConnectionFailedError("not connected to the broker")
        if env.exchange and env.exchange != EVENT_EXCHANGE:
            if self.aux is None:
                self.aux = ConfirmedPublisher(self.conn, keep_failed=True)
            pub = self.aux
        else:
            pub = self.pub
        try:
            pub.publish(env)
        except MessageTooLargeError as exc:
            self._too_large(pub, env, exc.limit)

    def _too_large(self, pub: ConfirmedPublisher, env: Envelope, limit: int) -> None:
        failure = too_large_failure(env, limit)
        if failure is None:
            log.error(
                "cannot publish a message of %d bytes to exchange %r, routing key %r: the "
                "broker accepts %d",
                len(env.body),
                env.exchange,
                env.routing_key,
                limit,
            )
            return
        log.error(
            "result for %s is %d bytes, the broker accepts %d: sending a FAILURE instead",
            env.properties.correlation_id,
            len(env.body),
            limit,
        )
        pub.publish(failure)

    def _settle_failures(self, pub: ConfirmedPublisher) -> None:
        """Messages the broker refused after the fact (a 406 for size, a 404, a nack)."""
        failed, pub.failed = pub.failed or [], []
        for item in failed:
            if isinstance(item.error, MessageTooLargeError):
                self._too_large(pub, item.env, item.error.limit)
            else:
                log.error("the broker did not take a message: %s", item.error)

    def reply(self, env: Envelope) -> None:
        """Publish a control reply, declaring its (direct, non-durable) exchange first."""
        ch = self.ctl_ch
        if ch is None:
            return
        if env.exchange and env.exchange not in self._reply_exchanges:
            ch.exchange_declare(env.exchange, "direct", durable=False)
            self._reply_exchanges.add(env.exchange)
        ch.publish(env)

    def set_prefetch(self, count: int) -> None:
        """Set the prefetch. A per-consumer prefetch (quorum queues) applies to consumers
        started afterwards: RabbitMQ keeps the count a consumer started with."""
        self.prefetch = count
        if self.task_ch is not None and self.task_ch.is_open:
            self.task_ch.qos(min(max(count, 0), MAX_QOS), global_qos=self.global_qos)

    def cancel_consumers(self) -> None:
        ch = self.task_ch
        if ch is None or not ch.is_open:
            return
        for tag in list(self.queue_by_tag):
            ch.cancel(tag)
        self.queue_by_tag = {}

    def flush(self) -> None:
        if self.conn is not None and self.conn.is_open:
            self.conn.process_events(0)

    def settle(self, timeout: float, *, acks: bool = True) -> None:
        """Wait up to ``timeout`` s for the broker to confirm what was published (shutdown);
        then send the acks held for those confirms (unless ``acks`` is false: cold shutdown)."""
        for pub in (self.pub, self.aux):
            if pub is None or not pub.in_flight or self.conn is None or not self.conn.is_open:
                continue
            try:
                pub.wait(timeout=timeout)
            except AmqpToolError as exc:
                log.warning("results not confirmed before shutdown: %s", exc)
            self._settle_failures(pub)
        if acks and self.conn is not None and self.conn.is_open:
            self.flush_acks()
            self.conn.process_events(0)

    def close(self) -> None:
        conn, self.conn = self.conn, None
        self.task_ch = self.ctl_ch = None
        if conn is not None:
            conn.close()

    def queue_infos(self) -> list[dict[str, Any]]:
        """``inspect active_queues``: the task queues, described as Celery describes them."""
        return [spec.as_celery_dict() for spec in self.queues.values()]

    def broker_stats(self) -> dict[str, Any]:
        ep = self.config.settings.primary
        return {
            "hostname": ep.host,
            "userid": ep.userid,
            "virtual_host": ep.vhost,
            "port": ep.port,
            "insist": False,
            "ssl": ep.ssl,
            "transport": "amqp",
            "connect_timeout": ep.connection_timeout or 4,
            "transport_options": {},
            "login_method": "PLAIN",
            "uri_prefix": None,
            "heartbeat": float(ep.heartbeat or 60),
            "failover_strategy": "round-robin",
            "alternates": [e.redacted() for e in self.config.settings.endpoints[1:]],
            "credential_provider": None,
        }
