"""A short path for whole ``basic.deliver`` messages read by one of our connections.

pika turns every frame in its read buffer into an object, copies the rest of the buffer after
each one (``_trim_frame_buffer``), looks for callbacks registered on it, hands it to its channel
and feeds a content assembler; only when the method, header and body frames of a delivery are
all in does the channel call the consumer. A worker receiving small task messages spends much
of its broker thread in those layers (three frames per task).

:func:`data_reader` reads the buffer itself: when a ``basic.deliver`` method frame, its content
header and its one body frame (or none, for an empty body) are complete in the buffer, it
decodes them at once and calls the channel's ``_on_deliver`` with them, exactly what pika's
assembler calls when it has the same three frames; consumer cancellation, unknown consumers
and ``BlockingChannel``'s deferred dispatch therefore work as before. Every other frame (channel
flow, cancel, returns, closes, heartbeats, confirms, a body split over several frames, anything
that looks wrong) goes through pika's own ``_read_frame`` / ``_process_frame``, one at a time,
in order. Frame and byte counts (which pika's heartbeat checker reads) are kept up to date.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pika.spec

__all__ = ["data_reader", "read_short"]

_METHOD_START = struct.Struct(">BHLHH")  # frame type, channel, size, class id, method id
_FRAME = struct.Struct(">BHL")
_CONTENT_HEADER = struct.Struct(">HHQ")
_Q = struct.Struct(">Q")
_FRAME_END = pika.spec.FRAME_END
_DELIVER = pika.spec.Basic.Deliver
_METHOD, _HEADER, _BODY = pika.spec.FRAME_METHOD, pika.spec.FRAME_HEADER, pika.spec.FRAME_BODY
_BASIC = 60
_NOT_MINE = -1  # let pika read this frame
_WAIT = 0  # a delivery that is not complete yet: wait for more bytes


class _MethodFrame:
    """What ``Channel._on_deliver`` reads of pika's ``frame.Method``."""

    __slots__ = ("channel_number", "method")

    def __init__(self, channel_number: int, method: Any) -> None:
        self.channel_number = channel_number
        self.method = method


class _HeaderFrame:
    """What ``Channel._on_deliver`` reads of pika's ``frame.Header``."""

    __slots__ = ("body_size", "channel_number", "properties")

    def __init__(self, channel_number: int, body_size: int, properties: Any) -> None:
        self.channel_number = channel_number
        self.body_size = body_size
        self.properties = properties


def read_short(buf: bytes, offset: int) -> tuple[str | bytes, int]:
    """An AMQP short string at ``offset``: (text, or the raw bytes when not UTF-8; next offset)."""
    length = buf[offset]
    offset += 1
    raw = buf[offset : offset + length]
    try:
        return raw.decode("utf-8"), offset + length
    except UnicodeDecodeError:
        return raw, offset + length


def data_reader(
    impl: Any, read_frame: Callable[[], tuple[int, Any]], read_properties: Callable[[bytes], Any]
) -> Callable[[bytes], None]:
    """A replacement for ``impl._on_data_available`` (pika's ``Connection``);
    ``read_frame`` is the connection's frame reader for everything else and
    ``read_properties`` decodes the message properties of a content header."""

    parsed: list[Any] = [None, None, None, None]  # channel, method frame, header frame, body

    def deliver(buf: bytes, pos: int, size: int) -> int:
        """A whole delivery at ``pos``: decode it into ``parsed`` and return where it ends;
        or _WAIT, or _NOT_MINE."""
        if size - pos < 11:
            return _NOT_MINE
        _kind, number, length, class_id, method_id = _METHOD_START.unpack_from(buf, pos)
        if class_id != _BASIC or method_id != 60:
            return _NOT_MINE
        channel = impl._channels.get(number)
        if channel is None or channel._content_assembler._method_frame is not None:
            return _NOT_MINE
        m_end = pos + 7 + length
        if m_end >= size:
            return _WAIT
        if buf[m_end] != _FRAME_END:
            return _NOT_MINE
        h = m_end + 1
        if size - h < 7:
            return _WAIT
        kind, h_number, h_length = _FRAME.unpack_from(buf, h)
        if kind != _HEADER or h_number != number or h_length < 14:
            return _NOT_MINE
        h_end = h + 7 + h_length
        if h_end >= size:
            return _WAIT
        if buf[h_end] != _FRAME_END:
            return _NOT_MINE
        h_class, _weight, body_size = _CONTENT_HEADER.unpack_from(buf, h + 7)
        if h_class != _BASIC:
            return _NOT_MINE
        b: int = h_end + 1
        end: int
        frames = 2
        if body_size:
            if size - b < 7:
                return _WAIT
            kind, b_number, b_length = _FRAME.unpack_from(buf, b)
            if kind != _BODY or b_number != number or b_length != body_size:
                return _NOT_MINE  # a body in several frames: pika assembles it
            end = b + 7 + b_length
            if end >= size:
                return _WAIT
            if buf[end] != _FRAME_END:
                return _NOT_MINE
            body = buf[b + 7 : end]
            end += 1
            frames = 3
        else:
            body = b""
            end = b
        offset = pos + 11
        consumer_tag, offset = read_short(buf, offset)
        delivery_tag = _Q.unpack_from(buf, offset)[0]
        redelivered = bool(buf[offset + 8] & 1)
        exchange, offset = read_short(buf, offset + 9)
        routing_key, _ = read_short(buf, offset)
        props = read_properties(buf[h + 19 : h_end])
        impl.frames_received += frames
        impl.bytes_received += end - pos
        parsed[0] = channel
        parsed[1] = _MethodFrame(
            number, _DELIVER(consumer_tag, delivery_tag, redelivered, exchange, routing_key)
        )
        parsed[2] = _HeaderFrame(number, body_size, props)
        parsed[3] = body
        return end

    def on_data_available(data_in: bytes) -> None:
        buf = impl._frame_buffer + data_in if impl._frame_buffer else data_in
        pos = 0
        size = len(buf)
        in_pika = False  # while pika reads a frame, its own buffer handling applies
        try:
            while pos < size:
                if buf[pos] == _METHOD:
                    nxt = deliver(buf, pos, size)
                    if nxt > 0:
                        pos = nxt  # consumed before the callback runs, as pika does
                        channel, method_frame, header_frame, body = parsed
                        channel._on_deliver(method_frame, header_frame, body)
                        continue
                    if nxt == _WAIT:
                        break
                in_pika = True
                impl._frame_buffer = buf[pos:] if pos else buf
                consumed, value = read_frame()
                if not value:
                    return
                impl._trim_frame_buffer(consumed)
                impl._process_frame(value)
                in_pika = False
                buf = impl._frame_buffer
                pos = 0
                size = len(buf)
        except BaseException:
            if not in_pika:  # leave the buffer as pika would: from the first unread frame
                impl._frame_buffer = buf[pos:] if pos else buf
            raise
        impl._frame_buffer = buf[pos:] if pos else buf

    return on_data_available
