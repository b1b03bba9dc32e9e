"""Where a finished task's state goes: the caller's reply queue (``rpc://``) or the result store.

Also what a stored state sets off, as Celery's backends do after storing: a chord header task
reports to its chord (Redis's native counter; the last one applies the body, or fails it with a
``ChordError``), and a failed task fails the chain steps that will now never run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from amqptool.codec.envelope import Envelope
from amqptool.codec.results import (
    EXCEPTION_STATES,
    FAILURE,
    decode_exception,
    encode_result,
    result_body,
)
from amqptool.codec.tasks import TaskMessage
from worker.pool.canvas import Applied, apply_signature
from worker.pool.results import ResultStore

__all__ = ["chord_part", "fail_chain", "fail_chord_body", "state_message", "unencodable"]

log = logging.getLogger("worker.pool.finish")


def state_message(
    msg: TaskMessage,
    store: ResultStore | None,
    status: str,
    value: Any,
    *,
    traceback: str | None = None,
    children: Sequence[Any] | None = None,
    task_id: str | None = None,
    reply_to: str | None = None,
) -> Envelope | None:
    """Store the state (returns None) or build its rpc:// message (None without a reply_to)."""
    tid = task_id or msg.id
    body = result_body(
        tid,
        status,
        value,
        traceback=traceback,
        children=list(children or []),
        parent_id=msg.parent_id if task_id is None else None,
        group_id=msg.group if task_id is None else None,
    )
    if store is not None:
        store.store(body)
        return None
    target = reply_to if task_id is not None else msg.reply_to
    if not target:
        return None
    corr = tid if task_id is not None else (msg.correlation_id or msg.id)
    return encode_result(body, reply_to=target, correlation_id=corr)


def chord_part(
    msg: TaskMessage, store: ResultStore | None, state: str, value: Any, queue: str
) -> Applied:
    """Report a chord header task to a native chord; apply or fail the body when complete."""
    out = Applied()
    if not msg.chord or not msg.group or store is None or not store.native_chords:
        return out
    part = store.chord_part(msg.group, msg.id, msg.group_index, state, value)
    if part is None:
        return out
    body = msg.chord
    try:
        failed = next(((tid, r) for tid, st, r in part.results if st in EXCEPTION_STATES), None)
        if failed is not None:
            fail_chord_body(store, msg.group, body, failed[0], failed[1], msg.id)
        else:
            values = [r for _, _, r in part.results]
            out.extend(apply_signature(body, (values,), msg, queue, store))
    finally:
        store.chord_done(msg.group, part)
    return out


def fail_chord_body(
    store: ResultStore,
    group_id: str | None,
    body: Mapping[str, Any],
    culprit: str,
    exc: Any,
    parent_id: str | None = None,
) -> None:
    """Store the chord body as failed with Celery's ``ChordError`` naming the failed member."""
    reason = f"Dependency {culprit} raised {decode_exception(exc)!r}"
    log.error("Chord %r raised: ChordError(%r)", group_id, reason)
    body_id = (body.get("options") or {}).get("task_id")
    if not body_id:
        return
    error = {"exc_type": "ChordError", "exc_message": [reason], "exc_module": "celery.exceptions"}
    store.store(result_body(str(body_id), FAILURE, error, group_id=group_id, parent_id=parent_id))


def fail_chain(
    msg: TaskMessage, store: ResultStore | None, value: Any, traceback: str | None
) -> list[Envelope]:
    """Mark the chain steps after a failed task as failed too (their ids are pre-assigned)."""
    out: list[Envelope] = []
    for step in msg.chain or ():
        options = step.get("options") or {}
        step_id = options.get("task_id")
        if not step_id:
            continue
        env = state_message(
            msg,
            store,
            FAILURE,
            value,
            traceback=traceback,
            task_id=str(step_id),
            reply_to=options.get("reply_to"),
        )
        if env is not None:
            out.append(env)
    return out


def unencodable(value: Any, serializer: str = "json") -> TypeError | None:
    """Why JSON cannot carry ``value`` as Celery's serializer would (a set, a frozenset)."""
    if serializer != "json":
        return None
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, set | frozenset):
            return TypeError(f"Object of type {type(item).__name__} is not JSON serializable")
        if isinstance(item, Mapping):
            todo.extend(item.values())
        elif isinstance(item, list | tuple):
            todo.extend(item)
    return None
