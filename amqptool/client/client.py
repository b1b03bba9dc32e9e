"""The task client: publishes Celery protocol v2 messages and reads ``rpc://`` results.

Threads. One :class:`Client` owns one pika connection with two channels (publish/declare, and
the result consumer). pika connections are not thread-safe, so every use of it happens under
one lock (``_io``): publishing takes it blocking; a thread waiting for a result takes it only
when free, reads for at most ``DRAIN_SLICE`` seconds (pika returns as soon as a message is
in), and otherwise waits on a condition that the result callback notifies. A publisher never
waits more than one slice, and waiting threads never block each other: whoever drains stores
every result it reads in a dict keyed by task id, so any number of results may be outstanding.

Heartbeats. A client is idle most of the time and pika only answers heartbeats while somebody
reads, so the connection asks for none (heartbeat 0) unless the URL sets ``?heartbeat=N``;
otherwise the broker would drop an idle client, and with it the auto-delete result queue.

Forks. A client used in a forked child drops (without closing) the parent's connection and
starts over with a new result queue.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, TypeVar

from amqptool.backends.urls import backend_from_url, is_rpc
from amqptool.client.groups import group_messages
from amqptool.client.options import DEFAULT_QUEUE, RetryPolicy, When, build_message
from amqptool.client.result import AsyncResult, GroupResult, ResultMeta, ResultSource
from amqptool.client.rpc_results import RpcResults
from amqptool.client.signature import Signature
from amqptool.client.stored import BackendSource
from amqptool.codec.serialization import normalize_accept
from amqptool.codec.tasks import TaskMessage, encode_task
from amqptool.errors import (
    AmqpToolError,
    AuthenticationError,
    ChannelClosedError,
    ConnectionFailedError,
    UsageError,
)
from amqptool.settings import BrokerSettings

if TYPE_CHECKING:
    from amqptool.backends import Backend
    from amqptool.transport import Channel, Connection

__all__ = ["RESULT_EXPIRES_MS", "Client", "default_client"]

log = logging.getLogger("amqptool.client")
log.addHandler(logging.NullHandler())  # a library: retry warnings go where the app logs

RESULT_EXPIRES_MS = 86_400_000  # Celery's result_expires (1 day) as the queue's x-expires
RESULT_ACCEPT = normalize_accept(["json", "msgpack", "yaml"])

T = TypeVar("T")


class Client(RpcResults):
    """Send Celery tasks by name and wait for their results (``rpc://``).

    ``settings`` (or ``url``; neither: ``$AMQP_URL`` / ``$CELERY_BROKER_URL`` / localhost).
    Nothing connects until the first send or result read. ``close()`` (or ``with``) ends the
    connection; using the client again reconnects.
    """

    def __init__(
        self,
        settings: BrokerSettings | None = None,
        *,
        url: str | None = None,
        accept: Iterable[str] | None = None,
        backend: str | Backend | None = None,
        default_queue: str = DEFAULT_QUEUE,
    ) -> None:
        if settings is not None and url is not None:
            raise UsageError("give settings or url, not both")
        self.settings = settings if settings is not None else BrokerSettings.from_url(url)
        self._accept = normalize_accept(accept) if accept is not None else RESULT_ACCEPT
        self.default_queue = default_queue
        self.results: ResultSource = self
        if backend is not None and not (isinstance(backend, str) and is_rpc(backend)):
            if isinstance(backend, str):
                backend = backend_from_url(backend, accept=None if accept is None else list(accept))
            self.results = BackendSource(backend)
        self._reset_after_fork()

    @property
    def rpc(self) -> bool:
        """True when results come back over the broker (``rpc://``, the default)."""
        return self.results is self

    def _reset_after_fork(self) -> None:
        self._pid = os.getpid()
        self.oid = str(uuid.uuid4())  # the result queue's name, our reply_to
        self._io = threading.Lock()
        self._wanting_io = 0  # publishers waiting for _io; result readers step aside
        self._cond = threading.Condition()
        self._states: dict[str, ResultMeta] = {}
        self._conn: Connection | None = None
        self._pub: Channel | None = None
        self._res: Channel | None = None
        self._declared: set[str] = set()
        self._consuming = False

    def _check_fork(self) -> None:
        if os.getpid() != self._pid:
            # The parent's socket is shared: never close it from here, just forget it.
            self._reset_after_fork()

    def __repr__(self) -> str:
        return f"<Client {self.settings.redacted()} oid={self.oid}>"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ connection

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self._check_fork()
        with self._cond:
            self._wanting_io += 1
        try:
            self._io.acquire()
        finally:
            with self._cond:
                self._wanting_io -= 1
        try:
            yield
        finally:
            self._io.release()
            with self._cond:
                self._cond.notify_all()  # result readers waiting for the connection

    def _connection(self) -> Connection:
        """The open connection (connecting if needed). Call with ``_io`` held."""
        if self._conn is not None and self._conn.is_open:
            # Read what the broker sent meanwhile: a Connection.Close waiting in the socket
            # (broker restart, forced close) must fail here, not swallow our next publish.
            self._conn.process_events(0)
            return self._conn
        self._drop_connection()
        from amqptool.transport import Connection  # pika only when really connecting

        hb = None if any(ep.heartbeat is not None for ep in self.settings.endpoints) else 0
        conn = Connection(self.settings, heartbeat=hb, name="amqptool-client")
        conn.connect()
        self._conn = conn
        log.debug("connected to %s", conn.endpoint.redacted())
        return conn

    def _publisher(self) -> Channel:
        conn = self._connection()
        if self._pub is None or not self._pub.is_open:
            self._pub = conn.channel()
        return self._pub

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        self._pub = self._res = None
        self._declared.clear()
        self._consuming = False
        if conn is not None:
            conn.close()

    def _ensure_result_queue(self) -> None:
        """Declare and consume our result queue (once per connection). ``_io`` held."""
        if self._consuming and self._res is not None and self._res.is_open:
            return
        conn = self._connection()
        ch = conn.channel()
        ch.queue_declare(
            self.oid,
            durable=True,
            auto_delete=True,
            arguments={"x-expires": RESULT_EXPIRES_MS},
        )
        ch.consume(self.oid, self._on_result, no_ack=True)
        self._res = ch
        self._consuming = True

    def _declare_task_queue(self, queue: str) -> None:
        """Declare ``queue`` as Celery does: direct exchange and durable queue, both ``queue``.

        A queue that already exists with other arguments (406) is used as it is.
        """
        if queue in self._declared:
            return
        ch = self._publisher()
        try:
            ch.exchange_declare(queue, "direct", durable=True)
            ch.queue_declare(queue, durable=True)
            ch.queue_bind(queue, queue, queue)
        except ChannelClosedError as exc:
            if exc.reply_code != 406:
                self._pub = None
                raise
            log.debug("queue %r exists with other flags; publishing to it as it is", queue)
            self._pub = None
        self._declared.add(queue)

    def _retrying(self, what: str, op: Callable[[], T], *, retry: bool, policy: RetryPolicy) -> T:
        """Run ``op`` with the connection locked; on connection failure reconnect and rerun."""
        attempt = 0
        while True:
            try:
                with self._locked():
                    return op()
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

    # ------------------------------------------------------------------ sending

    def send_task(
        self,
        name: str,
        args: Sequence[Any] | None = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        task_id: str | None = None,
        countdown: float | None = None,
        eta: When | None = None,
        expires: When | None = None,
        queue: str | None = None,
        priority: int | None = None,
        link: Any = None,
        link_error: Any = None,
        headers: Mapping[str, Any] | None = None,
        shadow: str | None = None,
        serializer: str = "json",
        compression: str | None = None,
        time_limit: float | None = None,
        soft_time_limit: float | None = None,
        ignore_result: bool = False,
        retry: bool = True,
        retry_policy: Mapping[str, Any] | None = None,
        parent_id: str | None = None,
        root_id: str | None = None,
    ) -> AsyncResult:
        """Publish one task by name; returns its :class:`AsyncResult`.

        Celery 5.7's defaults: protocol v2, JSON, default exchange with routing key = ``queue``
        (declared first as Celery does), ``reply_to`` = this client's result queue, persistent.
        ``countdown`` becomes an absolute ``eta``, numeric ``expires`` an absolute time (and a
        message TTL). On connection failure it reconnects and republishes per ``retry_policy``
        (3 retries, 0 / 0.2 / 0.2 s), then raises :class:`ConnectionFailedError`.
        With ``ignore_result`` the result's ``get()`` returns None at once.
        """
        self._check_fork()
        msg = build_message(
            name,
            args,
            kwargs,
            task_id=task_id,
            countdown=countdown,
            eta=eta,
            expires=expires,
            priority=priority,
            link=link,
            link_error=link_error,
            headers=headers,
            shadow=shadow,
            time_limit=time_limit,
            soft_time_limit=soft_time_limit,
            ignore_result=ignore_result,
            parent_id=parent_id,
            root_id=root_id,
            reply_to=self.oid,
        )
        self._publish_all(
            [(msg, queue or self.default_queue)],
            serializer=serializer,
            compression=compression,
            want_results=not ignore_result and self.rpc,
            retry=retry,
            policy=RetryPolicy.from_mapping(retry_policy),
        )
        return AsyncResult(msg.id, self.results, ignored=ignore_result, app=self)

    def _publish_all(
        self,
        items: Sequence[tuple[TaskMessage, str]],
        *,
        serializer: str,
        compression: str | None,
        want_results: bool,
        retry: bool,
        policy: RetryPolicy,
    ) -> None:
        """Publish messages in order; a retry resumes where the failure happened."""
        envelopes = [
            encode_task(msg, serializer=serializer, compression=compression, routing_key=queue)
            for msg, queue in items
        ]
        sent = 0

        def op() -> None:
            nonlocal sent
            if want_results:
                self._ensure_result_queue()
            for env in envelopes[sent:]:
                self._declare_task_queue(env.routing_key)
                self._publisher().publish(env)
                sent += 1

        what = f"publish task {items[0][0].task!r}" if len(items) == 1 else "publish group"
        self._retrying(what, op, retry=retry, policy=policy)

    def publish(self, items: Sequence[tuple[TaskMessage, str]], serializer: str = "json") -> None:
        """Publish ready-made task messages, each to its queue (canvas; retried as send_task)."""
        self._publish_all(
            items,
            serializer=serializer,
            compression=None,
            want_results=self.rpc,
            retry=True,
            policy=RetryPolicy(),
        )

    def signature(
        self,
        name: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        immutable: bool = False,
        **options: Any,
    ) -> Signature:
        """A signature sent through this client (``delay``, ``apply_async``, ``|``...)."""
        return Signature(name, args, kwargs, options, immutable=immutable, app=self)

    def group(
        self,
        calls: Iterable[Any],
        *,
        group_id: str | None = None,
        queue: str | None = None,
        serializer: str = "json",
        compression: str | None = None,
        retry: bool = True,
        retry_policy: Mapping[str, Any] | None = None,
    ) -> GroupResult:
        """Send several tasks together; join() gives their results in call order.

        Each call is a signature dict (see :func:`signature`; its ``options`` may hold
        ``queue``, ``countdown``, ``eta``, ``expires``, ``priority``, ``task_id``...), or a
        tuple ``(name, args[, kwargs[, options]])``. Members carry the ``group`` id and their
        ``group_index`` as a Celery group does.
        """
        self._check_fork()
        gid = group_id or str(uuid.uuid4())
        items = group_messages(calls, gid, queue or self.default_queue, self.oid)
        if not items:
            return GroupResult(gid, [], self.results)
        self._publish_all(
            items,
            serializer=serializer,
            compression=compression,
            want_results=self.rpc,
            retry=retry,
            policy=RetryPolicy.from_mapping(retry_policy),
        )
        members = [AsyncResult(m.id, self.results, app=self) for m, _ in items]
        return GroupResult(gid, members, self.results)

    # ------------------------------------------------------------------ results

    def AsyncResult(self, task_id: str) -> AsyncResult:  # Celery's method name
        """A handle on a task by id: with a stored backend any task, with rpc:// our own."""
        return AsyncResult(task_id, self.results, app=self)

    def GroupResult(self, group_id: str) -> GroupResult | None:  # Celery's restore by id
        """The group saved under ``group_id`` with ``GroupResult.save()`` (None if unknown)."""
        return GroupResult.restore(group_id, self.results, app=self)

    def revoke(self, task_id: str, *, terminate: bool = False, signal: str = "SIGTERM") -> None:
        """Broadcast ``revoke`` for ``task_id`` to every worker (as ``AsyncResult.revoke``)."""
        from amqptool.control.client import ControlClient

        with ControlClient(self.settings) as control:
            control.cast("revoke", {"task_id": task_id, "terminate": terminate, "signal": signal})

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the connection (the result queue goes with it). Safe to call twice."""
        if os.getpid() != self._pid:
            self._reset_after_fork()
            return
        with self._io:
            self._drop_connection()
        if isinstance(self.results, BackendSource):
            self.results.close()


_default_lock = threading.Lock()
_default: Client | None = None


def default_client() -> Client:
    """The process-wide client, from ``$AMQP_URL`` / ``$CELERY_BROKER_URL`` (made on first use).

    It survives forks (a child gets its own connection and result queue) and is closed at
    interpreter exit.
    """
    global _default
    with _default_lock:
        if _default is None:
            import atexit

            _default = Client()
            atexit.register(_close_default)
        return _default


def _close_default() -> None:
    client = _default
    if client is not None:
        with suppress(AmqpToolError):
            client.close()
