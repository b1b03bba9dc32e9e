"""The client's link to the broker: one connection, its channels, and the lock around them.

pika connections are not thread-safe: every use happens under ``_io`` (see
:mod:`amqptool.client.client` for how publishers and result readers share it).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

from amqptool.client.options import RetryPolicy
from amqptool.client.result import ResultMeta
from amqptool.codec.envelope import Envelope
from amqptool.errors import AuthenticationError, ChannelClosedError, ConnectionFailedError
from amqptool.settings import BrokerSettings

if TYPE_CHECKING:
    from amqptool.celeryconf.routing import QueueDecl
    from amqptool.transport import Channel, ConfirmedPublisher, Connection

__all__ = ["RESULT_EXPIRES_MS", "ClientLink"]

log = logging.getLogger("amqptool.client")

RESULT_EXPIRES_MS = 86_400_000  # Celery's result_expires (1 day) as the queue's x-expires

T = TypeVar("T")


class ClientLink:
    """Connection, publish/declare channel, confirm publisher and result consumer of a Client."""

    settings: BrokerSettings
    oid: str

    def _on_result(self, env: Envelope) -> None:
        raise NotImplementedError

    def _reset_after_fork(self) -> None:
        self._pid = os.getpid()
        self.oid = str(uuid.uuid4())  # the result queue's name, our reply_to
        self._io = threading.Lock()
        self._wanting_io = 0  # publishers waiting for _io; result readers step aside
        self._readers_waiting = 0  # result readers waiting (on _cond) for _io to be free
        self._cond = threading.Condition()
        self._states: dict[str, ResultMeta] = {}
        self._conn: Connection | None = None
        self._pub: Channel | None = None
        self._confirms: ConfirmedPublisher | None = None
        self._window: ConfirmedPublisher | None = None  # confirm="pipelined": survives a loss
        self._window_nacked = False  # reopen the window's channel once it is settled
        self._res: Channel | None = None
        self._declared: set[str] = set()
        self._consuming = False

    def _check_fork(self) -> None:
        if os.getpid() != self._pid:
            # The parent's socket is shared: never close it from here, just forget it.
            self._reset_after_fork()

    # ------------------------------------------------------------------ connection

    def _lock_io(self) -> None:
        """Take the connection (``_locked`` without a generator: publishing calls take it once
        per message, and the generator's frames were a few per cent of a pipelined call)."""
        self._check_fork()
        if not self._io.acquire(blocking=False):  # free (the usual case): nobody to signal
            with self._cond:
                self._wanting_io += 1
            try:
                self._io.acquire()
            finally:
                with self._cond:
                    self._wanting_io -= 1

    def _unlock_io(self) -> None:
        self._io.release()
        if self._readers_waiting:  # result readers waiting for the connection
            with self._cond:
                self._cond.notify_all()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self._lock_io()
        try:
            yield
        finally:
            self._unlock_io()

    def _connection(self, *, poll: bool = True) -> Connection:
        """The open connection (connecting if needed). Call with ``_io`` held.

        ``poll=False``: do not read what the broker sent meanwhile (for a caller that reads
        right after it publishes, and resends whatever a lost connection swallowed)."""
        if self._conn is not None and self._conn.is_open:
            if poll:
                # Read what the broker sent meanwhile: a Connection.Close waiting in the socket
                # (broker restart, forced close) must fail here, not swallow our next publish.
                self._conn.process_events(0)
            return self._conn
        self._drop_connection()
        from amqptool.transport import Connection  # pika only when really connecting
        from amqptool.transport.coalesce import coalesce_sends

        hb = None if any(ep.heartbeat is not None for ep in self.settings.endpoints) else 0
        conn = Connection(self.settings, heartbeat=hb, name="amqptool-client")
        conn.connect()
        coalesce_sends(conn)  # a message's three frames in one send(), not three
        self._conn = conn
        log.debug("connected to %s", conn.endpoint.redacted())
        return conn

    def _publisher(self) -> Channel:
        conn = self._connection()
        if self._pub is None or not self._pub.is_open:
            self._pub = conn.channel()
        return self._pub

    def _confirmer(self) -> ConfirmedPublisher:
        """The confirm-mode publisher on the open connection. ``_io`` held."""
        conn = self._connection()
        if self._confirms is None or self._confirms.connection is not conn:
            from amqptool.transport import ConfirmedPublisher

            self._confirms = ConfirmedPublisher(conn)
        return self._confirms

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        self._pub = self._res = None
        self._confirms = None
        self._declared.clear()
        self._consuming = False
        if conn is not None:
            conn.close()

    def _ensure_result_queue(self) -> None:
        """Declare and consume our result queue (once per connection). ``_io`` held."""
        if self._consuming and self._res is not None and self._res.is_open:
            return
        conn = self._connection()
        try:
            ch = self._declare_result_queue(conn)
        except ChannelClosedError as exc:
            if exc.reply_code != 404 or "home node" not in str(exc):
                raise
            # A cluster node holding our (durable, classic) result queue is down: the queue
            # cannot be used nor declared again until the node returns. Go on with a new one.
            old, self.oid = self.oid, str(uuid.uuid4())
            log.warning(
                "result queue %s is on a cluster node that is down: results of tasks sent "
                "before are out of reach until it returns; new result queue %s",
                old,
                self.oid,
            )
            ch = self._declare_result_queue(conn)
        self._res = ch
        self._consuming = True

    def _declare_result_queue(self, conn: Connection) -> Channel:
        ch = conn.channel()
        ch.queue_declare(
            self.oid,
            durable=True,
            auto_delete=True,
            arguments={"x-expires": getattr(self, "result_expires_ms", RESULT_EXPIRES_MS)},
        )
        ch.consume(self.oid, self._on_result, no_ack=True)
        return ch

    def _declare_task_queue(self, queue: QueueDecl) -> None:
        """Declare ``queue`` as Celery does (its exchange, the queue with its arguments, the
        binding) before the first publish. A queue that already exists (a quorum or priority
        queue, say) is used as it is and never declared otherwise."""
        if queue.name in self._declared:
            return
        from amqptool.transport.existing import inspect_queue

        conn = self._connection()
        if inspect_queue(conn, queue.name) is None:
            ch = self._publisher()
            if queue.exchange:
                ch.exchange_declare(queue.exchange, queue.exchange_type, durable=True)
            ch.queue_declare(
                queue.name,
                durable=queue.durable,
                auto_delete=queue.auto_delete,
                arguments=queue.arguments,
            )
            if queue.exchange:
                ch.queue_bind(queue.name, queue.exchange, queue.routing_key)
        else:
            log.debug("queue %r exists; publishing to it as it is", queue.name)
        self._declared.add(queue.name)

    def _retrying(self, what: str, op: Callable[[], T], *, retry: bool, policy: RetryPolicy) -> T:
        """Run ``op`` with the connection locked; on connection failure reconnect and rerun."""
        attempt = 0
        while True:
            try:
                self._lock_io()
                try:
                    return op()
                finally:
                    self._unlock_io()
            except AuthenticationError:
                with self._locked():
                    self._drop_connection()
                raise
            except ConnectionFailedError as exc:
                with self._locked():
                    self._drop_connection()
                if not retry or (policy.max_retries is not None and attempt >= policy.max_retries):
                    tries = attempt + 1
                    raise ConnectionFailedError(
                        f"{what}: {exc.message} (gave up after {tries} "
                        f"{'try' if tries == 1 else 'tries'})",
                        hint=exc.hint or "is the broker running? check -b/--broker or $AMQP_URL",
                    ) from exc
                attempt += 1
                pause = policy.interval(attempt)
                log.warning(
                    "%s: %s; retrying in %.2fs (retry %d of %s)",
                    what,
                    exc.message,
                    pause,
                    attempt,
                    "unlimited" if policy.max_retries is None else policy.max_retries,
                )
                if pause > 0:
                    time.sleep(pause)
