"""``Task.replace(sig)``: hand the rest of this task's work to another signature.

As in Celery, the replacement takes over the running task's id (its result is the task's
result), its group, chord, callbacks, errbacks and remaining chain; the running task then ends
without a result of its own (``Replaced`` is an ``Ignore``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from amqptool.codec.envelope import Envelope
from worker.pool.canvas import apply_signature
from worker.task.context import Context

__all__ = ["replacement_messages"]


def replacement_messages(request: Context, sig: Mapping[str, Any]) -> list[Envelope]:
    """The messages that send ``sig`` in place of the running request."""
    msg = request.message
    assert msg is not None
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
    return applied.envelopes
