"""amqptool's own task API (no Celery): a task that calls a task, for the routing tests."""

from __future__ import annotations

from typing import Any

from worker import Task, get_task_logger, task


@task(bind=True, name="ourtasks.where")
def where(self: Task) -> Any:
    return (self.request.delivery_info or {}).get("routing_key")


@task(bind=True, name="ourtasks.spawn")
def spawn(self: Task) -> Any:
    """Calls ``ourtasks.where`` and waits for it (run with a pool of two or more)."""
    return where.delay().get(timeout=20)


@task(name="ourtasks.fails")
def fails(message: str) -> None:
    raise ValueError(message)


@task(name="ourtasks.quiet_fails", disable_error_emails=True)
def quiet_fails(message: str) -> None:
    raise ValueError(message)


@task(bind=True, name="ourtasks.retries_once", default_retry_delay=0.1)
def retries_once(self: Task) -> int:
    if self.request.retries < 1:
        raise self.retry(exc=KeyError("first try"))
    return int(self.request.retries)


task_log = get_task_logger(__name__)


@task(name="ourtasks.logs")
def logs(text: str) -> str:
    task_log.warning("logged %s", text)
    return text


@task(name="ourtasks.slowly", rate_limit="1/h")
def slowly(n: int) -> int:
    return n


@task(name="ourtasks.always_dies", acks_late=True, reject_on_worker_lost=True)
def always_dies() -> None:
    """Kills its pool process every time: requeued again and again (reject_on_worker_lost)."""
    import os

    os._exit(5)
