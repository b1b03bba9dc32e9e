"""What every result backend offers, and the retry rule for storing.

A backend stores result documents (:mod:`amqptool.backends.meta`) by task id, saves groups by
group id, and reads both back for any process. Backends without a native chord counter
(``native_chords = False``) are joined by polling (``celery.chord_unlock``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from amqptool.backends.meta import DEFAULT_EXPIRES, Codec
from amqptool.codec.results import PENDING, READY_STATES, SUCCESS
from amqptool.errors import AmqpToolError, ConnectionFailedError, TaskTimeoutError

__all__ = ["STORE_RETRIES", "Backend", "ChordPart", "retrying"]

log = logging.getLogger("amqptool.backends")

STORE_RETRIES = 5  # attempts past the first before a result is given up (and logged)
T = TypeVar("T")


def retrying(
    what: str, op: Callable[[], T], *, retries: int = STORE_RETRIES, pause: float = 0.2
) -> T:
    """Run ``op``; on :class:`ConnectionFailedError` retry with a growing pause, then raise."""
    attempt = 0
    while True:
        try:
            return op()
        except ConnectionFailedError as exc:
            if attempt >= retries:
                raise
            attempt += 1
            wait = min(pause * 2 ** (attempt - 1), 2.0)
            log.warning("%s: %s; retry %d of %d in %.1fs", what, exc, attempt, retries, wait)
            time.sleep(wait)


class ChordPart:
    """What a header task learns when it reports to a native (Redis) chord."""

    def __init__(self, complete: bool, results: list[tuple[str, str, Any]] | None = None) -> None:
        self.complete = complete  # this task completed the chord and holds the claim
        self.results = results or []  # (task_id, state, result) in header order
        self.token: str | None = None


class Backend:
    """Base class: subclasses implement ``_set``, ``_get``, ``_delete`` and the group pair."""

    scheme = ""
    native_chords = False
    batches = False  # store_many costs less than its parts (the worker batches result writes)

    def __init__(
        self,
        url: str,
        *,
        codec: Codec | None = None,
        expires: float | None = DEFAULT_EXPIRES,
    ) -> None:
        self.url = url
        self.codec = codec or Codec()
        self.expires = expires

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.redacted_url()}>"

    def redacted_url(self) -> str:
        from amqptool.backends.urls import redact

        return redact(self.url)

    # ------------------------------------------------------------------ to implement

    def check(self) -> None:
        """Reach the backend (create tables...); ConnectionFailedError if it cannot."""
        raise NotImplementedError

    def _set(self, task_id: str, doc: dict[str, Any]) -> None:
        raise NotImplementedError

    def _get(self, task_id: str) -> dict[str, Any] | None:
        raise NotImplementedError

    def _delete(self, task_id: str) -> None:
        raise NotImplementedError

    def save_group(self, group_id: str, members: Sequence[Any]) -> None:
        """Store a group's member result tuples under its id (``GroupResult.save()``)."""
        raise NotImplementedError

    def restore_group(self, group_id: str) -> list[Any] | None:
        """The member result tuples saved for ``group_id`` (None when unknown)."""
        raise NotImplementedError

    def delete_group(self, group_id: str) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release connections (the backend reconnects on next use)."""

    # ------------------------------------------------------------------ common

    def store(self, doc: Mapping[str, Any]) -> None:
        """Store one result document; a stored SUCCESS is never overwritten (as Celery)."""
        task_id = str(doc["task_id"])
        current = self._get(task_id)
        if current is not None and current.get("status") == SUCCESS:
            return
        self._set(task_id, dict(doc))

    def store_many(
        self, docs: Sequence[Mapping[str, Any]]
    ) -> list[tuple[Mapping[str, Any], AmqpToolError]]:
        """Store documents in order, as :meth:`store` each; those that could not be stored,
        with why. :class:`ConnectionFailedError` is raised (for the whole batch) instead."""
        failed: list[tuple[Mapping[str, Any], AmqpToolError]] = []
        for doc in docs:
            try:
                self.store(doc)
            except ConnectionFailedError:
                raise
            except AmqpToolError as exc:
                failed.append((doc, exc))
        return failed

    def get(self, task_id: str) -> dict[str, Any]:
        """The stored document, or a PENDING one when nothing is stored."""
        doc = self._get(task_id)
        if doc is None:
            return {"status": PENDING, "result": None, "task_id": task_id, "children": []}
        doc.setdefault("task_id", task_id)
        return doc

    def forget(self, task_id: str) -> None:
        self._delete(task_id)

    def wait_for(
        self, task_id: str, timeout: float | None = None, interval: float = 0.1
    ) -> dict[str, Any]:
        """Poll until the task is ready; TaskTimeoutError past ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            doc = self.get(task_id)
            if doc.get("status") in READY_STATES:
                return doc
            if deadline is not None and time.monotonic() >= deadline:
                raise TaskTimeoutError(
                    f"task {task_id} did not finish within {timeout:g}s "
                    f"(state: {doc.get('status')})"
                )
            left = interval if deadline is None else min(interval, deadline - time.monotonic())
            time.sleep(max(0.0, left))

    # ------------------------------------------------------------------ chords (native only)

    def set_chord_size(self, group_id: str, size: int) -> None:
        """Prepare a native chord of ``size`` header tasks (no-op without native chords)."""

    def chord_part_return(
        self, group_id: str, task_id: str, index: int | None, state: str, result: Any
    ) -> ChordPart:
        raise NotImplementedError(f"{self.scheme}: no native chords")

    def chord_done(self, group_id: str, part: ChordPart) -> None:
        """Release a completed chord's claim and drop its counters."""
