"""Batched result writes: pool threads hand finished results to one writer thread per process.

Storing a result in Redis costs two round trips (a ``GET``, as Celery does, so a stored SUCCESS
is never overwritten; then ``SETEX`` + ``PUBLISH`` in one ``MULTI``/``EXEC``). Done from each
pool thread, that is two round trips per task and, with ``-P threads``, several threads fighting
over the GIL for the Redis socket work. Here a pool thread only queues the document
(:meth:`ResultWriter.put`) and goes on to its next task; the writer takes everything queued so
far and stores it with :meth:`~amqptool.backends.base.Backend.store_many` (Redis: one ``MGET``
and one script doing ``SETEX`` + ``PUBLISH`` for each, per batch: the same keys, encodings,
expiry and channels as one store per task).

**Nothing is acked before its result is stored.** A pool thread reports a job ``Done`` only
through :meth:`ResultWriter.after`: the report is sent once everything queued before it was
stored (or given up), so the broker thread's ack of an ``acks_late`` task, its callbacks and a
chord body it completes all come after the result is in the backend, as before. The queue is
one FIFO, so a task's states (``PROGRESS`` then ``SUCCESS``) are stored in order.

**Failures are what they were.** A batch whose backend is unreachable is retried like one
result (:func:`~amqptool.backends.base.retrying`: warnings naming the task ids); a result that
still cannot be stored is logged as an error with its task id (``NOT stored``) and its job is
then reported done, exactly as a store from the pool thread did. Meanwhile a pool thread with
a result to queue waits (:meth:`ResultWriter.put`), as it waited storing it itself, so tasks do
not run on through an outage only to lose their results.

A chord header task waits for its own result to be stored before it reports to the chord
(:meth:`~worker.pool.results.ResultStore.flush`), and a pool thread reading a result waits for
what it queued: the order Celery's synchronous stores give.

Only backends that store a batch for less than its parts (``Backend.batches``: Redis) go
through the writer; SQL stores stay in the pool thread, unchanged. Prefork children store
directly too (a child runs one task at a time). The writer is made again after a fork.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from amqptool.backends import retrying
from amqptool.codec.times import format_iso, utcnow
from amqptool.errors import AmqpToolError, ConnectionFailedError

if TYPE_CHECKING:
    from worker.pool.results import ResultStore

__all__ = ["MAX_BATCH", "MAX_PENDING", "ResultWriter", "defer_here", "deferring", "writer"]

log = logging.getLogger("worker.pool.results")

MAX_BATCH = 500  # documents stored per round trip pair, at most
MAX_PENDING = 5000  # documents queued before a pool thread waits for the writer (back-pressure)

_Item = tuple["ResultStore", Mapping[str, Any]] | Callable[[], None]


class ResultWriter:
    """A FIFO of documents and callbacks, served by one daemon thread."""

    def __init__(self, max_batch: int = MAX_BATCH, max_pending: int = MAX_PENDING) -> None:
        self.max_batch = max_batch
        self.max_pending = max_pending
        self._items: deque[_Item] = deque()
        self._cond = threading.Condition(threading.Lock())
        self._unstored = 0  # documents queued or being stored
        self._in_hand = 0  # items (documents, callbacks) the writer took and has not finished
        self._failing = False  # the backend refused the batch in hand: it is being retried
        self._thread: threading.Thread | None = None

    def put(self, store: ResultStore, doc: Mapping[str, Any]) -> None:
        """Queue ``doc`` for ``store``; waits while ``max_pending`` documents are unstored, and
        while the backend is unreachable (as a pool thread storing itself waited: tasks do not
        run on, and their results pile up, while the backend is away)."""
        with self._cond:
            while self._unstored >= self.max_pending or self._failing:
                self._cond.wait()
            self._items.append((store, doc))
            self._unstored += 1
            self._start()
            self._cond.notify_all()

    def after(self, callback: Callable[[], None]) -> bool:
        """Run ``callback`` (on the writer) once all documents queued so far are handled.

        False when nothing is unstored: the caller runs it now, on its own thread."""
        with self._cond:
            if not self._unstored:
                return False
            self._items.append(callback)
            self._cond.notify_all()
            return True

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every queued document and callback is handled (False after ``timeout``)."""
        with self._cond:
            return self._cond.wait_for(lambda: not (self._items or self._in_hand), timeout)

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="result-writer", daemon=True)
            self._thread.start()

    def _set_failing(self, failing: bool) -> None:
        with self._cond:
            self._failing = failing
            self._cond.notify_all()

    def _take(self) -> list[_Item]:
        with self._cond:
            while not self._items:
                self._cond.wait()
            batch: list[_Item] = []
            docs = 0
            while self._items and docs < self.max_batch:
                item = self._items.popleft()
                batch.append(item)
                docs += isinstance(item, tuple)
            self._in_hand = len(batch)
            return batch

    def _loop(self) -> None:
        while True:
            batch = self._take()
            docs = [item for item in batch if isinstance(item, tuple)]
            try:
                _store_all(docs, self._set_failing)
            except BaseException:  # a bug of ours: never leave a job undone for it
                log.exception("result writer: storing %d results failed", len(docs))
            with self._cond:
                self._unstored -= len(docs)
                self._failing = False
                self._cond.notify_all()
            for item in batch:
                if not isinstance(item, tuple):
                    try:
                        item()
                    except BaseException:
                        log.exception("result writer: a done callback failed")
            with self._cond:
                self._in_hand = 0
                self._cond.notify_all()


def _store_all(
    docs: list[tuple[ResultStore, Mapping[str, Any]]], failing: Callable[[bool], None]
) -> None:
    """Store each store's documents in one batch, in the order they were queued."""
    by_store: dict[int, tuple[ResultStore, list[Mapping[str, Any]]]] = {}
    for store, doc in docs:
        by_store.setdefault(id(store), (store, []))[1].append(doc)
    for store, group in by_store.values():
        store_batch(store, group, failing)


def store_batch(
    store: ResultStore,
    docs: list[Mapping[str, Any]],
    failing: Callable[[bool], None] = lambda _: None,
) -> None:
    """Store ``docs`` (retrying the batch); each one not stored is logged with its task id.
    ``failing(True)`` is called when an attempt could not reach the backend."""
    ids = [str(d.get("task_id")) for d in docs]
    shown = ", ".join(ids[:20]) + (f" and {len(ids) - 20} more" if len(ids) > 20 else "")
    if len(docs) == 1:
        what = f"task {shown}: store {docs[0].get('status')}"
    else:
        what = f"store {len(docs)} results (tasks {shown})"
    # date_done is when the backend stores the result (as Celery sets it in store_result):
    # stamped now, not when the task returned, so a batch never looks done before it was.
    stamp = format_iso(utcnow())
    docs = [dict(d, date_done=stamp) if d.get("date_done") else d for d in docs]
    backend = store.backend
    failed: list[tuple[Mapping[str, Any], Exception]]

    def attempt() -> list[tuple[Mapping[str, Any], AmqpToolError]]:
        try:
            return backend.store_many(docs)
        except ConnectionFailedError:
            failing(True)
            raise

    try:
        failed = list(retrying(what, attempt))
    except AmqpToolError as exc:
        failed = [(doc, exc) for doc in docs]
    except Exception as exc:  # the backend's own error (a full Redis...): logged as lost, too
        log.exception("%s failed", what)
        failed = [(doc, exc) for doc in docs]
    for doc, why in failed:
        log.error(
            "task %s: result %s NOT stored in %s: %s",
            doc.get("task_id"),
            doc.get("status"),
            backend.redacted_url(),
            why,
        )


_local = threading.local()
_lock = threading.Lock()
_writer: tuple[int, ResultWriter] | None = None


def writer() -> ResultWriter:
    """This process's writer (a new one after a fork: the parent's thread is not ours)."""
    global _writer
    pid = os.getpid()
    current = _writer
    if current is not None and current[0] == pid:
        return current[1]
    with _lock:
        if _writer is None or _writer[0] != pid:
            _writer = (pid, ResultWriter())
        return _writer[1]


def defer_here() -> None:
    """Results stored from this thread go through the writer (pool threads call it)."""
    _local.deferred = True


def deferring() -> bool:
    return bool(getattr(_local, "deferred", False))
