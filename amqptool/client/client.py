"""The task client: publishes Celery protocol v2 messages and reads ``rpc://`` results.

Threads. One :class:`Client` owns one pika connection with two channels (publish/declare, and
the result consumer). pika connections are not thread-safe, so every use of it happens under
one lock (``_io``): publishing takes it blocking; a thread waiting for a result takes it only
when free, reads for at most :data:`DRAIN_SLICE` seconds (pika returns as soon as a message is
in), and otherwise waits on a condition that the result callback notifies. A publisher never
waits more than one slice, and waiting threads never block each other: whoever drains stores
every result it reads in a dict keyed by task id, so any number of results may be outstanding.

With ``confirm="pipelined"`` a writer thread of the client puts the messages that
``send_task`` left queued on the wire within milliseconds when no call follows
(:mod:`amqptool.client.sending`).

Heartbeats. A client is idle most of the time and pika only answers heartbeats while somebody
reads, so the connection asks for none (heartbeat 0) unless the URL sets ``?heartbeat=N``;
otherwise the broker would drop an idle client, and with it the auto-delete result queue.

Forks. A client used in a forked child drops (without closing) the parent's connection and
starts over with a new result queue.
"""

from __future__ import annotations

import functools
import logging
import os
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from amqptool.backends.urls import backend_from_url, is_rpc
from amqptool.celeryconf.routing import Destination, Router
from amqptool.celeryconf.table import milliseconds
from amqptool.client.calls import task_messages
from amqptool.client.link import RESULT_EXPIRES_MS
from amqptool.client.options import RetryPolicy, When, build_message
from amqptool.client.result import (
    AsyncResult,
    GroupResult,
    ResultMeta,
    ResultSource,
    result_from_message,
)
from amqptool.client.sending import CONFIRM_WINDOW, Sender, check_confirm_mode
from amqptool.client.signature import Signature
from amqptool.client.stored import BackendSource
from amqptool.codec.envelope import Envelope
from amqptool.codec.serialization import normalize_accept
from amqptool.codec.tasks import TaskMessage, encode_task
from amqptool.errors import (
    AmqpToolError,
    AuthenticationError,
    ConnectionFailedError,
    TaskTimeoutError,
    UsageError,
)
from amqptool.settings import BrokerSettings

if TYPE_CHECKING:
    from amqptool.backends import Backend

__all__ = ["CONFIRM_WINDOW", "PUBLISH_TIMEOUT", "RESULT_EXPIRES_MS", "Client"]

log = logging.getLogger("amqptool.client")
log.addHandler(logging.NullHandler())  # a library: retry warnings go where the app logs

DRAIN_SLICE = 0.1  # longest a result reader holds the connection at a time
MAX_KEPT_STATES = 100_000  # results never asked for are dropped oldest first past this
RESULT_ACCEPT = normalize_accept(["json", "msgpack", "yaml"])
PUBLISH_TIMEOUT = 30.0  # default longest wait for the broker's confirms (s)


class Client(Sender):
    """Send Celery tasks by name and wait for their results (``rpc://``).

    ``settings`` (or ``url``; neither: ``$AMQP_URL`` / ``$CELERY_BROKER_URL`` / localhost).
    Nothing connects until the first send or result read. ``close()`` (or ``with``) ends the
    connection; using the client again reconnects. ``config``: Celery's settings
    (``task_routes``, ``task_queues``...): messages are routed as Celery's router routes them.

    ``confirm``: ``"each"`` (default) makes ``send_task`` return once the broker confirmed its
    message; ``"pipelined"`` returns at once and keeps up to :data:`CONFIRM_WINDOW` messages
    unconfirmed; what the broker refuses then raises at the next ``send_task``, at
    :meth:`flush`, at ``close()`` or at the task's ``AsyncResult.get()`` (see
    :mod:`amqptool.client.sending`); end with :meth:`flush` or ``close()``. ``send_many``,
    ``group`` and canvases always return confirmed.
    """

    def __init__(
        self,
        settings: BrokerSettings | None = None,
        *,
        url: str | None = None,
        accept: Iterable[str] | None = None,
        publish_timeout: float | None = PUBLISH_TIMEOUT,
        config: Mapping[str, Any] | None = None,
        backend: str | Backend | None = None,
        default_queue: str | None = None,
        confirm: str = "each",
    ) -> None:
        if settings is not None and url is not None:
            raise UsageError("give settings or url, not both")
        self.confirm = check_confirm_mode(confirm)
        self.router = Router(config, default_queue=default_queue)
        expires = (config or {}).get("result_expires")  # the result queue's x-expires
        self.result_expires_ms = milliseconds(expires, RESULT_EXPIRES_MS)
        self.settings = settings if settings is not None else BrokerSettings.from_url(url)
        self._accept = normalize_accept(accept) if accept is not None else RESULT_ACCEPT
        self.publish_timeout = publish_timeout
        self.default_queue = self.router.default_queue
        self.results: ResultSource = self
        if backend is not None and not (isinstance(backend, str) and is_rpc(backend)):
            if isinstance(backend, str):
                backend = backend_from_url(backend, accept=None if accept is None else list(accept))
            self.results = BackendSource(backend)
        self._reset_after_fork()

    def __repr__(self) -> str:
        return f"<Client {self.settings.redacted()} oid={self.oid}>"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
        exchange: str | None = None,
        routing_key: str | None = None,
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

        Celery 5.7's defaults: protocol v2, JSON, routed as Celery routes it (``queue``,
        ``exchange``, ``routing_key`` over ``task_routes`` over the default queue; a direct
        queue is published to the default exchange with its name as the key, declared first),
        ``reply_to`` = this client's result queue, persistent.
        ``countdown`` becomes an absolute ``eta``, numeric ``expires`` an absolute time (and a
        message TTL). On connection failure it reconnects and republishes per ``retry_policy``
        (3 retries, 0 / 0.2 / 0.2 s), then raises :class:`ConnectionFailedError`.
        With ``ignore_result`` the result's ``get()`` returns None at once.

        Returns once the broker confirmed the message, or with ``confirm="pipelined"`` at once
        (the result's ``get()`` waits for the confirm first; :meth:`flush` waits for all). A
        call that raises sent nothing of its own.
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
        dest = self.router.route(
            name, msg.args, msg.kwargs, queue=queue, exchange=exchange, routing_key=routing_key
        )
        want_results = not ignore_result and self.rpc
        if self.confirm == "pipelined":
            env = encode_task(msg, serializer=serializer, compression=compression, **dest.target)
            item = self._send_pipelined(
                msg,
                dest,
                env,
                want_results=want_results,
                retry=retry,
                policy=RetryPolicy.from_mapping(retry_policy),
            )
            sent = functools.partial(self._confirm_sent, item)
            return AsyncResult(msg.id, self.results, ignored=ignore_result, app=self, sent=sent)
        self._publish_all(
            [(msg, dest)],
            serializer=serializer,
            compression=compression,
            want_results=want_results,
            retry=retry,
            policy=RetryPolicy.from_mapping(retry_policy),
        )
        return AsyncResult(msg.id, self.results, ignored=ignore_result, app=self)

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
        items = self._routed(task_messages(calls, queue, reply_to=self.oid, group=gid))
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

    def send_many(
        self,
        calls: Iterable[Any],
        *,
        queue: str | None = None,
        serializer: str = "json",
        compression: str | None = None,
        retry: bool = True,
        retry_policy: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> list[AsyncResult]:
        """Send many tasks at once: many in flight, one wait for the broker's confirms.

        ``calls`` as for :meth:`group` (no group id is added). Returns when every message is
        confirmed; ``timeout`` bounds each wait for confirms (default: the client's
        ``publish_timeout``). Much faster than a loop of :meth:`send_task`, which waits for
        each confirm in turn.
        """
        self._check_fork()
        items = self._routed(task_messages(calls, queue, reply_to=self.oid, group=None))
        if items:
            self._publish_all(
                items,
                serializer=serializer,
                compression=compression,
                want_results=self.rpc,
                retry=retry,
                policy=RetryPolicy.from_mapping(retry_policy),
                timeout=timeout,
            )
        return [AsyncResult(m.id, self.results, app=self) for m, _ in items]

    def _routed(
        self, items: Sequence[tuple[TaskMessage, str | None]]
    ) -> list[tuple[TaskMessage, Destination]]:
        return [(m, self.router.route(m.task, m.args, m.kwargs, queue=q)) for m, q in items]

    # ------------------------------------------------------------------ results

    def publish(
        self, items: Sequence[tuple[TaskMessage, str | None]], serializer: str = "json"
    ) -> None:
        """Publish ready-made task messages, each to its queue (None: where the router says;
        canvas; retried as send_task)."""
        self._publish_all(
            self._routed(items),
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

    def GroupResult(self, group_id: str) -> GroupResult | None:  # Celery's restore by id
        """The group saved under ``group_id`` with ``GroupResult.save()`` (None if unknown)."""
        return GroupResult.restore(group_id, self.results, app=self)

    def revoke(self, task_id: str, *, terminate: bool = False, signal: str = "SIGTERM") -> None:
        """Broadcast ``revoke`` for ``task_id`` to every worker (as ``AsyncResult.revoke``)."""
        from amqptool.control.client import ControlClient

        with ControlClient(self.settings) as control:
            control.cast("revoke", {"task_id": task_id, "terminate": terminate, "signal": signal})

    def AsyncResult(self, task_id: str) -> AsyncResult:  # Celery's method name
        """A handle on a task by id: with a stored backend any task, with rpc:// our own."""
        return AsyncResult(task_id, self.results, app=self, sent=self._sent_hook(task_id))

    def _on_result(self, env: Envelope) -> None:
        """Result consumer callback (runs in whichever thread drains). Never raises."""
        meta = result_from_message(env, self._accept, log)
        if meta is None:
            return
        with self._cond:
            old = self._states.get(meta.task_id)
            # A late intermediate state (STARTED after SUCCESS) never hides the final one.
            if old is None or not old.ready or meta.ready:
                self._states.pop(meta.task_id, None)
                self._states[meta.task_id] = meta
            while len(self._states) > MAX_KEPT_STATES:
                dropped = next(iter(self._states))
                del self._states[dropped]
                log.debug("dropped the kept result of %s (too many unread results)", dropped)
            self._cond.notify_all()

    def _ready_meta(self, task_id: str) -> ResultMeta | None:
        meta = self._states.get(task_id)
        return meta if meta is not None and meta.ready else None

    def _drain(self, limit: float, failures: list[int]) -> None:
        """Read result messages for up to ``limit`` s, or wait for the thread that does.

        A lost connection is reopened on the next call; more than the default retry policy's
        number of failures in a row raises :class:`ConnectionFailedError`.
        """
        self._check_fork()
        if self._wanting_io or not self._io.acquire(blocking=False):
            with self._cond:
                self._readers_waiting += 1
                try:
                    self._cond.wait(min(limit, 0.05))
                finally:
                    self._readers_waiting -= 1
            return
        lost: ConnectionFailedError | None = None
        try:
            self._ensure_result_queue()
            assert self._conn is not None
            self._conn.process_events(limit)
            failures[0] = 0
        except ConnectionFailedError as exc:
            self._drop_connection()
            if isinstance(exc, AuthenticationError):
                raise
            lost = exc
        finally:
            self._io.release()
        if lost is None:
            return
        failures[0] += 1
        policy = RetryPolicy()
        if policy.max_retries is not None and failures[0] > policy.max_retries:
            raise ConnectionFailedError(
                f"lost the broker while waiting for results: {lost.message}", hint=lost.hint
            ) from lost
        log.warning("lost the broker while waiting for results (%s); reconnecting", lost.message)
        time.sleep(policy.interval(failures[0]))

    def wait_for(self, task_id: str, timeout: float | None) -> ResultMeta:
        """Block until ``task_id`` reaches SUCCESS, FAILURE or REVOKED."""
        if timeout is not None and timeout < 0:
            timeout = 0
        deadline = None if timeout is None else time.monotonic() + timeout
        failures = [0]
        while True:
            with self._cond:
                meta = self._ready_meta(task_id)
            if meta is not None:
                return meta
            remaining = DRAIN_SLICE if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                with self._cond:
                    last = self._states.get(task_id)
                state = last.status if last is not None else "PENDING"
                raise TaskTimeoutError(
                    f"task {task_id} did not finish within {timeout:g}s (state: {state})"
                )
            self._drain(min(remaining, DRAIN_SLICE), failures)

    def peek(self, task_id: str) -> ResultMeta | None:
        """The latest state of ``task_id``, after reading whatever results have arrived."""
        with self._cond:
            meta = self._states.get(task_id)
        if meta is None or not meta.ready:
            self._poll()
            with self._cond:
                meta = self._states.get(task_id)
        return meta

    def _poll(self) -> None:
        """Read what has already arrived, without waiting (skipped if another thread reads)."""
        self._check_fork()
        if not self._io.acquire(blocking=False):
            return
        try:
            self._ensure_result_queue()
            assert self._conn is not None
            self._conn.process_events(0)
        except AmqpToolError as exc:
            self._drop_connection()
            log.debug("polling results failed: %s", exc)
        finally:
            self._io.release()

    def forget(self, task_id: str) -> None:
        with self._cond:
            self._states.pop(task_id, None)

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the connection (the result queue goes with it). Safe to call twice.

        With ``confirm="pipelined"`` it first waits for the messages still unconfirmed (as
        :meth:`flush`) and, after closing, raises what the broker refused or left unconfirmed.
        """
        if os.getpid() != self._pid:
            self._reset_after_fork()
            return
        error = self._settle_on_close()
        self._stop_writer()
        with self._io:
            self._drop_connection()
            self._window = None
        if isinstance(self.results, BackendSource):
            self.results.close()
        if error is not None:
            raise error
