"""The ``rpc://`` side of :class:`~amqptool.client.Client`: reading result messages.

Results arrive on the client's own result queue; whichever thread drains the connection stores
every state it reads in a dict keyed by task id and wakes the threads waiting (see the
:mod:`amqptool.client.client` docstring for the locking).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

from amqptool.client.options import RetryPolicy
from amqptool.client.result import ResultMeta
from amqptool.codec.envelope import Envelope
from amqptool.codec.serialization import decompress, loads
from amqptool.errors import (
    AmqpToolError,
    AuthenticationError,
    ConnectionFailedError,
    DecodeError,
    TaskTimeoutError,
)

if TYPE_CHECKING:
    from amqptool.transport import Connection

__all__ = ["DRAIN_SLICE", "MAX_KEPT_STATES", "RpcResults"]

log = logging.getLogger("amqptool.client")

DRAIN_SLICE = 0.1  # longest a result reader holds the connection at a time
MAX_KEPT_STATES = 100_000  # results never asked for are dropped oldest first past this


class RpcResults:
    """Result-message reading for the client (a mixin: the client owns the connection)."""

    _accept: Collection[str]
    _cond: threading.Condition
    _io: threading.Lock
    _wanting_io: int
    _states: dict[str, ResultMeta]
    _conn: Connection | None

    def _check_fork(self) -> None:
        raise NotImplementedError

    def _ensure_result_queue(self) -> None:
        raise NotImplementedError

    def _drop_connection(self) -> None:
        raise NotImplementedError

    def _on_result(self, env: Envelope) -> None:
        """Result consumer callback (runs in whichever thread drains). Never raises."""
        try:
            body_bytes = env.body
            comp = env.headers.get("compression") if env.headers else None
            if isinstance(comp, str) and comp:
                body_bytes = decompress(body_bytes, comp)
            body = loads(
                body_bytes,
                env.properties.content_type,
                env.properties.content_encoding,
                accept=self._accept,
            )
        except DecodeError as exc:
            log.warning("ignoring a result message that does not decode: %s", exc)
            return
        if not isinstance(body, Mapping):
            log.warning("ignoring a result message whose body is not an object")
            return
        meta = ResultMeta.from_body(body, fallback_id=env.properties.correlation_id)
        if not meta.task_id:
            log.warning("ignoring a result message with no task_id nor correlation_id")
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
                self._cond.wait(min(limit, 0.05))
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
