"""amqptool's Celery-compatible worker: define tasks, run them, answer remote control.

::

    from worker import task, Task, control_command, Worker
    from worker import periodic_task, crontab, schedule

    @periodic_task(run_every=crontab(minute="*/15"))
    @task
    def cleanup():
        ...

See :mod:`worker.task.define` (defining tasks), :mod:`worker.daemon` (running and stopping a
worker), :mod:`worker.control.registry` (remote control commands) and :mod:`worker.runtime.consumer`
(the pipeline); the scheduling parts: :mod:`worker.runtime.pipeline.eta_stage` (ETA hold/park),
:mod:`worker.runtime.pipeline.rate_gate` (rate limits), :mod:`worker.policy.time_limits` (what each
pool can enforce), :mod:`worker.policy.revoked`, :mod:`worker.task.periodic` and
:mod:`worker.beat.embedded` (``-B``).
"""

from typing import TYPE_CHECKING, Any

from worker.control.registry import control_command
from worker.task.context import Context, ExceptionInfo
from worker.task.define import Task, TaskRegistry, registry, task
from worker.task.eager import EagerResult
from worker.task.eager import conf as conf
from worker.task.exceptions import (
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
from worker.task.log import get_task_logger
from worker.task.periodic import crontab, periodic_task, schedule
from worker.task.periodic_class import PeriodicTask

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
    "get_task_logger",
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
