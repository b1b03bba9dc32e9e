"""A blocking connection and channel over pika: the one place amqptool talks to pika.

One :class:`Connection` belongs to one thread. Other threads reach it only through
:meth:`Connection.call_soon_threadsafe`. Every pika error leaves this module translated into
amqptool's error tree (see :mod:`amqptool.transport.errors`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import ssl
import time
import weakref
from collections.abc import Callable
from typing import Any

import pika
import pika.exceptions as pex
from pika.adapters.blocking_connection import BlockingConnection
from pika.adapters.utils.connection_workflow import AMQPConnectorException

from amqptool.errors import AmqpToolError, ConnectionFailedError
from amqptool.settings import BrokerEndpoint, BrokerSettings
from amqptool.transport import waits
from amqptool.transport.channel import Channel
from amqptool.transport.errors import translate_connect, translate_errors
from amqptool.transport.frames import read_own_frames
from amqptool.transport.properties import QueueInfo, envelope_from_pika, pika_properties

__all__ = ["Channel", "Connection", "QueueInfo", "envelope_from_pika", "pika_properties"]

log = logging.getLogger("amqptool.transport")

DEFAULT_HEARTBEAT = 60
DEFAULT_CONNECT_TIMEOUT = 4.0
CLOSE_TIMEOUT = 1.0  # longest wait for the broker to answer our Close
MAX_MESSAGE_SIZE_ENV = "AMQPTOOL_MAX_MESSAGE_SIZE"
MIB = 1 << 20


def default_max_message_size(version: str) -> int:
    """RabbitMQ's default ``max_message_size`` for a server version: 16 MiB from 4.0, else 128 MiB.

    The broker does not announce its setting; a node configured otherwise needs
    ``?max_message_size=N`` in the URL or ``$AMQPTOOL_MAX_MESSAGE_SIZE``.
    """
    head = version.split(".", 1)[0]
    return 16 * MIB if head.isdigit() and int(head) >= 4 else 128 * MIB


def _parameters(
    settings: BrokerSettings, ep: BrokerEndpoint, *, heartbeat: int | None, name: str
) -> pika.ConnectionParameters:
    ssl_options = None
    if ep.ssl:  # TLS options with an amqp:// URL are refused when the settings are made
        ctx = ssl.create_default_context(cafile=settings.tls.ca_file)
        if settings.tls.cert_file:
            ctx.load_cert_chain(settings.tls.cert_file, settings.tls.key_file)
        ssl_options = pika.SSLOptions(ctx, server_hostname=ep.host)
    hb = ep.heartbeat if ep.heartbeat is not None else heartbeat
    return pika.ConnectionParameters(
        host=ep.host,
        port=ep.port,
        virtual_host=ep.vhost,
        credentials=pika.PlainCredentials(ep.userid, ep.password()),
        heartbeat=DEFAULT_HEARTBEAT if hb is None else hb,
        blocked_connection_timeout=None,  # callers bound their own waits (see blocked_reason)
        socket_timeout=ep.connection_timeout or DEFAULT_CONNECT_TIMEOUT,
        # The whole connect (TCP, TLS, AMQP handshake) within the connect timeout: a port that
        # accepts but does not speak AMQP is reported then, not minutes later.
        stack_timeout=ep.connection_timeout or DEFAULT_CONNECT_TIMEOUT,
        connection_attempts=1,
        ssl_options=ssl_options,
        client_properties={"connection_name": name, "product": "amqptool"},
    )


_CONNECTED: weakref.WeakSet[Connection] = weakref.WeakSet()


def _release_after_fork() -> None:
    """In a forked child: let go of the parent's broker sockets, silently.

    A child that kept the parent's socket open would keep the parent's connection alive after
    the parent died (SIGKILL, OOM): the broker would hold its unacked messages and exclusive
    queues until a heartbeat timeout, minutes later. The child says nothing to the broker (the
    connection is the parent's); it just closes its copy of the descriptor.
    """
    for conn in list(_CONNECTED):
        conn._release_in_child()


os.register_at_fork(after_in_child=_release_after_fork)


class Connection:
    """A blocking AMQP connection with failover across the configured endpoints.

    After ``os.fork()`` a child sees every connection of its parent as closed (see
    :func:`_release_after_fork`).
    """

    def __init__(
        self, settings: BrokerSettings, *, heartbeat: int | None = None, name: str = "amqptool"
    ) -> None:
        self.settings = settings
        self.heartbeat = heartbeat
        self.name = name
        self._conn: BlockingConnection | None = None
        self._endpoint_index = 0
        self.blocked_reason: str | None = None  # set while the broker blocks our publishes
        self.learned_max_message_size: int | None = None  # from a 406 "larger than max size"
        self._version_max: int | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def endpoint(self) -> BrokerEndpoint:
        return self.settings.endpoints[self._endpoint_index]

    @property
    def is_open(self) -> bool:
        return self._conn is not None and self._conn.is_open

    def connected_to(self) -> str:
        """The endpoint in use (after a failover, the one that answered), password hidden."""
        return self.endpoint.redacted()

    def connect(self) -> Connection:
        """Connect to the first endpoint that answers (one pass over the list)."""
        last: AmqpToolError | None = None
        count = len(self.settings.endpoints)
        for step in range(count):
            index = (self._endpoint_index + step) % count
            ep = self.settings.endpoints[index]
            try:
                params = _parameters(self.settings, ep, heartbeat=self.heartbeat, name=self.name)
                self._conn = BlockingConnection(params)
                read_own_frames(self._conn)  # this connection only: pika stays stock
            except (pex.AMQPError, OSError, ssl.SSLError, AMQPConnectorException) as exc:
                last = translate_connect(exc, ep.redacted(), f"{ep.host}:{ep.port}")
                log.debug("connect to %s failed: %s", ep.redacted(), last)
                continue
            self._endpoint_index = index
            self.blocked_reason = None
            self._version_max = None
            # On pika's own connection (not the blocking wrapper): heard at once, even while a
            # close or a publish is waiting on the socket.
            self._conn._impl.add_on_connection_blocked_callback(self._on_blocked)
            self._conn._impl.add_on_connection_unblocked_callback(self._on_unblocked)
            _CONNECTED.add(self)
            return self
        assert last is not None
        raise last

    def connect_with_retry(
        self,
        *,
        max_retries: int | None = None,
        interval_start: float = 0.5,
        interval_step: float = 1.0,
        interval_max: float = 10.0,
        on_retry: Callable[[AmqpToolError, float], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Connection:
        """Connect, retrying with a growing pause; auth errors are not retried."""
        attempt = 0
        interval = interval_start
        while True:
            try:
                return self.connect()
            except ConnectionFailedError as exc:
                from amqptool.errors import AuthenticationError

                if isinstance(exc, AuthenticationError):
                    raise
                attempt += 1
                if max_retries is not None and attempt > max_retries:
                    raise
                if should_stop is not None and should_stop():
                    raise
                if on_retry is not None:
                    on_retry(exc, interval)
                deadline = time.monotonic() + interval
                while time.monotonic() < deadline:
                    if should_stop is not None and should_stop():
                        raise
                    time.sleep(min(0.1, interval))
                interval = min(interval + interval_step, interval_max)

    def _on_blocked(self, _conn: Any, frame: Any) -> None:  # on pika's connection (no wrapper)
        reason = str(getattr(frame.method, "reason", "") or "no reason given")
        self.blocked_reason = reason
        log.info("the broker is blocking publishers (%s)", reason)

    def _on_unblocked(self, _conn: Any, _frame: Any) -> None:
        if self.blocked_reason is not None:
            log.info("the broker no longer blocks publishers")
        self.blocked_reason = None

    @property
    def max_message_size(self) -> int:
        """The largest message body the broker takes (bytes), as well as we can know it."""
        if self.learned_max_message_size is not None:
            return self.learned_max_message_size
        given = self.endpoint.max_message_size
        if given is not None:
            return given
        env = os.environ.get(MAX_MESSAGE_SIZE_ENV, "").strip()
        if env.isdigit() and int(env) > 0:
            return int(env)
        if self._version_max is None:
            version = str(self.server_properties().get("version", "")) if self.is_open else ""
            self._version_max = default_max_message_size(version)
        return self._version_max

    def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Close, waiting at most ``timeout`` s for the broker's answer; then (or at once while
        the broker blocks us: it reads nothing, a Close would wait for the alarm to end) drop
        the socket. ``blocked_reason`` stays set for the caller to report."""
        if self.blocked_reason is not None:
            _CONNECTED.discard(self)
            self._release_in_child()
            return
        conn, self._conn = self._conn, None
        _CONNECTED.discard(self)
        if conn is None or not conn.is_open:
            return
        impl = conn._impl

        def give_up() -> None:
            with contextlib.suppress(Exception):  # a socket pika already let go of
                impl._transport._sock.shutdown(socket.SHUT_RDWR)

        waits.watch(conn, timeout, lambda: self.blocked_reason is not None, give_up)
        with contextlib.suppress(pex.AMQPError, OSError, AssertionError):
            conn.close()

    def bounded(self, op: Callable[[], None], timeout: float = CLOSE_TIMEOUT) -> bool:
        """Run ``op`` (a pika call waiting for the broker's answer); give up after ``timeout`` s
        or as soon as the broker blocks us. False when it gave up (the answer may come later)."""
        if self._conn is None:
            op()
            return True
        return waits.bounded(self._conn, op, timeout, lambda: self.blocked_reason is not None)

    def abort(self) -> None:
        """Drop the connection at once: close its socket without the Close handshake.

        For a connection that may be half-open (the peer stopped answering), where a polite
        ``close()`` would wait for a Close-Ok that never comes. The broker sees the socket close
        and requeues what was unacknowledged, as for any lost client.
        """
        self._release_in_child()

    def _release_in_child(self) -> None:
        """Forget the connection and close this process's copy of its socket (no Close frame)."""
        conn, self._conn = self._conn, None
        _CONNECTED.discard(self)
        if conn is None:
            return
        # pika 1.x keeps the socket on its transport (``_sock``, no public accessor); detach()
        # marks the socket object closed, so nothing closes that descriptor number again later.
        with contextlib.suppress(Exception):  # a half-torn-down pika object: nothing to free
            sock = conn._impl._transport._sock
            os.close(sock.detach())

    def __enter__(self) -> Connection:
        if not self.is_open:
            self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _require(self) -> BlockingConnection:
        if self._conn is None or not self._conn.is_open:
            raise ConnectionFailedError("not connected to the broker")
        return self._conn

    # ------------------------------------------------------------------ use

    def channel(self, *, confirm: bool = False) -> Channel:
        """A channel; with ``confirm`` every :meth:`Channel.publish` waits for its confirm."""
        with translate_errors("channel.open"):
            ch = self._require().channel()
        return Channel(ch, self, confirm=confirm)

    def process_events(self, time_limit: float | None = 0) -> None:
        """Run pika's I/O loop: deliver messages, heartbeats and threadsafe callbacks."""
        with translate_errors():
            self._require().process_data_events(time_limit=time_limit)

    def wake(self) -> None:
        """From a callback of pika's own connection (same thread): end the current
        :meth:`process_events` now (pika otherwise waits its whole time limit, since events of
        its inner connection, such as publisher confirms, do not end the wait)."""
        conn = self._conn
        if conn is not None:
            waits.wake(conn)

    def process_until(self, done: Callable[[], bool], time_limit: float) -> None:
        """Run pika's I/O loop until ``done()`` is true or ``time_limit`` passed, whichever is
        first (``process_events`` always waits out its whole time limit). Callbacks that pika
        queues for the blocking layer (deliveries of ``consume``) wait for ``process_events``."""
        with translate_errors():
            conn = self._require()
            expired = False

            def expire() -> None:
                nonlocal expired
                expired = True

            ioloop = conn._impl.ioloop  # pika 1.x: the adapter's loop (no public accessor)
            timer = ioloop.call_later(max(time_limit, 0.0), expire)
            try:
                conn._flush_output(done, lambda: expired)
            finally:
                ioloop.remove_timeout(timer)

    def add_reader(self, fd: int, callback: Callable[[], None]) -> None:
        """Call ``callback`` from this connection's I/O loop (its own thread, inside
        :meth:`process_events`) while ``fd`` is readable; until :meth:`remove_reader`. The
        callback must not raise."""
        ioloop = self._require()._impl.ioloop  # pika 1.x: the adapter's loop (see process_until)
        ioloop.add_handler(fd, lambda _fd, _events: callback(), ioloop.READ)

    def remove_reader(self, fd: int) -> None:
        """Stop watching ``fd`` (nothing to do once the connection is closed)."""
        conn = self._conn
        if conn is not None and conn.is_open:
            conn._impl.ioloop.remove_handler(fd)

    def sleep(self, seconds: float) -> None:
        with translate_errors():
            self._require().sleep(seconds)

    def call_soon_threadsafe(self, callback: Callable[[], None]) -> None:
        """Schedule ``callback`` on the connection's own thread (the only cross-thread door)."""
        with translate_errors():
            self._require().add_callback_threadsafe(callback)

    def call_later(self, delay: float, callback: Callable[[], None]) -> object:
        with translate_errors():
            return self._require().call_later(delay, callback)

    def remove_timeout(self, handle: object) -> None:
        if self._conn is not None and self._conn.is_open:
            self._conn.remove_timeout(handle)

    def server_properties(self) -> dict[str, Any]:
        conn = self._require()
        impl = getattr(conn, "_impl", None)
        props = getattr(impl, "server_properties", None) or {}
        return {str(k): (v.decode() if isinstance(v, bytes) else v) for k, v in props.items()}
