"""Many calls at once (``group``, ``send_many``): signature dicts or tuples to task messages."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from amqptool.client.options import build_message
from amqptool.codec.tasks import TaskMessage
from amqptool.errors import UsageError

__all__ = ["task_messages"]

_CALL_OPTIONS = {
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


def task_messages(
    calls: Iterable[Any], queue: str | None, *, reply_to: str, group: str | None
) -> list[tuple[TaskMessage, str | None]]:
    """Task messages for ``calls`` (signature dicts or tuples), each with its queue (None: the
    client's router decides).

    With ``group`` members carry the group id and their ``group_index`` as a Celery group does.
    """
    items: list[tuple[TaskMessage, str | None]] = []
    for index, call in enumerate(calls):
        name, args, kwargs, options = _call_parts(call)
        opts = dict(options)
        member_queue = opts.pop("queue", None) or queue
        opts.pop("reply_to", None)
        unknown = set(opts) - _CALL_OPTIONS
        if unknown:
            what = "group call" if group is not None else "call"
            raise UsageError(f"{what} {index}: unknown options: {', '.join(sorted(unknown))}")
        if group is not None:
            opts.update(group=group, group_index=index)
        msg = build_message(name, args, kwargs, reply_to=reply_to, **opts)
        items.append((msg, None if member_queue is None else str(member_queue)))
    return items
