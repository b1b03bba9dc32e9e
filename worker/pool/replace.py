"""``Task.replace(sig)``: hand the rest of this task's work to another signature.

As in Celery, the replacement takes over the running task's id (its result is the task's
result), its group, chord, callbacks, errbacks and remaining chain; the running task then ends
without a result of its own (``Ignore``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from worker.pool.canvas import apply_signature
from worker.task.context import Context
from worker.task.exceptions import Ignore

__all__ = ["replace"]


def replace(request: Context, sig: Mapping[str, Any]) -> Ignore:
    """Send ``sig`` in place of the running request; returns the Ignore to raise."""
    msg = request.message
    if msg is None or request.sink is None:
        raise RuntimeError("Task.replace() can only be called while a worker runs the task")
    options = dict(sig.get("options") or {})
    options.update(task_id=msg.id, reply_to=msg.reply_to)
    for key, value in (
        ("group_id", msg.group),
        ("group_index", msg.group_index),
        ("chord", msg.chord),
        ("link", msg.callbacks),
        ("link_error", msg.errbacks),
    ):
        if value is not None:
            options[key] = value
    replacement = {**dict(sig), "options": options}
    # The replacement's parent is the replaced task's parent (same family tree).
    parent = dataclasses.replace(msg, id=msg.parent_id) if msg.parent_id else msg
    applied = apply_signature(
        replacement, (), parent, request.queue or "celery", request.result_store, chain=msg.chain
    )
    for env in applied.envelopes:
        request.sink.publish(env)
    return Ignore(f"replaced by {sig.get('task')}")
