"""The monitor's event consumer: its own queue on ``celeryev``, batches, reconnects.

Runs on a thread of its own (never the UI thread) and owns its :class:`Connection` there
(one connection per thread: docs/architecture.md, Threads). Other threads only call
:meth:`EventFeed.stop`, which sets a flag.

On every (re)connect it declares, exactly as Celery's ``EventReceiver`` does (docs/protocol.md §3.6,
§6.4):

* exchange ``celeryev``: topic, durable, not auto-delete;
* queue ``celeryev.<uuid4>``: exclusive, auto-delete, ``x-message-ttl=5000``,
  ``x-expires=60000``, bound with ``#`` (so it leaves no litter: it dies with the connection);

then consumes it ``no_ack``, and casts the ``heartbeat`` control command (no reply) so workers
announce themselves at once. Bodies are decoded with :func:`decode_events` (an object or a
``task.multi`` array); each event gets ``local_received``. Events are handed on in batches
(every ``batch_interval`` seconds, or ``max_batch`` events); a body that does not decode is
counted in the batch's ``malformed`` and never stops the feed. When the broker goes away the
feed reports it, waits with a growing pause and connects again. While it runs, the monitor's
cyclic-GC tuning applies (:mod:`amqptool.monitor.gctune`; ``tune_gc=False`` leaves the GC alone).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from amqptool.codec.control import CONTROL_EXCHANGE, encode_request, new_request
from amqptool.codec.envelope import Envelope
from amqptool.codec.events import EVENT_EXCHANGE, decode_events
from amqptool.errors import (
    AmqpToolError,
    AuthenticationError,
    BrokerError,
    ConnectionFailedError,
)
from amqptool.monitor.gctune import ingest_gc
from amqptool.settings import BrokerSettings
from amqptool.transport import Channel, Connection

__all__ = [
    "EVENT_QUEUE_ARGUMENTS",
    "EventFeed",
    "FeedBatch",
    "FeedStatus",
    "declare_event_queue",
]

log = logging.getLogger("amqptool.monitor.feed")

EVENT_QUEUE_ARGUMENTS: dict[str, Any] = {"x-message-ttl": 5000, "x-expires": 60000}

CONNECTING = "connecting"
CONNECTED = "connected"
DISCONNECTED = "disconnected"
FAILED = "failed"
STOPPED = "stopped"


@dataclass(frozen=True)
class FeedStatus:
    """The feed's connection state, as the header shows it."""

    state: str  # connecting | connected | disconnected | failed | stopped
    detail: str = ""
    since: float = 0.0
    attempt: int = 0
    queue: str | None = None
    exit_code: int = 0  # FAILED: the exit code of the error (71 when the login was refused)

    @property
    def connected(self) -> bool:
        return self.state == CONNECTED


@dataclass
class FeedBatch:
    """Events received since the last batch, in arrival order."""

    events: list[dict[str, Any]] = field(default_factory=list)
    malformed: int = 0
    messages: int = 0


def declare_event_queue(channel: Channel, prefix: str = EVENT_EXCHANGE) -> str:
    """Declare ``celeryev`` and a private ``celeryev.<uuid>`` queue bound with ``#``."""
    channel.exchange_declare(EVENT_EXCHANGE, "topic", durable=True, auto_delete=False)
    name = f"{prefix}.{uuid.uuid4()}"
    channel.queue_declare(name, exclusive=True, auto_delete=True, arguments=EVENT_QUEUE_ARGUMENTS)
    channel.queue_bind(name, EVENT_EXCHANGE, "#")
    return name


def cast_heartbeat(channel: Channel) -> None:
    """Ask every worker for an immediate ``worker-heartbeat`` (a cast: no reply wanted)."""
    channel.exchange_declare(CONTROL_EXCHANGE, "fanout", durable=False, auto_delete=False)
    channel.publish(encode_request(new_request("heartbeat")))


class EventFeed:
    """Consume Celery events and hand them on in batches; reconnect when the broker goes."""

    def __init__(
        self,
        settings: BrokerSettings,
        on_batch: Callable[[FeedBatch], None],
        on_status: Callable[[FeedStatus], None] | None = None,
        *,
        batch_interval: float = 0.1,
        max_batch: int = 5000,
        reconnect: bool = True,
        retry_interval: float = 0.5,
        retry_max: float = 5.0,
        ask_heartbeat: bool = True,
        tune_gc: bool = True,
        name: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.on_batch = on_batch
        self.on_status = on_status
        self.batch_interval = batch_interval
        self.max_batch = max_batch
        self.reconnect = reconnect
        self.retry_interval = retry_interval
        self.retry_max = retry_max
        self.ask_heartbeat = ask_heartbeat
        self.tune_gc = tune_gc
        self.name = name or f"amqptool-monitor-{uuid.uuid4().hex[:8]}"
        self.clock = clock
        self.queue: str | None = None
        self.blocked_reason: str | None = None  # the broker blocked publishers (last connection)
        self.status = FeedStatus(STOPPED)
        self.connects = 0
        self._stop = threading.Event()
        self._batch = FeedBatch()
        self._last_flush = 0.0

    # ------------------------------------------------------------------ control

    def stop(self) -> None:
        """Ask the feed to finish (thread-safe); ``run`` returns within ``batch_interval``."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _report(self, state: str, detail: str = "", attempt: int = 0, exit_code: int = 0) -> None:
        self.status = FeedStatus(state, detail, self.clock(), attempt, self.queue, exit_code)
        if self.on_status is not None:
            self.on_status(self.status)

    # ------------------------------------------------------------------ messages

    def _on_message(self, env: Envelope) -> None:
        batch = self._batch
        batch.messages += 1
        try:
            events = decode_events(env)
        except AmqpToolError as exc:
            batch.malformed += 1
            log.info("malformed event body on %r: %s", env.routing_key, exc)
            return
        except Exception as exc:  # a decoder bug must never stop the feed
            batch.malformed += 1
            log.info("undecodable event body on %r: %r", env.routing_key, exc)
            return
        now = self.clock()
        out = batch.events
        for event in events:
            event["local_received"] = now
            out.append(event)

    def _flush(self, force: bool = False) -> None:
        batch = self._batch
        if not (batch.events or batch.malformed):
            return
        now = time.monotonic()
        if (
            not force
            and len(batch.events) < self.max_batch
            and now - self._last_flush < self.batch_interval
        ):
            return
        self._batch = FeedBatch()
        self._last_flush = now
        self.on_batch(batch)

    def _ask_for_heartbeats(self, conn: Connection) -> None:
        """Best effort, on a channel of its own: a refused cast must not stop the feed."""
        try:
            channel = conn.channel()
            try:
                cast_heartbeat(channel)
            finally:
                channel.close()
        except BrokerError as exc:
            log.info("could not ask workers for a heartbeat: %s", exc)

    # ------------------------------------------------------------------ the loop

    def run(self) -> None:
        """Consume until :meth:`stop`. Without ``reconnect``, connection errors are raised.

        With ``tune_gc`` (the default) the monitor's GC tuning (:func:`ingest_gc`) applies
        while it runs."""
        if not self.tune_gc:
            self._run()
            return
        with ingest_gc():
            self._run()

    def _run(self) -> None:
        attempt = 0
        pause = self.retry_interval
        try:
            while not self._stop.is_set():
                self._report(CONNECTING, self.settings.redacted(), attempt)
                conn = Connection(self.settings, name=self.name)
                try:
                    conn.connect()
                    channel = conn.channel()
                    self.queue = declare_event_queue(channel)
                    channel.consume(self.queue, self._on_message, no_ack=True)
                    if self.ask_heartbeat:
                        self._ask_for_heartbeats(conn)
                    self.connects += 1
                    attempt = 0
                    pause = self.retry_interval
                    self._report(CONNECTED, conn.endpoint.redacted())
                    while not self._stop.is_set():
                        conn.process_events(time_limit=self.batch_interval)
                        self._flush()
                    self._flush(force=True)
                except AuthenticationError as exc:
                    self._flush(force=True)
                    self._report(FAILED, exc.user_line(), attempt, int(exc.exit_code))
                    raise
                except (ConnectionFailedError, AmqpToolError) as exc:
                    self._flush(force=True)
                    attempt += 1
                    self._report(DISCONNECTED, exc.user_line(), attempt)
                    if not self.reconnect:
                        raise
                    if self._stop.wait(pause):
                        break
                    pause = min(pause * 2, self.retry_max)
                finally:
                    self.queue = None
                    self.blocked_reason = conn.blocked_reason
                    conn.close()
        finally:
            self._report(STOPPED)
