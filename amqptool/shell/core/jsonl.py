"""Messages as JSON lines, for ``queue.export`` and ``queue.import``. Pure.

One object per line::

    {"body": "text", "properties": {...}, "exchange": "...", "routing_key": "...",
     "redelivered": false}

The body is ``"body"`` when it is valid UTF-8, else ``"body_base64"``. Properties keep their
AMQP names; header values that JSON has no type for are tagged so that an import restores them
exactly: ``{"$bytes": BASE64}``, ``{"$timestamp": ISO-8601}``, ``{"$decimal": "1.50"}``.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from amqptool.codec.envelope import Envelope, Properties
from amqptool.errors import UsageError
from amqptool.textsafe import json_visible

__all__ = ["envelope_from_line", "line_from_envelope"]

_PROPERTY_TYPES: dict[str, type] = {
    "content_type": str,
    "content_encoding": str,
    "delivery_mode": int,
    "priority": int,
    "correlation_id": str,
    "reply_to": str,
    "expiration": str,
    "message_id": str,
    "timestamp": int,
    "type": str,
    "user_id": str,
    "app_id": str,
}


def _encode(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, datetime):
        return {"$timestamp": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)  # pika's long
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1:
            ((tag, inner),) = value.items()
            if tag == "$bytes" and isinstance(inner, str):
                return base64.b64decode(inner, validate=True)
            if tag == "$timestamp" and isinstance(inner, str):
                stamp = datetime.fromisoformat(inner)
                return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
            if tag == "$decimal" and isinstance(inner, str):
                return Decimal(inner)
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def line_from_envelope(env: Envelope) -> str:
    """One JSON line (no newline) for a received message."""
    record: dict[str, Any] = {}
    try:
        record["body"] = env.body.decode("utf-8")
    except UnicodeDecodeError:
        record["body_base64"] = base64.b64encode(env.body).decode("ascii")
    record["properties"] = _encode(env.properties.as_dict())
    record["exchange"] = env.exchange
    record["routing_key"] = env.routing_key
    record["redelivered"] = env.redelivered
    return json_visible(json.dumps(record, ensure_ascii=False))


def envelope_from_line(line: str, where: str) -> Envelope:
    """The message a line describes (exchange and routing key as recorded)."""
    try:
        record = json.loads(line)
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
        if "body_base64" in record:
            body = base64.b64decode(str(record["body_base64"]), validate=True)
        else:
            body = str(record.get("body", "")).encode("utf-8", "surrogateescape")
        props = _properties(record.get("properties") or {})
    except (ValueError, TypeError, InvalidOperation) as exc:
        raise UsageError(f"{where}: not an exported message: {exc}") from None
    return Envelope(
        body=body,
        properties=props,
        exchange=str(record.get("exchange", "")),
        routing_key=str(record.get("routing_key", "")),
    )


def _properties(raw: Any) -> Properties:
    if not isinstance(raw, dict):
        raise ValueError("properties is not an object")
    props = Properties()
    for name, value in raw.items():
        if name == "headers":
            headers = _decode(value)
            if not isinstance(headers, dict):
                raise ValueError("headers is not an object")
            props.headers = headers
            continue
        kind = _PROPERTY_TYPES.get(name)
        if kind is None:
            raise ValueError(f"unknown property {name!r}")
        if value is not None and not (isinstance(value, kind) and not isinstance(value, bool)):
            raise ValueError(f"property {name!r} should be {kind.__name__}")
        setattr(props, name, value)
    return props
