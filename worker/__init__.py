"""amqptool's Celery-compatible worker: define tasks, run them, answer remote control.

::

    from worker import task, Task, control_command, Worker
    from worker import periodic_task, crontab, schedule

    @periodic_task(run_every=crontab(minute="*/15"))
    @task
    def cleanup():
        ...

See :mod:`worker.tasks` (defining tasks), :mod:`worker.daemon` (running and stopping a worker),
:mod:`worker.control` (remote control commands) and :mod:`worker.consumer` (the pipeline);
the scheduling parts: :mod:`worker.etastage` (ETA hold/park), :mod:`worker.rategate` (rate
limits), :mod:`worker.timelimits` (what each pool can enforce), :mod:`worker.revoked`,
:mod:`worker.periodic` and :mod:`worker.beatrun` (``-B``).
"""

from typing import TYPE_CHECKING, Any

from worker.context import Context, ExceptionInfo
from worker.control import control_command
from worker.eager import EagerResult
from worker.eager import conf as conf
from worker.exceptions import (
    AlreadyRegistered,
    EncodeError,
    Ignore,
    MaxRetriesExceededError,
    NotRegistered,
    Reject,
    Retry,
    SoftTimeLimitExceeded,
    TaskRevokedError,
    TimeLimitExceeded,
    WorkerLostError,
)
from worker.periodic import crontab, periodic_task, schedule
from worker.periodic_class import PeriodicTask
from worker.tasks import Task, TaskRegistry, registry, task

if TYPE_CHECKING:
    from worker.daemon import Worker

__all__ = [
    "AlreadyRegistered",
    "Context",
    "EagerResult",
    "EncodeError",
    "ExceptionInfo",
    "Ignore",
    "MaxRetriesExceededError",
    "NotRegistered",
    "PeriodicTask",
    "Reject",
    "Retry",
    "SoftTimeLimitExceeded",
    "Task",
    "TaskRegistry",
    "TaskRevokedError",
    "TimeLimitExceeded",
    "Worker",
    "WorkerLostError",
    "conf",
    "control_command",
    "crontab",
    "periodic_task",
    "registry",
    "schedule",
    "task",
]


def __getattr__(name: str) -> Any:
    # Worker pulls in the broker transport (pika); task modules importing `task` do not need it.
    if name == "Worker":
        from worker.daemon import Worker

        return Worker
    raise AttributeError(f"module 'worker' has no attribute {name!r}")
