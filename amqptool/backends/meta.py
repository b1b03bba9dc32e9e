"""Celery's result documents, pure: what a result backend stores and how it reads it back.

A task's result is one document (``docs/results.md``)::

    {"status", "result", "traceback", "children", "date_done",
     ["group_id"], ["parent_id"], "task_id"}

in that key order, serialized with the result serializer (JSON by default). Results of tasks
the task sent (``children``) and groups are *result tuples*: ``[[id, parent_tuple], None]`` for
one task, ``[[group_id, None], [member tuples]]`` for a group. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from amqptool.codec.results import result_body
from amqptool.codec.serialization import dumps, get_serializer, loads, normalize_accept
from amqptool.errors import DecodeError

__all__ = [
    "DEFAULT_ACCEPT",
    "DEFAULT_EXPIRES",
    "GROUP_KEY_PREFIX",
    "TASK_KEY_PREFIX",
    "Codec",
    "group_key",
    "group_tuple",
    "result_document",
    "task_key",
    "task_tuple",
]

TASK_KEY_PREFIX = "celery-task-meta-"
GROUP_KEY_PREFIX = "celery-taskset-meta-"
DEFAULT_EXPIRES = 86_400  # Celery's result_expires: one day, in seconds
DEFAULT_ACCEPT = normalize_accept(["json"])


def task_key(task_id: str) -> str:
    return TASK_KEY_PREFIX + task_id


def group_key(group_id: str, suffix: str = "") -> str:
    return GROUP_KEY_PREFIX + group_id + suffix


def task_tuple(task_id: str, parent: Any = None) -> list[Any]:
    """The result tuple of one task: ``[[id, parent], None]``."""
    return [[task_id, parent], None]


def group_tuple(group_id: str, members: Sequence[Any]) -> list[Any]:
    """The result tuple of a group: ``[[group_id, None], [member tuples]]``."""
    return [[group_id, None], list(members)]


def result_document(
    task_id: str,
    status: str,
    result: Any = None,
    *,
    traceback: str | None = None,
    children: Sequence[Any] | None = None,
    date_done: datetime | None = None,
    group_id: str | None = None,
    parent_id: str | None = None,
) -> dict[str, Any]:
    """One result document in Celery's key order (the rpc:// body is the same document)."""
    return result_body(
        task_id,
        status,
        result,
        traceback=traceback,
        children=list(children or []),
        date_done=date_done,
        group_id=group_id,
        parent_id=parent_id,
    )


class Codec:
    """The result serializer and the content types accepted when reading back.

    Reading refuses any content type outside ``accept`` (JSON only by default), so a stored
    pickle is never unpickled unless the caller accepts pickle.
    """

    def __init__(self, serializer: str = "json", accept: Collection[str] | None = None) -> None:
        self.serializer = serializer
        self.content_type = get_serializer(serializer).content_type
        self.accept = normalize_accept(accept) if accept is not None else DEFAULT_ACCEPT

    def encode(self, value: Any) -> bytes:
        return dumps(value, self.serializer)[0]

    def decode(self, data: bytes | str | None) -> Any:
        if data is None:
            return None
        raw = data.encode() if isinstance(data, str) else bytes(data)
        return loads(raw, self.content_type, "utf-8", accept=self.accept)

    def decode_document(self, data: bytes | str | None) -> dict[str, Any] | None:
        value = self.decode(data)
        if value is None:
            return None
        if not isinstance(value, Mapping) or "status" not in value:
            raise DecodeError("a stored result that is not a result document")
        return dict(value)
