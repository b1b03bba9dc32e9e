"""Callbacks, errbacks and chains (PROTOCOL.md §1.4): the messages a finished task sends next.

- ``callbacks`` (``link=``): on success, each signature is sent with the result prepended to its
  args (unless immutable).
- ``chain``: the remaining steps, last step first. On success the worker pops the last one,
  prepends the result, and sends it carrying the rest of the list as its own ``chain``.
- ``errbacks`` (``link_error=``): on failure, each is sent with the failed task's id prepended
  (unless immutable).

Every message sent gets ``parent_id`` = this task and this task's ``root_id``. A signature
without a ``queue`` option goes to the queue the parent task came from.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from amqptool.codec.envelope import Envelope
from amqptool.codec.tasks import TaskMessage, encode_task, signature_to_message
from amqptool.errors import AmqpToolError

__all__ = ["on_failure_messages", "on_success_messages"]

log = logging.getLogger("worker.callbacks")


def _encode(
    sig: Mapping[str, Any],
    extra_args: Sequence[Any],
    parent: TaskMessage,
    queue: str,
    chain: list[dict[str, Any]] | None = None,
) -> Envelope | None:
    try:
        msg, sig_queue = signature_to_message(sig, extra_args=extra_args, parent=parent)
        if chain is not None:
            msg.chain = chain
        options = sig.get("options") or {}
        exchange = str(options.get("exchange") or "") if isinstance(options, Mapping) else ""
        routing_key = sig_queue or queue
        if exchange and isinstance(options, Mapping) and options.get("routing_key"):
            routing_key = str(options["routing_key"])
        return encode_task(msg, exchange=exchange, routing_key=routing_key)
    except (AmqpToolError, TypeError, ValueError) as exc:
        log.error(
            "task %s[%s]: cannot send follow-up %r: %s",
            parent.task,
            parent.id,
            sig.get("task"),
            exc,
        )
        return None


def on_success_messages(parent: TaskMessage, retval: Any, queue: str) -> list[Envelope]:
    """The link callbacks and the next chain step of a task that returned ``retval``."""
    out: list[Envelope] = []
    for sig in parent.callbacks or ():
        env = _encode(sig, (retval,), parent, queue)
        if env is not None:
            out.append(env)
    if parent.chain:
        rest = list(parent.chain)
        step = rest.pop()
        env = _encode(step, (retval,), parent, queue, chain=rest)
        if env is not None:
            out.append(env)
    return out


def on_failure_messages(parent: TaskMessage, queue: str) -> list[Envelope]:
    """The errbacks of a task that failed (the failed task's id prepended)."""
    out: list[Envelope] = []
    for sig in parent.errbacks or ():
        env = _encode(sig, (parent.id,), parent, queue)
        if env is not None:
            out.append(env)
    return out
