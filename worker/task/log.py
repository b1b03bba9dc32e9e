"""``get_task_logger(__name__)``: a logger whose lines name the running task and its id.

As Celery's task loggers do: a record logged while a task runs reads
``proj.tasks.add[1b3c...]: message``; outside a task the message is left as it is. The logger
is a child of ``celery.task`` (so a Celery logging configuration applies to it too).
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

from worker.task import context

__all__ = ["get_task_logger"]


class _TaskLogger(logging.LoggerAdapter):  # type: ignore[type-arg]  # generic only in stubs
    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        request = context.current()
        if request.id is None:
            return msg, kwargs
        return f"{request.task}[{request.id}]: {msg}", kwargs


def get_task_logger(name: str) -> logging.LoggerAdapter:  # type: ignore[type-arg]  # see above
    """The logger for ``name`` (usually ``__name__`` of a task module)."""
    logger = logging.getLogger(name if name.startswith("celery.task") else f"celery.task.{name}")
    return _TaskLogger(logger, {})
