"""amqptool's own task API (no Celery): a task that calls a task, for the routing tests."""

from __future__ import annotations

from typing import Any

from worker import Task, task


@task(bind=True, name="ourtasks.where")
def where(self: Task) -> Any:
    return (self.request.delivery_info or {}).get("routing_key")


@task(bind=True, name="ourtasks.spawn")
def spawn(self: Task) -> Any:
    """Calls ``ourtasks.where`` and waits for it (run with a pool of two or more)."""
    return where.delay().get(timeout=20)
