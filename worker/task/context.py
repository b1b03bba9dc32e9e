"""``self.request``: what a running task knows about its own message, per pool thread.

A :class:`Context` wraps the decoded :class:`~amqptool.codec.tasks.TaskMessage` lazily (its
fields are read on access, so a task that never looks pays nothing). The executor pushes one on
a thread-local stack for the duration of a call; :func:`current` reads it.
"""

from __future__ import annotations

import sys
import threading
import traceback as _traceback
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol

from amqptool.codec.envelope import Envelope
from amqptool.codec.tasks import TaskMessage, encode_task
from amqptool.codec.times import format_iso

__all__ = ["Context", "ExceptionInfo", "Sink", "current", "pop", "push"]


class Sink(Protocol):
    """Where a running task sends what must reach the broker (state updates, retries)."""

    def publish(self, env: Envelope) -> None: ...

    def event(self, event_type: str, fields: dict[str, Any]) -> None: ...


class Context:
    """The request of the running task (``self.request``), in Celery's field names."""

    def __init__(
        self,
        message: TaskMessage | None = None,
        *,
        hostname: str | None = None,
        delivery_info: dict[str, Any] | None = None,
        queue: str | None = None,
        sink: Sink | None = None,
    ) -> None:
        self.message = message
        self.hostname = hostname
        self.delivery_info = delivery_info or {}
        self.queue = queue
        self.sink = sink
        self.called_directly = message is None
        self.is_eager = False
        self.children: list[Any] = []  # result tuples of tasks this task sent
        self.result_store: Any = None  # worker.pool.results.ResultStore when results are stored

    @property
    def id(self) -> str | None:
        return None if self.message is None else self.message.id

    @property
    def task(self) -> str | None:
        return None if self.message is None else self.message.task

    @property
    def args(self) -> list[Any]:
        return [] if self.message is None else self.message.args

    @property
    def kwargs(self) -> dict[str, Any]:
        return {} if self.message is None else self.message.kwargs

    @property
    def retries(self) -> int:
        return 0 if self.message is None else self.message.retries

    @property
    def eta(self) -> datetime | None:
        return None if self.message is None else self.message.eta

    @property
    def expires(self) -> str | None:
        """The expiry time as Celery's request gives it: the ISO 8601 text of the header."""
        when = None if self.message is None else self.message.expires
        return None if when is None else format_iso(when)

    @property
    def headers(self) -> dict[str, Any] | None:
        """The custom headers sent with the task (``apply_async(headers=...)``), as Celery."""
        return None if self.message is None else dict(self.message.extra_headers)

    @property
    def properties(self) -> dict[str, Any]:
        """The message's AMQP properties, ``application_headers`` holding every header."""
        if self.message is None:
            return {}
        env = encode_task(self.message)
        props = env.properties.as_dict()
        props.pop("headers", None)
        props["application_headers"] = dict(env.headers or {})
        return props

    def __getattr__(self, name: str) -> Any:
        # Custom headers are request attributes too (request.x_custom), as in Celery.
        message = self.__dict__.get("message")
        if message is not None and name in message.extra_headers:
            return message.extra_headers[name]
        raise AttributeError(name)

    @property
    def reply_to(self) -> str | None:
        return None if self.message is None else self.message.reply_to

    @property
    def correlation_id(self) -> str | None:
        return None if self.message is None else self.message.correlation_id

    @property
    def root_id(self) -> str | None:
        return None if self.message is None else self.message.root_id

    @property
    def parent_id(self) -> str | None:
        return None if self.message is None else self.message.parent_id

    @property
    def group(self) -> str | None:
        return None if self.message is None else self.message.group

    @property
    def group_index(self) -> int | None:
        return None if self.message is None else self.message.group_index

    @property
    def origin(self) -> str | None:
        return None if self.message is None else self.message.origin

    @property
    def shadow(self) -> str | None:
        return None if self.message is None else self.message.shadow

    @property
    def ignore_result(self) -> bool:
        return False if self.message is None else self.message.ignore_result

    @property
    def timelimit(self) -> tuple[float | None, float | None]:
        if self.message is None:
            return (None, None)
        return (self.message.time_limit, self.message.soft_time_limit)

    @property
    def callbacks(self) -> list[dict[str, Any]] | None:
        return None if self.message is None else self.message.callbacks

    @property
    def errbacks(self) -> list[dict[str, Any]] | None:
        return None if self.message is None else self.message.errbacks

    @property
    def chain(self) -> list[dict[str, Any]] | None:
        return None if self.message is None else self.message.chain

    def __repr__(self) -> str:
        return f"<Context id={self.id!r} task={self.task!r} retries={self.retries}>"


class ExceptionInfo:
    """What Celery passes as ``einfo`` to ``on_failure``/``on_retry``/``after_return``."""

    def __init__(self, exc: BaseException, tb: TracebackType | None = None) -> None:
        self.exception = exc
        self.type = type(exc)
        self.tb = tb if tb is not None else exc.__traceback__
        self.traceback = "".join(_traceback.format_exception(self.type, exc, self.tb))

    @classmethod
    def current(cls) -> ExceptionInfo:
        exc = sys.exc_info()[1]
        assert exc is not None, "ExceptionInfo.current() outside an except block"
        return cls(exc)

    def __str__(self) -> str:
        return self.traceback

    def __repr__(self) -> str:
        return f"<ExceptionInfo: {self.exception!r}>"


_local = threading.local()
_EMPTY = Context()


def push(owner: object, ctx: Context) -> None:
    stack: list[tuple[object, Context]] | None = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    stack.append((owner, ctx))


def pop() -> None:
    _local.stack.pop()


def current(owner: object | None = None) -> Context:
    """The request being executed on this thread (for ``owner`` when given), else an empty one."""
    stack: list[tuple[object, Context]] | None = getattr(_local, "stack", None)
    if stack:
        top_owner, ctx = stack[-1]
        if owner is None or top_owner is owner:
            return ctx
    return _EMPTY
