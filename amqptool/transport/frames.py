"""How our own connections read and write message properties, without patching pika.

pika's header-table codec truncates AMQP ``d``/``f`` fields to integers and cannot write a
Python ``float`` at all, while Celery's headers carry floats (``timelimit: [2.5, None]``); it
is also slow on the twenty-odd headers of a task message. Instead of replacing pika's
module-level functions (which would change pika for every user of it in the process, task code
included), our connections use their own codec for message properties:

- :class:`AmqpProperties`: a ``pika.BasicProperties`` whose ``encode``/``decode`` keep floats
  (written as ``d``) and read tables with :func:`amqptool.transport.fasttable.decode_table`;
  :func:`~amqptool.transport.connection.pika_properties` builds these for every publish;
- :func:`read_own_frames`: installed on one of our connections, it decodes content-header
  frames into :class:`AmqpProperties` (every other frame goes to pika's own decoder), and
  whole ``basic.deliver`` messages in one step (:mod:`amqptool.transport.deliveries`).

pika itself is left as it is: a plain ``pika.BlockingConnection`` in the same process encodes
and decodes exactly as stock pika does (a test runs one inside a task to check).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pika.compat
import pika.data
import pika.exceptions
import pika.frame
import pika.spec
from pika.adapters.blocking_connection import BlockingConnection

from amqptool.codec.wire import PROPERTY_FIELDS
from amqptool.transport.deliveries import data_reader, read_short
from amqptool.transport.fasttable import decode_table

__all__ = ["AmqpProperties", "encode_table", "publish", "publish_frames", "read_own_frames"]

_FRAME = struct.Struct(">BHL")
_CONTENT_HEADER = struct.Struct(">HHQ")
_B = struct.Struct("B")
_H = struct.Struct(">H")
_Q = struct.Struct(">Q")
_FRAME_END = pika.spec.FRAME_END
_BASIC = pika.spec.BasicProperties.INDEX


def _encode_value(pieces: list[bytes], value: Any) -> int:
    if isinstance(value, float):
        pieces.append(struct.pack(">cd", b"d", value))
        return 9
    if isinstance(value, dict):
        pieces.append(b"F")
        return 1 + encode_table(pieces, value)
    if isinstance(value, list | tuple):
        items: list[bytes] = []
        for item in value:
            _encode_value(items, item)
        piece = b"".join(items)
        pieces.append(struct.pack(">cI", b"A", len(piece)))
        pieces.append(piece)
        return 5 + len(piece)
    size: int = pika.data.encode_value(pieces, value)  # every other type as pika writes it
    return size


def encode_table(pieces: list[bytes], table: dict[str, Any] | None) -> int:
    """pika's ``encode_table``, but floats (at any depth) are written as AMQP doubles."""
    buf = bytearray()
    _put_table(buf, table)
    pieces.append(bytes(buf))
    return len(buf)


# The types of a Celery header table, written straight into one buffer: the same bytes as
# pika.data.encode_value (str "S", None "V", int "I"/"l", bool "t", dict "F", list "A") plus floats
# as "d". Anything else (bytes, Decimal, datetime, subclasses) goes through _encode_value.
_U32 = struct.Struct(">I").pack
_INT = struct.Struct(">ci").pack
_LONG = struct.Struct(">cq").pack
_2_31 = 1 << 31
_DOUBLE = struct.Struct(">cd").pack


# Encoded entries, reused: a key's length-prefixed name, and whole ``key: value`` entries for
# None, bool and int values (most of a task message's twenty headers are the same from one
# message to the next). Bounded: cleared when full, so odd keys cannot grow them for ever.
_KEYS: dict[str, bytes] = {}
_SCALARS: dict[tuple[str, Any, type], bytes] = {}  # the type too: True == 1 as a dict key
_CACHE_MAX = 2048


def _key_bytes(key: Any) -> bytes:
    name = key.encode() if type(key) is str else pika.compat.as_bytes(key)
    if len(name) > 255:
        raise pika.exceptions.ShortStringTooLong(name)
    return bytes((len(name),)) + name


def _put_table(buf: bytearray, table: dict[str, Any] | None) -> None:
    at = len(buf)
    buf += b"\0\0\0\0"  # the size, filled in below
    if table:
        keys, scalars = _KEYS, _SCALARS
        for key, value in table.items():
            kind = type(value)
            if value is None or kind is int or kind is bool:
                entry = (key, value, kind)
                if type(key) is str and (done := scalars.get(entry)) is not None:
                    buf += done
                    continue
                start = len(buf)
                buf += _key_bytes(key)
                _put(buf, value)
                if type(key) is str:
                    if len(scalars) >= _CACHE_MAX:
                        scalars.clear()
                    scalars[entry] = bytes(buf[start:])
                continue
            if type(key) is str and (name := keys.get(key)) is not None:
                buf += name
            else:
                name = _key_bytes(key)
                if type(key) is str:
                    if len(keys) >= _CACHE_MAX:
                        keys.clear()
                    keys[key] = name
                buf += name
            if kind is str:
                data = value.encode()
                buf += b"S"
                buf += _U32(len(data))
                buf += data
            else:
                _put(buf, value)
    buf[at : at + 4] = _U32(len(buf) - at - 4)


def _put(buf: bytearray, value: Any) -> None:
    kind = type(value)
    if kind is str:
        data = value.encode()
        buf += b"S"
        buf += _U32(len(data))
        buf += data
    elif value is None:
        buf += b"V"
    elif kind is int:
        buf += _INT(b"I", value) if -_2_31 <= value < _2_31 else _LONG(b"l", value)
    elif kind is bool:
        buf += b"t\x01" if value else b"t\x00"
    elif kind is float:
        buf += _DOUBLE(b"d", value)
    elif kind is dict:
        buf += b"F"
        _put_table(buf, value)
    elif kind is list or kind is tuple:
        buf += b"A"
        at = len(buf)
        buf += b"\0\0\0\0"
        for item in value:
            _put(buf, item)
        buf[at : at + 4] = _U32(len(buf) - at - 4)
    else:
        pieces: list[bytes] = []
        _encode_value(pieces, value)
        buf += b"".join(pieces)


_FIELDS = PROPERTY_FIELDS  # wire order, shared with the codec's encoder


class AmqpProperties(pika.spec.BasicProperties):  # type: ignore[misc]  # pika is untyped
    """Message properties whose header table keeps floats (and decodes fast)."""

    @classmethod
    def read(cls, encoded: bytes) -> AmqpProperties:
        """Decode a new instance (``decode`` sets every field: no ``__init__`` needed)."""
        props: AmqpProperties = object.__new__(cls)
        return props.decode(encoded)

    def decode(self, encoded: bytes, offset: int = 0) -> AmqpProperties:
        flags = 0
        word = 0
        while True:
            partial = _H.unpack_from(encoded, offset)[0]
            offset += 2
            flags |= partial << (word * 16)
            if not partial & 1:
                break
            word += 1
        for name, flag, kind in _FIELDS:
            value: Any = None
            if flags & flag:
                if kind == "s":
                    value, offset = read_short(encoded, offset)
                elif kind == "t":
                    value, offset = decode_table(encoded, offset)
                elif kind == "o":
                    value = encoded[offset]
                    offset += 1
                else:
                    value = _Q.unpack_from(encoded, offset)[0]
                    offset += 8
            setattr(self, name, value)
        return self

    def encode(self) -> list[bytes]:
        """pika's bytes (one buffer rather than a piece per field), floats kept as doubles."""
        buf = bytearray()
        flags = 0
        for name, flag, kind in _FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            flags |= flag
            if kind == "s":
                if type(value) is str:
                    data = value.encode()
                elif isinstance(value, str | bytes):
                    data = pika.compat.as_bytes(value)
                else:
                    raise AssertionError(f"A non-string value was supplied for self.{name}")
                if len(data) > 255:
                    raise pika.exceptions.ShortStringTooLong(data)
                buf.append(len(data))
                buf += data
            elif kind == "t":
                _put_table(buf, value)
            elif kind == "o":
                buf += _B.pack(value)
            else:
                buf += _Q.pack(value)
        flag_pieces = []
        while True:
            remainder = flags >> 16
            partial = flags & 0xFFFE
            if remainder:
                partial |= 1
            flag_pieces.append(_H.pack(partial))
            flags = remainder
            if not flags:
                break
        flag_pieces.append(bytes(buf))
        return flag_pieces


_PUBLISH_HEAD = struct.Struct(">BHLLH").pack  # frame type, channel, size; Basic.Publish, ticket
_HEADER_HEAD = struct.Struct(">BHLHxxQ").pack  # frame type, channel, size; class, weight, size
_PUBLISH = pika.spec.Basic.Publish.INDEX
_END = bytes((pika.spec.FRAME_END,))


def _short_bytes(value: str | bytes) -> bytes:
    data = value.encode() if type(value) is str else pika.compat.as_bytes(value)
    if len(data) > 255:
        raise pika.exceptions.ShortStringTooLong(data)
    return data


def publish_frames(
    channel: int,
    exchange: str,
    routing_key: str,
    mandatory: bool,
    props: AmqpProperties | bytes,
    body: bytes,
    body_max: int,
) -> list[bytes]:
    """The frames of one ``basic.publish``, byte for byte as pika marshals them (a method
    frame, a header frame, the body in frames of at most ``body_max`` bytes), built without
    pika's per-frame objects. ``props``: pika properties, or their encoded bytes (a
    :class:`~amqptool.codec.wire.WireEnvelope`'s ``wire``)."""
    ex = _short_bytes(exchange)
    key = _short_bytes(routing_key)
    args = b"%c%b%c%b%c" % (len(ex), ex, len(key), key, 1 if mandatory else 0)
    frames = [_PUBLISH_HEAD(1, channel, 6 + len(args), _PUBLISH, 0) + args + _END]
    encoded = props if isinstance(props, bytes) else b"".join(props.encode())
    frames.append(_HEADER_HEAD(2, channel, 12 + len(encoded), _BASIC, len(body)) + encoded + _END)
    for start in range(0, len(body), body_max):
        chunk = body[start : start + body_max]
        frames.append(_FRAME.pack(3, channel, len(chunk)) + chunk + _END)
    return frames


def publish(
    channel: Any, exchange: str, routing_key: str, body: bytes, props: Any, mandatory: bool
) -> None:
    """``channel.basic_publish`` (a pika ``Channel``) through :func:`publish_frames`: the same
    frames and checks (channel open, connection not closed), less of pika's machinery."""
    channel._raise_if_not_open()
    conn = channel.connection
    if conn.is_closed:
        raise pika.exceptions.ConnectionWrongStateError("the connection is closed")
    frames = publish_frames(
        channel.channel_number,
        exchange,
        routing_key,
        mandatory,
        props,
        body,
        conn._body_max_length,
    )
    conn._output_marshaled_frames(frames)


def _frame_reader(impl: Any) -> Callable[[], tuple[int, Any]]:
    decode_frame = pika.frame.decode_frame

    def read_frame() -> tuple[int, Any]:
        data = impl._frame_buffer
        if len(data) < 7 or data[0] != pika.spec.FRAME_HEADER:
            return decode_frame(data)  # type: ignore[no-any-return]  # pika is untyped
        _kind, channel, size = _FRAME.unpack_from(data, 0)
        end = 7 + size + 1
        if end > len(data):
            return 0, None
        if data[end - 1] != _FRAME_END:
            raise pika.exceptions.InvalidFrameError("Invalid FRAME_END marker")
        class_id, _weight, body_size = _CONTENT_HEADER.unpack_from(data, 7)
        if class_id != _BASIC:
            return decode_frame(data)  # type: ignore[no-any-return]  # pika is untyped
        props = AmqpProperties.read(data[19 : end - 1])
        return end, pika.frame.Header(channel, body_size, props)

    return read_frame


def read_own_frames(conn: BlockingConnection) -> None:
    """Make this one connection decode message properties with :class:`AmqpProperties`, and
    whole deliveries without pika's per-frame layers (:mod:`amqptool.transport.deliveries`)."""
    impl = conn._impl
    impl._read_frame = _frame_reader(impl)
    impl._on_data_available = data_reader(impl, impl._read_frame, AmqpProperties.read)
