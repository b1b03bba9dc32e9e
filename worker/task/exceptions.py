"""Exceptions a task (or the worker) raises, named like Celery's so clients re-raise their own.

The result codec reports ``NotRegistered``, ``Retry``, ``Reject``, ``Ignore``,
``MaxRetriesExceededError``, ``WorkerLostError``, ``TaskRevokedError`` and the time-limit errors
under ``celery.exceptions`` (see :mod:`amqptool.codec.results`), so a Celery client that gets
one of ours re-raises Celery's class of the same name.

::

    Exception
    ├── Retry                     raised by Task.retry(): the task was republished
    ├── Reject                    raised by a task: basic.reject the message (requeue or not)
    ├── Ignore                    raised by a task: no result, no ack change
    │   └── Replaced              raised by Task.replace(): a signature takes over the task's id
    ├── EncodeError               the result serializer cannot carry the return value (kombu's)
    ├── MaxRetriesExceededError   Task.retry() past max_retries without an exc to re-raise
    ├── WorkerLostError           the pool process running the task died
    ├── TaskRevokedError          the task was revoked or had expired
    ├── SoftTimeLimitExceeded     raised inside a task at its soft time limit (catchable)
    ├── TimeLimitExceeded         the task's hard time limit passed (its result, args[0]: limit)
    └── KeyError
        └── NotRegistered         no task of that name in this worker
    UsageError (amqptool.errors)
    └── AlreadyRegistered         two tasks under one name (raised at import time)
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from amqptool.errors import UsageError

__all__ = [
    "AlreadyRegistered",
    "EncodeError",
    "Ignore",
    "MaxRetriesExceededError",
    "NotRegistered",
    "Reject",
    "Replaced",
    "Retry",
    "SoftTimeLimitExceeded",
    "TaskRevokedError",
    "TimeLimitExceeded",
    "WorkerLostError",
]


class AlreadyRegistered(UsageError):
    """A second task tried to register under a name that is taken."""


class NotRegistered(KeyError):
    """The task name is not registered in this worker (Celery: ``celery.exceptions``)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "NotRegistered"


class Retry(Exception):
    """The task asked to be retried; the new message has already been published.

    ``exc`` is the exception that caused the retry (it becomes the RETRY result), ``when`` the
    countdown in seconds or the ETA.
    """

    def __init__(
        self,
        message: str | None = None,
        exc: BaseException | None = None,
        when: float | datetime | None = None,
    ) -> None:
        self.message = message
        self.exc = exc
        self.when = when
        super().__init__(message, exc, when)

    def humanize(self) -> str:
        if isinstance(self.when, int | float):
            return f"in {self.when:g}s"
        return f"at {self.when}"

    def __str__(self) -> str:
        if self.message:
            return self.message
        if self.exc is not None:
            return f"Retry {self.humanize()}: {self.exc!r}"
        return f"Retry {self.humanize()}"


class Reject(Exception):
    """Reject the task's message (``basic.reject``), requeueing it when ``requeue`` is true."""

    def __init__(self, reason: Any = None, requeue: bool = False) -> None:
        self.reason = reason
        self.requeue = requeue
        super().__init__(reason, requeue)


class Ignore(Exception):
    """End the task without sending a result or changing its state."""


class MaxRetriesExceededError(Exception):
    """``Task.retry()`` was called past ``max_retries`` without an exception to re-raise."""


class WorkerLostError(Exception):
    """The pool process executing the task died (signal, ``os._exit``, out of memory...)."""


class TaskRevokedError(Exception):
    """The task was revoked (``"revoked"``) or reached its ``expires`` time (``"expired"``)."""


class SoftTimeLimitExceeded(Exception):
    """Raised inside a task when its soft time limit passes; the task may catch it and clean up.

    Same name and ``str`` as billiard's (which ``celery.exceptions`` re-exports).
    """

    def __str__(self) -> str:
        return f"SoftTimeLimitExceeded{self.args}"


class TimeLimitExceeded(Exception):
    """The hard time limit (``args[0]``, seconds) passed: the task was stopped and failed."""

    def __str__(self) -> str:
        return f"TimeLimitExceeded{self.args}"


class EncodeError(Exception):
    """A task's return value the result serializer cannot carry (a ``set`` in JSON...).

    Reported under kombu's name, as a Celery worker reports it.
    """

    __amqptool_module__ = "kombu.exceptions"


class Replaced(Ignore):
    """Raised by ``Task.replace(sig)``: the pool sends ``sig`` in the task's place (same id)."""

    def __init__(self, sig: Mapping[str, Any]) -> None:
        super().__init__(f"replaced by {sig.get('task')}")
        self.sig = dict(sig)
