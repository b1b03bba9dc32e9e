"""What each task event carries into a :class:`~amqptool.monitor.core.model.Task`, as safe values.

The tables the state fold uses (which fields a ``task-*`` event sets, where it stamps its
time, how states rank against each other) and :func:`field_value`, which turns an untrusted
event field into the type its Task attribute has, cut and with control characters visible.
Pure core.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from amqptool.monitor.core.clean import DEFAULT_FIELD_LIMIT, clean, clean_key, unsafe
from amqptool.monitor.core.model import (
    FAILURE,
    PENDING,
    RECEIVED,
    REJECTED,
    RETRY,
    REVOKED,
    STARTED,
    SUCCESS,
    Task,
    as_float,
)

__all__ = [
    "COMMON_FIELDS",
    "CUSTOM_PRECEDENCE",
    "FIELD_INT",
    "FIELD_KEY",
    "FIELD_OTHER",
    "FIELD_PLAIN",
    "FIELD_RUNTIME",
    "MAX_EVENT_TYPES",
    "PRECEDENCE",
    "SIZED_FIELDS",
    "TASK_BASE_SIZE",
    "TASK_EVENT_STATE",
    "TASK_SPEC",
    "TIMELINE_ENTRY_SIZE",
    "TIMELINE_MAX",
    "TYPE_FIELDS",
    "TYPE_TIME_ATTR",
    "WORKER_IGNORED",
    "clean_restored",
    "custom_fields",
    "field_value",
    "precedence",
    "size_of",
]

TASK_EVENT_STATE: dict[str, str] = {
    "task-sent": PENDING,
    "task-received": RECEIVED,
    "task-started": STARTED,
    "task-succeeded": SUCCESS,
    "task-failed": FAILURE,
    "task-retried": RETRY,
    "task-revoked": REVOKED,
    "task-rejected": REJECTED,
}

# Lower number = later in a task's life = wins over a higher number. RETRY is not here: it is
# ordered by clock (a retried task is received and started again).
PRECEDENCE: dict[str, int] = {
    SUCCESS: 0,
    FAILURE: 1,
    REVOKED: 2,
    REJECTED: 2,
    STARTED: 4,
    RECEIVED: 5,
    PENDING: 6,
}
CUSTOM_PRECEDENCE = 3  # progress-style custom states happen while a task runs

# The fields each event type carries into the task (docs/protocol.md §3.4).
_RECEIVED_FIELDS = (
    "name",
    "args",
    "kwargs",
    "retries",
    "eta",
    "expires",
    "root_id",
    "parent_id",
)
# Task fields that are not text (see model.Task); every other copied field is a string.
_INT_FIELDS = frozenset({"retries", "signum"})
_BOOL_FIELDS = frozenset({"terminated", "expired", "requeue"})
_SPECIAL = frozenset({"runtime", "name", "traceback", *_INT_FIELDS, *_BOOL_FIELDS})


def field_value(field: str, value: Any, limit: int = DEFAULT_FIELD_LIMIT) -> Any:
    """An event field as the type its Task attribute has: events are untrusted, and a list for a
    name or a string for a runtime would break the views and the store downstream. Text is cut
    at ``limit`` and its control characters made visible (a traceback keeps its newlines)."""
    if value is None:
        return None
    if value.__class__ is str and field not in _SPECIAL:
        return value if len(value) <= limit and not unsafe(value) else clean(value, limit)
    if field == "runtime":
        number = as_float(value, -1.0) if value.__class__ is not bool else -1.0
        return number if number >= 0 else None
    if field in _INT_FIELDS:
        return value if value.__class__ is int else None
    if field in _BOOL_FIELDS:
        return bool(value)
    text = value if value.__class__ is str else repr(value)
    if field == "name":
        return clean_key(text)
    if field == "traceback":
        return clean(text, limit * 4, multiline=True)
    return clean(text, limit)


# Text fields whose length counts towards a task's size (``max_bytes``).
SIZED_FIELDS = (
    "name",
    "args",
    "kwargs",
    "result",
    "exception",
    "traceback",
    "eta",
    "expires",
    "root_id",
    "parent_id",
    "queue",
    "exchange",
    "routing_key",
    "worker",
    "client",
)
TASK_BASE_SIZE = 600  # the object, its slots and a short timeline
TIMELINE_ENTRY_SIZE = 120
MAX_EVENT_TYPES = 256


def size_of(task: Task) -> int:
    size = TASK_BASE_SIZE + TIMELINE_ENTRY_SIZE * len(task.timeline)
    for name in SIZED_FIELDS:
        value = getattr(task, name)
        if value.__class__ is str:
            size += len(value)
    if task.extra:
        size += sum(len(k) + len(str(v)) for k, v in task.extra.items())
    return size


TYPE_FIELDS: dict[str, tuple[str, ...]] = {
    "task-sent": (*_RECEIVED_FIELDS, "queue", "exchange", "routing_key"),
    "task-received": _RECEIVED_FIELDS,
    "task-started": (),
    "task-succeeded": ("result", "runtime"),
    "task-failed": ("exception", "traceback"),
    "task-retried": ("exception", "traceback"),
    "task-revoked": ("terminated", "signum", "expired"),
    "task-rejected": ("requeue",),
}
# Where each known type stamps its time on the task.
TYPE_TIME_ATTR: dict[str, str] = {
    "task-sent": "sent",
    "task-received": "received",
    "task-started": "started",
    "task-succeeded": "succeeded",
    "task-failed": "failed",
    "task-retried": "retried",
    "task-revoked": "revoked",
    "task-rejected": "rejected",
}
COMMON_FIELDS = frozenset(
    {"type", "hostname", "timestamp", "utcoffset", "pid", "clock", "uuid", "local_received"}
)
WORKER_IGNORED = frozenset({"worker-elect", "worker-elect-ack"})
TIMELINE_MAX = 64


# How the fold copies a field: text kept as it is when short and printable (FIELD_PLAIN: cut at
# the field limit; FIELD_KEY: a name, cut at KEY_LIMIT), an int kept as it is (FIELD_INT), a
# finite float >= 0 kept as it is (FIELD_RUNTIME); anything else through :func:`field_value`,
# which gives the same for those (tests/unit/test_monitor_fold_batch.py).
FIELD_PLAIN, FIELD_KEY, FIELD_OTHER, FIELD_INT, FIELD_RUNTIME = 0, 1, 2, 3, 4


def _how(field: str) -> int:
    if field == "name":
        return FIELD_KEY
    if field in _INT_FIELDS:
        return FIELD_INT
    if field == "runtime":
        return FIELD_RUNTIME
    return FIELD_OTHER if field in _SPECIAL else FIELD_PLAIN


#: Per known task event type: (state, its precedence, the fields it copies with how to copy
#: each, the Task attribute its time goes to, the totals kind). One lookup per event.
TASK_SPEC: dict[str, tuple[str, int, tuple[tuple[str, int], ...], str, str]] = {
    etype: (
        state,
        PRECEDENCE.get(state, CUSTOM_PRECEDENCE),
        tuple((f, _how(f)) for f in TYPE_FIELDS[etype]),
        TYPE_TIME_ATTR[etype],
        etype[5:],
    )
    for etype, state in TASK_EVENT_STATE.items()
}


def precedence(state: str | None) -> int:
    """The precedence rank of a state (lower wins); custom states rank above STARTED."""
    if state is None:
        return 99
    return PRECEDENCE.get(state, CUSTOM_PRECEDENCE)


def custom_fields(event: Mapping[str, Any], limit: int) -> dict[str, Any]:
    """The fields of a custom ``task-<state>`` event (at most 64), names and text cleaned."""
    return {
        clean_key(str(k)): v
        if v is None or v.__class__ in (int, float, bool)
        else clean(v if v.__class__ is str else repr(v), limit)
        for k, v in list(event.items())[:64]
        if k not in COMMON_FIELDS
    }


def clean_restored(task: Task, limit: int) -> None:
    """A task from a file written by anyone: the same cleaning and size as live ones."""
    for name in SIZED_FIELDS:
        value = getattr(task, name)
        if value is not None:
            setattr(task, name, field_value(name, value, limit))
    task.size = size_of(task)
