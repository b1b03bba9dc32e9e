"""Errbacks in Celery's two forms.

An errback whose task is registered in this worker and takes more than one argument is called
here, in the pool, as ``errback(request, exc, traceback)`` (Celery's current form); any other
errback is sent as a task with the failed task's id prepended (the old ``(task_id)`` form).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from worker.task.context import Context
from worker.task.define import Task

__all__ = ["call_in_process", "takes_request_form"]

log = logging.getLogger("worker.pool.errbacks")


def takes_request_form(task: Task, sig: Mapping[str, Any]) -> bool:
    """True when the errback accepts more than the failed task's id (after its own args)."""
    try:
        params = list(inspect.signature(task.run).parameters.values())
    except (TypeError, ValueError):
        return False
    kinds = inspect.Parameter
    if any(p.kind is kinds.VAR_POSITIONAL for p in params):
        return True
    positional = [
        p for p in params if p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD)
    ]
    given = 0 if sig.get("immutable") else len(sig.get("args") or ())
    bound_kw = set((sig.get("kwargs") or {}).keys())
    free = [p for p in positional if p.name not in bound_kw]
    return len(free) - given > 1


def call_in_process(
    errbacks: Sequence[Mapping[str, Any]],
    tasks: Mapping[str, Task],
    request: Context,
    exc: BaseException,
    traceback: str | None,
) -> list[Mapping[str, Any]]:
    """Run the request-form errbacks here; returns the ones to send as tasks."""
    to_send: list[Mapping[str, Any]] = []
    for sig in errbacks:
        task = tasks.get(str(sig.get("task")))
        if task is None or not takes_request_form(task, sig):
            to_send.append(sig)
            continue
        args = [] if sig.get("immutable") else list(sig.get("args") or ())
        try:
            task(request, exc, traceback, *args, **dict(sig.get("kwargs") or {}))
        except Exception:  # a failing errback is logged; the task's own failure stands
            log.exception("errback %s for task %s raised", task.name, request.id)
    return to_send
