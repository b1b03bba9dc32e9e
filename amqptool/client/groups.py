"""The messages of a group sent by name: ``Client.group([("proj.add", (1, 1)), ...])``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from amqptool.client.options import build_message
from amqptool.codec.tasks import TaskMessage
from amqptool.errors import UsageError

__all__ = ["group_messages"]

_ALLOWED = frozenset(
    {
        "task_id",
        "countdown",
        "eta",
        "expires",
        "priority",
        "link",
        "link_error",
        "headers",
        "shadow",
        "time_limit",
        "soft_time_limit",
        "parent_id",
        "root_id",
    }
)


def group_messages(
    calls: Iterable[Any], group_id: str, queue: str, reply_to: str
) -> list[tuple[TaskMessage, str]]:
    """One message per call (signature dict or ``(name, args, kwargs, options)``), in order,
    each with the group id and its index, and the queue it goes to."""
    items: list[tuple[TaskMessage, str]] = []
    for index, call in enumerate(calls):
        name, args, kwargs, options = _call_parts(call)
        opts = dict(options)
        member_queue = opts.pop("queue", None) or queue
        opts.pop("reply_to", None)
        unknown = set(opts) - _ALLOWED
        if unknown:
            raise UsageError(f"group call {index}: unknown options: {', '.join(sorted(unknown))}")
        msg = build_message(
            name, args, kwargs, reply_to=reply_to, group=group_id, group_index=index, **opts
        )
        items.append((msg, str(member_queue)))
    return items


def _call_parts(call: Any) -> tuple[str, Any, Any, Mapping[str, Any]]:
    if isinstance(call, Mapping):
        if not isinstance(call.get("task"), str):
            raise UsageError(f"not a signature: {call!r}")
        return call["task"], call.get("args") or (), call.get("kwargs"), call.get("options") or {}
    if isinstance(call, list | tuple) and call and isinstance(call[0], str):
        name, rest = call[0], list(call[1:])
        if len(rest) > 3:
            raise UsageError(f"a group call is (name, args, kwargs, options), not {call!r}")
        args = rest[0] if len(rest) > 0 else ()
        kwargs = rest[1] if len(rest) > 1 else None
        options = rest[2] if len(rest) > 2 else {}
        if not isinstance(options, Mapping):
            raise UsageError(f"group call options must be a dict, not {options!r}")
        return name, args, kwargs, options
    raise UsageError(f"a group call is a signature dict or a (name, args, kwargs) tuple: {call!r}")
