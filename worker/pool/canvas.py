"""Signatures a finished task sends next, whatever their shape: a task, a group, a chain, a chord.

Celery clients put canvas signatures in a task's ``chain``/``callbacks`` (a chain that ends in a
group carries a ``celery.group`` signature, for instance). The worker applies them as Celery's
``signature.apply_async`` would: a group becomes one message per member with the group id and
index, a chain its first step carrying the rest, a chord its header members carrying the body
(``chord``) after the chord size is set in a native-chord backend, or followed by
``celery.chord_unlock`` otherwise. Each applied signature also gives the result tuple recorded
in the sending task's ``children``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from amqptool.codec.envelope import Envelope
from amqptool.codec.tasks import TaskMessage, encode_task, signature_to_message
from amqptool.errors import AmqpToolError
from worker.pool.results import ResultStore

__all__ = ["Applied", "apply_signature", "encode_signature"]

log = logging.getLogger("worker.pool.canvas")

CHORD_UNLOCK = "celery.chord_unlock"


class Applied:
    """Messages to publish and the ``children`` result tuples they stand for."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.children: list[Any] = []

    def __iter__(self) -> Iterator[Envelope]:
        return iter(self.envelopes)

    def __len__(self) -> int:
        return len(self.envelopes)

    def extend(self, other: Applied) -> None:
        self.envelopes.extend(other.envelopes)
        self.children.extend(other.children)


def _kind(sig: Mapping[str, Any]) -> str:
    kind = sig.get("subtask_type")
    if isinstance(kind, str) and kind:
        return kind
    return {"celery.group": "group", "celery.chain": "chain", "celery.chord": "chord"}.get(
        str(sig.get("task")), ""
    )


def encode_signature(
    sig: Mapping[str, Any],
    extra_args: Sequence[Any],
    parent: TaskMessage,
    queue: str,
    *,
    chain: list[dict[str, Any]] | None = None,
) -> tuple[TaskMessage, Envelope]:
    """One plain signature as a task message to its queue (the parent's when it names none)."""
    msg, sig_queue = signature_to_message(sig, extra_args=extra_args, parent=parent)
    options = sig.get("options") or {}
    if not isinstance(options, Mapping):
        options = {}
    if chain is not None:
        msg.chain = chain
    if isinstance(options.get("chord"), Mapping):
        msg.chord = dict(options["chord"])
    index = options.get("group_index")
    if isinstance(index, int) and not isinstance(index, bool):
        msg.group_index = index
    exchange = str(options.get("exchange") or "")
    routing_key = sig_queue or queue
    if exchange and options.get("routing_key"):
        routing_key = str(options["routing_key"])
    return msg, encode_task(msg, exchange=exchange, routing_key=routing_key)


def _with_options(sig: Mapping[str, Any], **options: Any) -> dict[str, Any]:
    out = dict(sig)
    merged = dict(sig.get("options") or {})
    merged.update({k: v for k, v in options.items() if v is not None})
    out["options"] = merged
    return out


def apply_signature(
    sig: Mapping[str, Any],
    extra_args: Sequence[Any],
    parent: TaskMessage,
    queue: str,
    store: ResultStore | None,
    *,
    chain: list[dict[str, Any]] | None = None,
) -> Applied:
    """Apply one signature of any shape; errors are logged (the parent's outcome stands)."""
    try:
        return _apply(sig, extra_args, parent, queue, store, chain)
    except (AmqpToolError, TypeError, ValueError, KeyError) as exc:
        log.error(
            "task %s[%s]: cannot send follow-up %r: %s",
            parent.task,
            parent.id,
            sig.get("task"),
            exc,
        )
        return Applied()


def _apply(
    sig: Mapping[str, Any],
    extra_args: Sequence[Any],
    parent: TaskMessage,
    queue: str,
    store: ResultStore | None,
    chain: list[dict[str, Any]] | None,
) -> Applied:
    kind = _kind(sig)
    kwargs = sig.get("kwargs") or {}
    if sig.get("immutable"):
        extra_args = ()
    if kind == "group":
        return _group(sig, list(kwargs.get("tasks") or []), extra_args, parent, queue, store)
    if kind == "chain":
        steps = [dict(s) for s in kwargs.get("tasks") or []]
        if not steps:
            return Applied()
        rest = list(reversed(steps[1:])) + list(chain or [])
        return _apply(steps[0], extra_args, parent, queue, store, rest or None)
    if kind == "chord":
        return _chord(sig, kwargs, extra_args, parent, queue, store)
    out = Applied()
    msg, env = encode_signature(sig, extra_args, parent, queue, chain=chain)
    out.envelopes.append(env)
    out.children.append([[msg.id, None], None])
    return out


def _group(
    sig: Mapping[str, Any],
    members: list[Any],
    extra_args: Sequence[Any],
    parent: TaskMessage,
    queue: str,
    store: ResultStore | None,
    chord: Mapping[str, Any] | None = None,
) -> Applied:
    options = sig.get("options") or {}
    group_id = str(options.get("task_id") or options.get("group_id") or uuid.uuid4())
    out = Applied()
    tuples: list[Any] = []
    for index, member in enumerate(members):
        opts: dict[str, Any] = {"group_id": group_id}
        member_opts = member.get("options") or {}
        if member_opts.get("group_index") is None:
            opts["group_index"] = index
        if chord is not None:
            opts["chord"] = dict(chord)
        applied = _apply(_with_options(member, **opts), extra_args, parent, queue, store, None)
        out.envelopes.extend(applied.envelopes)
        tuples.extend(applied.children)
    out.children.append([[group_id, None], tuples])
    return out


def _chord(
    sig: Mapping[str, Any],
    kwargs: Mapping[str, Any],
    extra_args: Sequence[Any],
    parent: TaskMessage,
    queue: str,
    store: ResultStore | None,
) -> Applied:
    header = kwargs.get("header") or {}
    body = dict(kwargs.get("body") or {})
    if isinstance(header, Mapping):
        members = list((header.get("kwargs") or {}).get("tasks") or [])
        header_sig: Mapping[str, Any] = header
    else:
        members, header_sig = list(header), {}
    options = sig.get("options") or {}
    group_id = str(
        (header_sig.get("options") or {}).get("task_id") or options.get("task_id") or uuid.uuid4()
    )
    body = _with_options(body, group_id=group_id)
    if store is None:
        raise ValueError("a chord needs a result backend (redis:// or db+...)")
    group_sig = {"options": {"task_id": group_id}}
    if store.native_chords:
        store.backend.set_chord_size(group_id, len(members))
        return _group(group_sig, members, extra_args, parent, queue, store, chord=body)
    out = _group(group_sig, members, extra_args, parent, queue, store)
    unlock = {
        "task": CHORD_UNLOCK,
        "args": [group_id, body],
        "kwargs": {"result": out.children[0][1], "interval": None, "max_retries": None},
        "options": {"countdown": 1},
        "immutable": True,
    }
    _, env = encode_signature(unlock, (), parent, queue)
    out.envelopes.append(env)
    return out
