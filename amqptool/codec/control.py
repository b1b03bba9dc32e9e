"""Remote control (pidbox) requests and replies, Celery 5 format (§4)."""

from __future__ import annotations

import fnmatch
import re
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from amqptool.codec.envelope import Envelope, Properties
from amqptool.codec.serialization import DEFAULT_ACCEPT, dumps, loads
from amqptool.errors import DecodeError

__all__ = [
    "CONTROL_EXCHANGE",
    "REPLY_EXCHANGE",
    "ControlRequest",
    "decode_reply",
    "decode_request",
    "encode_reply",
    "encode_request",
    "node_queue_name",
    "reply_queue_name",
]

CONTROL_EXCHANGE = "celery.pidbox"
REPLY_EXCHANGE = "reply.celery.pidbox"
QUEUE_ARGUMENTS: dict[str, Any] = {"x-message-ttl": 300000, "x-expires": 10000}


def node_queue_name(nodename: str, exchange: str = CONTROL_EXCHANGE) -> str:
    return f"{nodename}.{exchange}"


def reply_queue_name(oid: str, exchange: str = REPLY_EXCHANGE) -> str:
    return f"{oid}.{exchange}"


@dataclass
class ControlRequest:
    method: str
    arguments: dict[str, Any] = field(default_factory=dict)
    destination: list[str] | None = None
    pattern: str | None = None
    matcher: str | None = None
    ticket: str | None = None
    reply_to: dict[str, str] | None = None

    @property
    def wants_reply(self) -> bool:
        return bool(self.reply_to and self.ticket)

    def matches(self, nodename: str) -> bool:
        """Whether a node should run this request (§4.3 step 2)."""
        if self.destination:
            return nodename in self.destination
        if self.pattern and self.matcher:
            if self.matcher == "pcre":
                try:
                    return re.search(self.pattern, nodename) is not None
                except re.error:
                    return False
            return fnmatch.fnmatchcase(nodename, self.pattern)
        if self.pattern:  # a pattern without a matcher: glob, Celery's default matcher
            return fnmatch.fnmatchcase(nodename, self.pattern)
        return True


def encode_request(
    req: ControlRequest,
    *,
    clock: int = 0,
    expires: float | None = None,
    exchange: str = CONTROL_EXCHANGE,
) -> Envelope:
    body: dict[str, Any] = {
        "method": req.method,
        "arguments": dict(req.arguments),
        "destination": list(req.destination) if req.destination else None,
        "pattern": req.pattern,
        "matcher": req.matcher,
    }
    if req.ticket and req.reply_to:
        body["ticket"] = req.ticket
        body["reply_to"] = dict(req.reply_to)
    data, ctype, cenc = dumps(body, "json")
    headers: dict[str, Any] = {"clock": int(clock)}
    if expires is not None:
        headers["expires"] = int(expires)  # ints only: pika cannot write float headers
    props = Properties(
        content_type=ctype, content_encoding=cenc, delivery_mode=2, priority=0, headers=headers
    )
    return Envelope(body=data, properties=props, exchange=exchange, routing_key="")


def new_request(
    method: str,
    arguments: Mapping[str, Any] | None = None,
    *,
    destination: Sequence[str] | None = None,
    pattern: str | None = None,
    matcher: str | None = None,
    reply_oid: str | None = None,
    reply_exchange: str = REPLY_EXCHANGE,
) -> ControlRequest:
    return ControlRequest(
        method=method,
        arguments=dict(arguments or {}),
        destination=list(destination) if destination else None,
        pattern=pattern,
        matcher=matcher,
        ticket=str(uuid.uuid4()) if reply_oid else None,
        reply_to={"exchange": reply_exchange, "routing_key": reply_oid} if reply_oid else None,
    )


def decode_request(env: Envelope, *, accept: Collection[str] = DEFAULT_ACCEPT) -> ControlRequest:
    body = loads(
        env.body, env.properties.content_type, env.properties.content_encoding, accept=accept
    )
    if not isinstance(body, Mapping):
        raise DecodeError("control request is not an object")
    if "control" in body and isinstance(body["control"], Mapping):  # Celery 1.0 format
        old = dict(body["control"])
        method = old.pop("command", None)
        dest = old.pop("destination", None)
        reply_to = old.pop("reply_to", None)
        body = {
            "method": method,
            "arguments": old,
            "destination": dest,
            "ticket": reply_to.get("routing_key") if isinstance(reply_to, Mapping) else None,
            "reply_to": reply_to,
        }
    method = body.get("method")
    if not isinstance(method, str) or not method:
        raise DecodeError("control request has no method")
    args = body.get("arguments") or {}
    if not isinstance(args, Mapping):
        raise DecodeError("control request arguments are not an object")
    dest = body.get("destination")
    if isinstance(dest, str):
        dest = [dest]
    if dest is not None and not isinstance(dest, list):
        raise DecodeError("control request destination is not a list")
    reply_to = body.get("reply_to")
    return ControlRequest(
        method=method,
        arguments={str(k): v for k, v in args.items()},
        destination=[str(d) for d in dest] if dest else None,
        pattern=body.get("pattern") if isinstance(body.get("pattern"), str) else None,
        matcher=body.get("matcher") if isinstance(body.get("matcher"), str) else None,
        ticket=str(body["ticket"]) if body.get("ticket") else None,
        reply_to=dict(reply_to) if isinstance(reply_to, Mapping) else None,
    )


def encode_reply(
    nodename: str, reply: Any, *, ticket: str, clock: int, reply_to: Mapping[str, str]
) -> Envelope:
    data, ctype, cenc = dumps({nodename: reply}, "json")
    props = Properties(
        content_type=ctype,
        content_encoding=cenc,
        delivery_mode=1,
        priority=0,
        headers={"ticket": ticket, "clock": int(clock)},
    )
    return Envelope(
        body=data,
        properties=props,
        exchange=str(reply_to.get("exchange", "")),
        routing_key=str(reply_to.get("routing_key", "")),
    )


def decode_reply(env: Envelope, *, accept: Collection[str] = DEFAULT_ACCEPT) -> dict[str, Any]:
    body = loads(
        env.body, env.properties.content_type, env.properties.content_encoding, accept=accept
    )
    if not isinstance(body, dict):
        raise DecodeError("control reply is not an object {node: reply}")
    return {str(k): v for k, v in body.items()}
