"""Tasks for the reliability drills (tests/faults/test_faults_*.py): all ``acks_late``.

A task is acked only after it ran, so a worker killed mid-task loses nothing: the broker
redelivers it. Each run appends ``<task id> <pid>`` to the file named by
``$AMQPTOOL_RELIA_LOG`` (one ``write`` per line on an ``O_APPEND`` descriptor, so lines from
threads and processes never interleave), which lets a drill count executions, not only results.
"""

from __future__ import annotations

import os
import time

from worker import Task, task

__all__ = ["mark", "nap"]

LOG_ENV = "AMQPTOOL_RELIA_LOG"


def _record(task_id: str | None) -> None:
    path = os.environ.get(LOG_ENV)
    if not path:
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{task_id} {os.getpid()}\n".encode())
    finally:
        os.close(fd)


@task(bind=True, name="relia.mark", acks_late=True)
def mark(self: Task, n: int) -> int:
    """Record this run and return ``n``."""
    _record(self.request.id)
    return n


@task(bind=True, name="relia.nap", acks_late=True)
def nap(self: Task, seconds: float) -> float:
    """Sleep, then record the run (a slow consumer, or a task busy at shutdown)."""
    time.sleep(seconds)
    _record(self.request.id)
    return seconds
