"""What the shell shows of a received message: decoded body, delivery info, properties.

The body is decoded by its content type (JSON, msgpack, YAML, text with its charset); a Celery
task message (protocol v1 or v2) is shown as task name, id, args and kwargs. Pure.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from amqptool.codec.envelope import Envelope
from amqptool.codec.serialization import loads
from amqptool.codec.tasks import TaskMessage, decode_task

__all__ = ["MessageView", "jsonable", "view_message"]

_STRUCTURED = {
    "application/json": "json",
    "application/x-msgpack": "msgpack",
    "application/msgpack": "msgpack",
    "application/x-yaml": "yaml",
    "application/yaml": "yaml",
    "text/yaml": "yaml",
}
_ACCEPT = frozenset({"application/json", "application/x-msgpack", "application/x-yaml"})
_NOT_CHARSETS = frozenset({"binary", "8bit", "7bit", "gzip", "deflate", "compress", "identity"})


@dataclass(frozen=True)
class MessageView:
    """A message as the shell prints it."""

    body: Any
    body_kind: str  # task, json, msgpack, yaml, text or binary
    delivery_info: dict[str, Any]
    properties: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """camqadm's view: ``{'body': ..., 'delivery_info': {...}, 'properties': {...}}``."""
        return {
            "body": self.body,
            "delivery_info": self.delivery_info,
            "properties": self.properties,
        }

    def to_json(self) -> dict[str, Any]:
        body: Any = self.body
        out: dict[str, Any] = {"body_kind": self.body_kind}
        if isinstance(body, bytes):
            body = base64.b64encode(body).decode("ascii")
            out["body_encoding"] = "base64"
        out["body"] = jsonable(body)
        out["delivery_info"] = jsonable(self.delivery_info)
        out["properties"] = jsonable(self.properties)
        return out


def view_message(env: Envelope) -> MessageView:
    body, kind = _decode_body(env)
    info: dict[str, Any] = {
        "delivery_tag": env.delivery_tag,
        "exchange": env.exchange,
    }
    if env.message_count is not None:
        info["message_count"] = env.message_count
    info["redelivered"] = env.redelivered
    info["routing_key"] = env.routing_key
    return MessageView(body, kind, info, _plain(env.properties.as_dict()))


def _plain(value: Any) -> Any:
    """Header tables with builtin types (pika's ``long`` prints as ``1L``)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and type(value) is not int:
        return int(value)
    return value


def _task_view(task: TaskMessage) -> dict[str, Any]:
    view: dict[str, Any] = {
        "task": task.task,
        "id": task.id,
        "args": list(task.args),
        "kwargs": dict(task.kwargs),
    }
    if task.eta is not None:
        view["eta"] = task.eta.isoformat()
    if task.expires is not None:
        view["expires"] = task.expires.isoformat()
    if task.retries:
        view["retries"] = task.retries
    return view


def _decode_body(env: Envelope) -> tuple[Any, str]:
    props = env.properties
    try:
        return _task_view(decode_task(env, accept=_ACCEPT)), "task"
    except Exception:  # not a task, or a body no codec reads: fall back to plain decoding
        pass
    ctype, _, params = (props.content_type or "").partition(";")
    ctype = ctype.strip().lower()
    structured = _STRUCTURED.get(ctype)
    if structured is not None:
        try:
            return loads(env.body, ctype, props.content_encoding, accept=_ACCEPT), structured
        except Exception:  # a malformed body is shown as text or bytes instead
            pass
    charset = _charset(params, props.content_encoding)
    try:
        return env.body.decode(charset), "text"
    except (LookupError, UnicodeDecodeError):
        return env.body, "binary"


def _charset(params: str, content_encoding: str | None) -> str:
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"')
    enc = (content_encoding or "").strip().lower()
    if enc and enc not in _NOT_CHARSETS:
        return enc
    return "utf-8"


def jsonable(value: Any) -> Any:
    """A JSON-safe copy of a decoded value (bytes as text or base64, times as ISO 8601)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return "base64:" + base64.b64encode(raw).decode("ascii")
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return repr(value)
