"""Storing task results in the worker's result backend (Redis or SQL), from the pool.

The worker's ``--result-backend URL`` reaches each pool thread or process inside the
:class:`~worker.execute.Job`; :func:`store_for` gives that process's :class:`ResultStore` for the
URL (one backend connection pool per process, made again after a fork). ``rpc://`` (or no URL)
means results are messages to the caller's reply queue, as before: no store.

A backend that goes away is retried (:data:`~amqptool.backends.base.STORE_RETRIES` times with a
growing pause); a result that still cannot be stored is logged as an error with the task id,
never dropped silently.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

from amqptool.backends import Backend, ChordPart, backend_from_url, is_rpc, retrying
from amqptool.backends.meta import DEFAULT_EXPIRES
from amqptool.errors import AmqpToolError
from worker.pool.result_writer import deferring, writer

__all__ = ["ResultStore", "check_backend", "store_for"]

log = logging.getLogger("worker.pool.results")


class ResultStore:
    """One process's handle on a result backend."""

    def __init__(self, url: str, expires: float | None = DEFAULT_EXPIRES) -> None:
        self.url = url
        self.expires = expires
        self._backend: Backend | None = None
        self._pid = os.getpid()

    @property
    def backend(self) -> Backend:
        if self._backend is None or self._pid != os.getpid():
            self._pid = os.getpid()
            self._backend = backend_from_url(self.url, expires=self.expires)
        return self._backend

    @property
    def native_chords(self) -> bool:
        return self.backend.native_chords

    def store(self, doc: Mapping[str, Any]) -> bool:
        """Store a result document (retrying); False (and an error logged) if it was lost.

        From a pool thread, with a backend that batches (Redis), the document is queued for
        this process's writer instead (:mod:`worker.pool.result_writer`; True)."""
        if deferring() and self.backend.batches:
            writer().put(self, doc)
            return True
        task_id = doc.get("task_id")
        try:
            retrying(f"task {task_id}: store {doc.get('status')}", lambda: self.backend.store(doc))
        except AmqpToolError as exc:
            log.error(
                "task %s: result %s NOT stored in %s: %s",
                task_id,
                doc.get("status"),
                self.backend.redacted_url(),
                exc,
            )
            return False
        return True

    def flush(self) -> None:
        """From a pool thread: wait until what it queued for the writer is stored."""
        if deferring():
            stored = threading.Event()
            if writer().after(stored.set):
                stored.wait()

    def get(self, task_id: str) -> dict[str, Any]:
        self.flush()  # a pool thread reads what it queued
        return retrying(f"task {task_id}: read", lambda: self.backend.get(task_id))

    def chord_part(
        self, group_id: str, task_id: str, index: int | None, state: str, result: Any
    ) -> ChordPart | None:
        """Report a chord header task; the part when this task completed the chord.

        Its own result is stored first (as Celery's ``on_chord_part_return`` follows the
        store), so whoever completes the chord finds every header result stored."""
        self.flush()
        try:
            part = retrying(
                f"chord {group_id}",
                lambda: self.backend.chord_part_return(group_id, task_id, index, state, result),
            )
        except AmqpToolError as exc:
            log.error("chord %s: task %s could not report to the chord: %s", group_id, task_id, exc)
            return None
        return part if part.complete else None

    def chord_done(self, group_id: str, part: ChordPart) -> None:
        try:
            self.backend.chord_done(group_id, part)
        except AmqpToolError as exc:
            log.warning("chord %s: cleanup failed (its keys expire): %s", group_id, exc)


_lock = threading.Lock()
_stores: dict[tuple[str, float | None], ResultStore] = {}


def store_for(url: str | None, expires: float | None = DEFAULT_EXPIRES) -> ResultStore | None:
    """The store for ``url`` in this process (None for ``rpc://`` or no URL)."""
    if url is None or is_rpc(url):
        return None
    key = (url, expires)
    with _lock:
        store = _stores.get(key)
        if store is None:
            store = _stores[key] = ResultStore(url, expires)
        return store


def check_backend(url: str | None, expires: float | None = DEFAULT_EXPIRES) -> None:
    """At worker start: UsageError for a bad URL, ConnectionFailedError if unreachable."""
    if url is None or is_rpc(url):
        return
    backend = backend_from_url(url, expires=expires)
    try:
        backend.check()
    finally:
        backend.close()
