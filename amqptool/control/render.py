"""How control replies look: human text like Celery's, or one JSON document. Pure.

Human form (Celery's ``inspect``/``control`` output, without colours)::

    ->  w1@host: OK
            pong
    ->  w2@host: ERROR
            unknown task

    2 nodes online.

A dict reply with ``ok`` prints as ``OK`` and its value, one with ``error`` as ``ERROR``, a
list as ``*`` bullets (``- empty -`` when empty), any other dict as pretty JSON, a string as
is; a ``null`` reply prints the header line only.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from uuid import UUID

from amqptool.control.command_table import Command

__all__ = [
    "error_nodes",
    "is_error",
    "nodes_online",
    "pretty",
    "render_command_list",
    "render_replies",
    "to_json",
]

INDENT = " " * 4


def _indent(text: str, prefix: str = INDENT) -> str:
    return "\n".join(prefix + line if line else line for line in text.split("\n"))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, datetime | date | time):
        return obj.isoformat()
    if isinstance(obj, Decimal | UUID):
        return str(obj)
    if isinstance(obj, bytes | bytearray | memoryview):
        raw = bytes(obj)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(raw).decode("ascii")
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    return repr(obj)


def to_json(value: Any, *, indent: int | None = None) -> str:
    """Plain JSON (datetimes as ISO text, bytes as text): one document for pipelines."""
    return json.dumps(value, default=_json_default, indent=indent, sort_keys=indent is not None)


def is_error(reply: Any) -> bool:
    """A reply that reports a failure: a dict with an ``error`` key (and no ``ok``)."""
    return isinstance(reply, Mapping) and "error" in reply and "ok" not in reply


def error_nodes(replies: Mapping[str, Any]) -> list[str]:
    return [node for node, reply in replies.items() if is_error(reply)]


def _item(value: Any) -> str:
    if isinstance(value, str):
        return value
    return to_json(value)


def pretty(reply: Any) -> tuple[str, str]:
    """``(status, body)`` for one reply, as Celery's CLI shows it."""
    if isinstance(reply, list):
        if not reply:
            return "OK", "- empty -"
        return "OK", "\n".join(f"* {_item(item)}" for item in reply)
    if isinstance(reply, Mapping):
        if "ok" in reply:
            return "OK", _indent(pretty(reply["ok"])[1])
        if "error" in reply:
            return "ERROR", _indent(pretty(reply["error"])[1])
        return "OK", to_json(dict(reply), indent=4)
    if reply is None:
        return "OK", ""
    if isinstance(reply, str):
        return "OK", reply.rstrip("\n")
    return "OK", to_json(reply)


def render_replies(replies: Mapping[str, Any], *, show_body: bool = True) -> str:
    """The reply lines (no trailing node count)."""
    lines: list[str] = []
    for node, reply in replies.items():
        status, body = pretty(reply)
        lines.append(f"->  {node}: {status}")
        if show_body and body:
            lines.append(_indent(body))
    return "\n".join(lines)


def nodes_online(count: int) -> str:
    return f"{count} {'node' if count == 1 else 'nodes'} online."


def render_command_list(commands: Iterable[Command]) -> str:
    """``commands``: grouped by kind, one ``usage  help`` line each, aliases noted."""
    groups: dict[str, list[Command]] = {}
    for cmd in commands:
        groups.setdefault(cmd.kind, []).append(cmd)
    titles = {
        "inspect": "Inspect commands",
        "control": "Control commands",
        "local": "Client commands",
    }
    width = max((len(c.usage) for cs in groups.values() for c in cs), default=0)
    width = min(width, 36)
    out: list[str] = []
    for kind in ("inspect", "control", "local"):
        cmds = sorted(groups.get(kind, []), key=lambda c: c.name)
        if not cmds:
            continue
        if out:
            out.append("")
        out.append(f"{titles[kind]}:")
        for cmd in cmds:
            text = cmd.help
            if cmd.aliases:
                text += f" (alias: {', '.join(cmd.aliases)})"
            usage = cmd.usage
            if len(usage) > width:
                out.append(f"  {usage}")
                out.append(f"  {'':<{width}}  {text}")
            else:
                out.append(f"  {usage:<{width}}  {text}")
    return "\n".join(out)
