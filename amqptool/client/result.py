"""Result handles: :class:`AsyncResult` for one task, :class:`GroupResult` for several.

They hold no connection. Each asks its :class:`ResultSource` (the :class:`~amqptool.client.
Client` that sent the task, which consumes the ``rpc://`` result queue) for the latest state of
its task id. Ready states are SUCCESS, FAILURE and REVOKED; FAILURE and REVOKED re-raise the
task's exception (rebuilt with :func:`amqptool.codec.results.decode_exception`, so the type is
preserved) unless ``propagate=False``, which returns it instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from amqptool.codec.envelope import Envelope
from amqptool.codec.results import (
    EXCEPTION_STATES,
    FAILURE,
    PENDING,
    READY_STATES,
    REVOKED,
    SUCCESS,
    decode_exception,
)
from amqptool.codec.serialization import decompress, loads
from amqptool.errors import DecodeError, TaskTimeoutError

__all__ = [
    "AsyncResult",
    "GroupResult",
    "ResultMeta",
    "ResultSource",
    "result_from_message",
    "result_from_tuple",
]


@dataclass(frozen=True)
class ResultMeta:
    """One state message of the ``rpc://`` backend (docs/protocol.md §2.2), decoded."""

    task_id: str
    status: str
    result: Any = None
    traceback: str | None = None
    children: list[Any] = field(default_factory=list)
    date_done: str | None = None
    group_id: str | None = None
    parent_id: str | None = None

    @property
    def ready(self) -> bool:
        return self.status in READY_STATES

    @classmethod
    def from_body(cls, body: Mapping[str, Any], *, fallback_id: str | None = None) -> ResultMeta:
        task_id = body.get("task_id") or fallback_id
        status = body.get("status")
        children = body.get("children")
        return cls(
            task_id=str(task_id or ""),
            status=str(status) if status else PENDING,
            result=body.get("result"),
            traceback=body.get("traceback") if isinstance(body.get("traceback"), str) else None,
            children=list(children) if isinstance(children, list) else [],
            date_done=body.get("date_done") if isinstance(body.get("date_done"), str) else None,
            group_id=body.get("group_id") if isinstance(body.get("group_id"), str) else None,
            parent_id=body.get("parent_id") if isinstance(body.get("parent_id"), str) else None,
        )

    def exception(self) -> BaseException:
        """The task's exception (FAILURE, RETRY, REVOKED), rebuilt with its original type."""
        data = self.result
        if self.status == REVOKED and not (isinstance(data, Mapping) and "exc_type" in data):
            reason = "revoked" if data is None else str(data)
            data = {
                "exc_type": "TaskRevokedError",
                "exc_message": [reason],
                "exc_module": "celery.exceptions",
            }
        exc = decode_exception(data)
        if self.traceback:
            exc.add_note("remote traceback:\n" + self.traceback.rstrip())
        return exc


class ResultSource(Protocol):
    """Where result handles get states from (the client's result consumer)."""

    def wait_for(self, task_id: str, timeout: float | None) -> ResultMeta:
        """Block until ``task_id`` is in a ready state; TaskTimeoutError past ``timeout``."""
        ...

    def peek(self, task_id: str) -> ResultMeta | None:
        """The latest state known for ``task_id`` (after reading what has arrived)."""
        ...

    def forget(self, task_id: str) -> None:
        """Drop what is kept about ``task_id``."""
        ...


class Revoker(Protocol):
    """What can revoke a task (the :class:`~amqptool.client.Client`)."""

    def revoke(self, task_id: str, *, terminate: bool = False, signal: str = "SIGTERM") -> None: ...


class AsyncResult:
    """The pending result of one task (the Celery ``AsyncResult`` subset users rely on).

    With ``ignored=True`` (the task was sent with ``ignore_result=True``) no result will ever
    come: :meth:`get` returns None at once, as Celery's does, and :attr:`state` stays PENDING.
    ``sent``: for a task sent without waiting for the broker's confirm (a client with
    ``confirm="pipelined"``), what :meth:`get` calls first, with its timeout: it waits for that
    confirm and raises if the broker refused the message.
    """

    def __init__(
        self,
        task_id: str,
        source: ResultSource,
        *,
        ignored: bool = False,
        app: Revoker | None = None,
        parent: AsyncResult | GroupResult | None = None,
        sent: Callable[[float | None], None] | None = None,
    ) -> None:
        self.id = str(task_id)
        self._sent = sent
        self._source = source
        self.ignored = ignored
        self.app = app
        self.parent = parent
        self._exception: tuple[ResultMeta, BaseException] | None = None

    # ------------------------------------------------------------------ identity

    @property
    def task_id(self) -> str:
        return self.id

    def __repr__(self) -> str:
        return f"<AsyncResult: {self.id}>"

    def __str__(self) -> str:
        return self.id

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AsyncResult):
            return other.id == self.id
        if isinstance(other, str):
            return other == self.id
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.id)

    # ------------------------------------------------------------------ state

    def _meta(self) -> ResultMeta | None:
        if self.ignored:
            return None
        return self._source.peek(self.id)

    def _exc(self, meta: ResultMeta) -> BaseException:
        if self._exception is None or self._exception[0] is not meta:
            self._exception = (meta, meta.exception())
        return self._exception[1]

    def _value(self, meta: ResultMeta | None) -> Any:
        if meta is None:
            return None
        if meta.status in EXCEPTION_STATES:
            return self._exc(meta)
        return meta.result

    @property
    def state(self) -> str:
        """PENDING until the worker reports; then STARTED, RETRY, custom states, SUCCESS..."""
        meta = self._meta()
        return meta.status if meta is not None else PENDING

    @property
    def status(self) -> str:
        return self.state

    @property
    def result(self) -> Any:
        """The return value, the exception (FAILURE/RETRY/REVOKED) or a custom state's meta."""
        return self._value(self._meta())

    @property
    def info(self) -> Any:
        return self.result

    @property
    def traceback(self) -> str | None:
        meta = self._meta()
        return meta.traceback if meta is not None else None

    @property
    def date_done(self) -> str | None:
        meta = self._meta()
        return meta.date_done if meta is not None else None

    @property
    def children(self) -> list[AsyncResult | GroupResult]:
        """Results of the tasks this task sent (chain steps, callbacks, groups)."""
        meta = self._meta()
        if meta is None:
            return []
        return [result_from_tuple(c, self._source, app=self.app) for c in meta.children if c]

    def as_tuple(self) -> list[Any]:
        """Celery's result tuple ``[[id, parent], None]``."""
        parent = self.parent.as_tuple() if self.parent is not None else None
        return [[self.id, parent], None]

    def revoke(self, terminate: bool = False, signal: str = "SIGTERM") -> None:
        """Ask every worker to revoke this task (``terminate`` kills it if running)."""
        if self.app is None:
            raise TypeError("this result has no client to revoke through")
        self.app.revoke(self.id, terminate=terminate, signal=signal)

    def ready(self) -> bool:
        return self.state in READY_STATES

    def successful(self) -> bool:
        return self.state == SUCCESS

    def failed(self) -> bool:
        return self.state == FAILURE

    # ------------------------------------------------------------------ waiting

    def get(
        self, timeout: float | None = None, propagate: bool = True, interval: float = 0.5
    ) -> Any:
        """Wait for a ready state and return the value.

        FAILURE/REVOKED raise the task's exception (or return it with ``propagate=False``).
        Past ``timeout`` seconds, :class:`~amqptool.errors.TaskTimeoutError` (a
        ``TimeoutError``). ``interval`` is accepted for Celery compatibility and unused:
        results are pushed, not polled.
        """
        del interval
        if self._sent is not None:  # first make sure the broker has the message
            started = time.monotonic()
            self._sent(timeout)
            self._sent = None
            if timeout is not None:
                timeout = max(0.0, timeout - (time.monotonic() - started))
        if self.ignored:
            return None
        meta = self._source.wait_for(self.id, timeout)
        if meta.status in EXCEPTION_STATES:
            exc = meta.exception()
            if propagate:
                raise exc
            return exc
        return meta.result

    wait = get  # Celery 1.0's name

    def forget(self) -> None:
        """Drop the state this client keeps for the task (it is not asked for any more)."""
        self._source.forget(self.id)


class GroupResult:
    """The results of several tasks sent together (Celery's GroupResult, 1.0's TaskSetResult).

    With a stored backend, :meth:`save` keeps the member ids under the group id, and
    :meth:`restore` (or ``Client.GroupResult(id)``) gets them back in another process.
    """

    def __init__(
        self,
        group_id: str,
        results: Sequence[AsyncResult | GroupResult],
        source: ResultSource | None = None,
    ) -> None:
        self.id = group_id
        self.results = list(results)
        self._source = source

    def as_tuple(self) -> list[Any]:
        return [[self.id, None], [r.as_tuple() for r in self.results]]

    def save(self) -> GroupResult:
        """Store the member ids under the group id (needs a Redis or SQL backend)."""
        saver = getattr(self._source, "save_group", None)
        if saver is None:
            raise TypeError("saving a group needs a stored result backend (redis://, db+...)")
        saver(self.id, [r.as_tuple() for r in self.results])
        return self

    @classmethod
    def restore(cls, group_id: str, source: ResultSource, app: Any = None) -> GroupResult | None:
        """The group saved under ``group_id`` (None when nothing was saved)."""
        restorer = getattr(source, "restore_group", None)
        members = restorer(group_id) if restorer is not None else None
        if members is None:
            return None
        return cls(group_id, [result_from_tuple(m, source, app=app) for m in members], source)

    @property
    def taskset_id(self) -> str:
        return self.id

    @property
    def subtasks(self) -> list[AsyncResult | GroupResult]:
        return self.results

    def __repr__(self) -> str:
        ids = ", ".join(r.id for r in self.results)
        return f"<GroupResult: {self.id} [{ids}]>"

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[AsyncResult | GroupResult]:
        return iter(self.results)

    def __getitem__(self, index: int) -> AsyncResult | GroupResult:
        return self.results[index]

    def join(self, timeout: float | None = None, propagate: bool = True) -> list[Any]:
        """Every result, in call order. ``timeout`` bounds the whole wait.

        The first failure in call order is re-raised (``propagate=False`` puts the exception
        in the list instead). Past the timeout, :class:`~amqptool.errors.TaskTimeoutError`.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        values: list[Any] = []
        for result in self.results:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                values.append(result.get(timeout=remaining, propagate=propagate))
            except TaskTimeoutError:
                done = self.completed_count()
                raise TaskTimeoutError(
                    f"group {self.id}: {done} of {len(self.results)} tasks finished within "
                    f"{timeout}s"
                ) from None
        return values

    get = join

    def ready(self) -> bool:
        return all(r.ready() for r in self.results)

    def waiting(self) -> bool:
        return not self.ready()

    def successful(self) -> bool:
        return all(r.successful() for r in self.results)

    def failed(self) -> bool:
        return any(r.failed() for r in self.results)

    def completed_count(self) -> int:
        """How many finished successfully (as Celery counts)."""
        return sum(1 for r in self.results if r.successful())

    def forget(self) -> None:
        for result in self.results:
            result.forget()

    def revoke(self, terminate: bool = False, signal: str = "SIGTERM") -> None:
        for result in self.results:
            result.revoke(terminate=terminate, signal=signal)


def result_from_tuple(
    value: Any, source: ResultSource, *, app: Revoker | None = None
) -> AsyncResult | GroupResult:
    """An AsyncResult (``[[id, parent], None]``) or GroupResult (``[[gid, None], [...]]``)."""
    if isinstance(value, AsyncResult | GroupResult):
        return value
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ValueError(f"not a result tuple: {value!r}")
    head, members = value
    if isinstance(head, list | tuple):
        ident, parent = head[0], head[1] if len(head) > 1 else None
    else:
        ident, parent = head, None
    if isinstance(members, list):
        return GroupResult(
            str(ident), [result_from_tuple(m, source, app=app) for m in members], source
        )
    up = result_from_tuple(parent, source, app=app) if parent else None
    return AsyncResult(
        str(ident), source, app=app, parent=up if isinstance(up, AsyncResult) else None
    )


def result_from_message(
    env: Envelope, accept: frozenset[str], log: logging.Logger
) -> ResultMeta | None:
    """The result a message carries (None, with a warning, if it is not one)."""
    try:
        body_bytes = env.body
        comp = env.headers.get("compression") if env.headers else None
        if isinstance(comp, str) and comp:
            body_bytes = decompress(body_bytes, comp)
        body = loads(
            body_bytes, env.properties.content_type, env.properties.content_encoding, accept=accept
        )
    except DecodeError as exc:
        log.warning("ignoring a result message that does not decode: %s", exc)
        return None
    if not isinstance(body, Mapping):
        log.warning("ignoring a result message whose body is not an object")
        return None
    meta = ResultMeta.from_body(body, fallback_id=env.properties.correlation_id)
    if not meta.task_id:
        log.warning("ignoring a result message with no task_id nor correlation_id")
        return None
    return meta
