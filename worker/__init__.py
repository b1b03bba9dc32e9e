"""amqptool's Celery-compatible worker: define tasks, run them, answer remote control.

::

    from worker import task, Task, control_command, Worker

See :mod:`worker.tasks` (defining tasks), :mod:`worker.daemon` (running and stopping a worker),
:mod:`worker.control` (remote control commands) and :mod:`worker.consumer` (the pipeline).
"""

from typing import TYPE_CHECKING, Any

from worker.context import Context, ExceptionInfo
from worker.control import control_command
from worker.exceptions import (
    AlreadyRegistered,
    Ignore,
    MaxRetriesExceededError,
    NotRegistered,
    Reject,
    Retry,
    TaskRevokedError,
    WorkerLostError,
)
from worker.tasks import Task, TaskRegistry, registry, task

if TYPE_CHECKING:
    from worker.daemon import Worker

__all__ = [
    "AlreadyRegistered",
    "Context",
    "ExceptionInfo",
    "Ignore",
    "MaxRetriesExceededError",
    "NotRegistered",
    "Reject",
    "Retry",
    "Task",
    "TaskRegistry",
    "TaskRevokedError",
    "Worker",
    "WorkerLostError",
    "control_command",
    "registry",
    "task",
]


def __getattr__(name: str) -> Any:
    # Worker pulls in the broker transport (pika); task modules importing `task` do not need it.
    if name == "Worker":
        from worker.daemon import Worker

        return Worker
    raise AttributeError(f"module 'worker' has no attribute {name!r}")
