"""An Envelope whose AMQP properties are already encoded: cheap to pickle, cheap to publish.

A prefork child builds each task's rpc:// result message; the broker thread (the busiest
thread of the worker, see ``bench/bench_worker.py``) used to unpickle it as an
:class:`~amqptool.codec.envelope.Envelope` with its :class:`~amqptool.codec.envelope.Properties`
(two dataclasses, ~12 µs), then build pika's properties object (~4.5 µs) and encode it and
the frames (~15 µs) for every result. :func:`prepare` moves the properties encoding to the
child: a :class:`WireEnvelope` pickles as four plain values (body, exchange, routing key and
the content-header property bytes), and the transport writes those bytes as they are
(:func:`amqptool.transport.frames.publish_encoded`).

The bytes are exactly what the transport writes for the same :class:`Properties` (content type
and encoding defaulted as ``pika_properties`` does; an empty header table left out). Messages
with headers are not prepared (their table codec lives in the transport): :func:`prepare`
returns them unchanged. ``properties`` is decoded back from the bytes only when something asks
for it (a too-large result being replaced by a FAILURE, a log line), and the object is an
Envelope in every other respect.
"""

from __future__ import annotations

import struct
from typing import Any

from amqptool.codec.envelope import Envelope, Properties

__all__ = ["PROPERTY_FIELDS", "WireEnvelope", "decode_properties", "encode_properties", "prepare"]

# Basic properties in wire order: (attribute, flag, kind) with kind s = short string,
# t = table, o = octet, q = 64-bit timestamp (the transport's decoder reads all of them).
PROPERTY_FIELDS = (
    ("content_type", 1 << 15, "s"),
    ("content_encoding", 1 << 14, "s"),
    ("headers", 1 << 13, "t"),
    ("delivery_mode", 1 << 12, "o"),
    ("priority", 1 << 11, "o"),
    ("correlation_id", 1 << 10, "s"),
    ("reply_to", 1 << 9, "s"),
    ("expiration", 1 << 8, "s"),
    ("message_id", 1 << 7, "s"),
    ("timestamp", 1 << 6, "q"),
    ("type", 1 << 5, "s"),
    ("user_id", 1 << 4, "s"),
    ("app_id", 1 << 3, "s"),
    ("cluster_id", 1 << 2, "s"),
)
# What is encoded here: never headers (a table), nor cluster_id (an Envelope has none).
_FIELDS = tuple(f for f in PROPERTY_FIELDS if f[0] not in ("headers", "cluster_id"))
_H = struct.Struct(">H")
_Q = struct.Struct(">Q")
_HEADERS = 1 << 13


def encode_properties(props: Properties) -> bytes | None:
    """The content-header property bytes (flags, then the fields) the transport would write
    for ``props``; None when it has headers, or a value this encoder does not write."""
    if props.headers:
        return None
    buf = bytearray(b"\0\0")
    flags = 0
    for name, flag, kind in _FIELDS:
        value: Any = getattr(props, name)
        if name == "content_type":
            value = value or "application/octet-stream"
        elif name == "content_encoding":
            value = value or "binary"
        if value is None:
            continue
        flags |= flag
        if kind == "s":
            if type(value) is not str:
                return None
            data = value.encode()
            if len(data) > 255:
                return None
            buf.append(len(data))
            buf += data
        elif kind == "o":
            if type(value) is not int or not 0 <= value <= 255:
                return None
            buf.append(value)
        else:
            if type(value) is not int or not 0 <= value < 1 << 64:
                return None
            buf += _Q.pack(value)
    buf[0:2] = _H.pack(flags)
    return bytes(buf)


def decode_properties(data: bytes) -> Properties:
    """The :class:`Properties` that :func:`encode_properties` wrote as ``data``."""
    flags = _H.unpack_from(data, 0)[0]
    if flags & (_HEADERS | 1):
        raise ValueError("encoded properties with headers or more flag words")
    offset = 2
    values: dict[str, Any] = {}
    for name, flag, kind in _FIELDS:
        if not flags & flag:
            continue
        if kind == "s":
            size = data[offset]
            values[name] = data[offset + 1 : offset + 1 + size].decode()
            offset += 1 + size
        elif kind == "o":
            values[name] = data[offset]
            offset += 1
        else:
            values[name] = _Q.unpack_from(data, offset)[0]
            offset += 8
    return Properties(**values)


class WireEnvelope(Envelope):
    """An outgoing Envelope carrying its encoded properties (:attr:`wire`); see the module doc.

    ``properties`` is decoded on first use. Pickles as ``(body, exchange, routing_key, wire)``.
    """

    wire: bytes

    def __init__(self, body: bytes, exchange: str, routing_key: str, wire: bytes) -> None:
        # no Envelope.__init__: ``properties`` stays unset until __getattr__ decodes it
        self.body = body
        self.exchange = exchange
        self.routing_key = routing_key
        self.wire = wire

    def __getattr__(self, name: str) -> Any:
        if name == "properties":
            props = decode_properties(self.wire)
            self.properties = props
            return props
        raise AttributeError(name)

    def __reduce__(self) -> tuple[Any, ...]:
        return (WireEnvelope, (self.body, self.exchange, self.routing_key, self.wire))


def prepare(env: Envelope) -> Envelope:
    """``env`` as a :class:`WireEnvelope` (properties encoded now), or unchanged when it has
    headers or delivery info (an incoming message) or is one already."""
    if type(env) is not Envelope or env.delivery_tag is not None:
        return env
    wire = encode_properties(env.properties)
    if wire is None:
        return env
    out = WireEnvelope(env.body, env.exchange, env.routing_key, wire)
    out.properties = env.properties  # known already: nothing to decode in this process
    return out
