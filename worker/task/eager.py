"""Running a task here and now: ``Task.apply()`` and ``task_always_eager``.

``task.apply(args, kwargs)`` runs the task in this process with a request of its own
(``request.is_eager`` is True) and returns an :class:`EagerResult`, already ready. With
``conf.task_always_eager = True`` every ``delay``/``apply_async`` does that instead of sending
(for tests); ``conf.task_eager_propagates = True`` re-raises a task's exception at once
(``apply(throw=True)`` for one call).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from amqptool.codec.results import FAILURE, SUCCESS
from amqptool.codec.tasks import TaskMessage
from worker.task import context
from worker.task.context import Context, ExceptionInfo

if TYPE_CHECKING:
    from worker.task.define import Task

__all__ = ["EagerResult", "EagerSettings", "apply", "conf"]


@dataclass
class EagerSettings:
    """Celery's two eager settings, for this process."""

    task_always_eager: bool = False
    task_eager_propagates: bool = False


conf = EagerSettings()


class EagerResult:
    """The result of a task run by :func:`apply` (Celery's EagerResult)."""

    def __init__(self, task_id: str, value: Any, state: str, traceback: str | None = None) -> None:
        self.id = task_id
        self._value = value
        self.state = self.status = state
        self.traceback = traceback
        self.children: list[Any] = []
        self.parent = None

    def __repr__(self) -> str:
        return f"<EagerResult: {self.id}>"

    @property
    def result(self) -> Any:
        return self._value

    info = result

    def ready(self) -> bool:
        return True

    def successful(self) -> bool:
        return self.state == SUCCESS

    def failed(self) -> bool:
        return self.state == FAILURE

    def get(self, timeout: float | None = None, propagate: bool = True, **_: Any) -> Any:
        if self.state == FAILURE and propagate:
            raise self._value
        return self._value

    wait = get

    def forget(self) -> None:
        """Nothing is stored for an eager result."""

    def as_tuple(self) -> list[Any]:
        return [[self.id, None], None]


def apply(
    task: Task,
    args: Sequence[Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    *,
    task_id: str | None = None,
    throw: bool | None = None,
    headers: Mapping[str, Any] | None = None,
    **options: Any,
) -> EagerResult:
    """Run ``task`` in this process; the result (or the exception) in an EagerResult."""
    tid = str(task_id or uuid.uuid4())
    parent = context.current()
    msg = TaskMessage(
        task=str(task.name),
        id=tid,
        args=list(args or ()),
        kwargs=dict(kwargs or {}),
        root_id=parent.root_id or parent.id or tid,
        parent_id=parent.id,
        extra_headers=dict(headers or {}),
    )
    ctx = Context(msg, hostname="eager")
    ctx.is_eager = True
    ctx.called_directly = False
    context.push(task, ctx)
    try:
        value = task(*msg.args, **msg.kwargs)
    except Exception as exc:  # the task's failure is the result, or raised when asked
        propagate = conf.task_eager_propagates if throw is None else throw
        if propagate:
            raise
        return EagerResult(tid, exc, FAILURE, ExceptionInfo(exc).traceback)
    finally:
        context.pop()
    return EagerResult(tid, value, SUCCESS)
