"""Callbacks, errbacks and chains (docs/protocol.md §1.4, docs/results.md): what a finished
task sends next.

- ``callbacks`` (``link=``): on success, each signature is applied with the result prepended to
  its args (unless immutable).
- ``chain``: the remaining steps, last step first. On success the worker pops the last one,
  prepends the result, and applies it carrying the rest of the list as its own ``chain``.
- ``errbacks`` (``link_error=``): on failure, each is sent with the failed task's id prepended
  (unless immutable); see :mod:`worker.pool.errbacks` for the ``(request, exc, traceback)`` form.

Every message sent gets ``parent_id`` = this task and this task's ``root_id``. A signature
without a ``queue`` option goes to the queue the parent task came from. Groups, chains and
chords among them are applied by :mod:`worker.pool.canvas`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from amqptool.codec.tasks import TaskMessage
from worker.pool.canvas import Applied, apply_signature
from worker.pool.results import ResultStore

__all__ = ["on_failure_messages", "on_success_messages"]


def on_success_messages(
    parent: TaskMessage, retval: Any, queue: str, store: ResultStore | None = None
) -> Applied:
    """The link callbacks and the next chain step of a task that returned ``retval``."""
    out = Applied()
    for sig in parent.callbacks or ():
        out.extend(apply_signature(sig, (retval,), parent, queue, store))
    if parent.chain:
        rest = list(parent.chain)
        step = rest.pop()
        out.extend(apply_signature(step, (retval,), parent, queue, store, chain=rest or None))
    return out


def on_failure_messages(
    parent: TaskMessage,
    queue: str,
    store: ResultStore | None = None,
    errbacks: Sequence[Mapping[str, Any]] | None = None,
) -> Applied:
    """The errbacks (old form) of a task that failed: the failed task's id prepended."""
    out = Applied()
    for sig in (parent.errbacks or []) if errbacks is None else errbacks:
        out.extend(apply_signature(sig, (parent.id,), parent, queue, store))
    return out
