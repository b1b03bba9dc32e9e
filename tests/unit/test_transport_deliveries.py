"""The short path for whole deliveries hands the channel exactly what pika's own path does.

A byte stream mixing deliveries (small body, empty body, a body in two frames, one for a channel
we do not have, one whose consumer channel is mid-message) with other frames (a method pika
handles, a heartbeat) is fed in pieces of every size; whatever the split, the channel must see
the same deliveries and other frames in the same order as when pika reads every frame itself,
and the byte and frame counts that pika's heartbeat checker reads must match.
"""

from __future__ import annotations

from typing import Any

import pika.channel
import pika.frame
import pika.spec
import pytest

from amqptool.transport.deliveries import data_reader
from amqptool.transport.frames import AmqpProperties, _frame_reader
from amqptool.transport.properties import envelope_from_pika


class FakeChannel:
    def __init__(self, number: int, seen: list[Any]) -> None:
        self.number = number
        self.seen = seen
        self._content_assembler = pika.channel.ContentFrameAssembler()

    def _on_deliver(self, method_frame: Any, header_frame: Any, body: bytes) -> None:
        m, p = method_frame.method, header_frame.properties
        self.seen.append(
            (
                "deliver",
                self.number,
                m.consumer_tag,
                m.delivery_tag,
                m.redelivered,
                m.exchange,
                m.routing_key,
                p.content_type,
                p.headers,
                p.correlation_id,
                bytes(body),
            )
        )


class FakeImpl:
    """The parts of pika's Connection that the reader uses; ``_process_frame`` does what
    pika does with the frames of a delivery (assemble, then ``_on_deliver``)."""

    def __init__(self, channels: tuple[int, ...]) -> None:
        self.seen: list[Any] = []
        self._channels = {n: FakeChannel(n, self.seen) for n in channels}
        self._frame_buffer = b""
        self.frames_received = 0
        self.bytes_received = 0
        self.through_pika = 0  # frames given to _process_frame

        self._read_frame = _frame_reader(self)  # what our connections read other frames with

    def _trim_frame_buffer(self, count: int) -> None:
        self._frame_buffer = self._frame_buffer[count:]
        self.bytes_received += count

    def _process_frame(self, value: Any) -> None:
        self.frames_received += 1
        self.through_pika += 1
        if isinstance(value, pika.frame.Heartbeat):
            self.seen.append(("heartbeat",))
            return
        is_deliver = isinstance(value, pika.frame.Method) and isinstance(
            value.method, pika.spec.Basic.Deliver
        )
        if isinstance(value, pika.frame.Method) and not is_deliver:
            self.seen.append(("method", value.channel_number, value.method.NAME))
            return
        channel = self._channels.get(value.channel_number)
        if channel is None:
            self.seen.append(("unknown channel", value.channel_number))
            return
        done = channel._content_assembler.process(value)
        if done:
            channel._on_deliver(*done)


def deliver(channel: int, tag: int, body: bytes, *, split: int = 0) -> bytes:
    method = pika.spec.Basic.Deliver("ctag-é", tag, tag % 2 == 0, "ex", "rk")
    props = AmqpProperties(
        content_type="application/json",
        headers={"id": f"id-{tag}", "timelimit": [2.5, None], "n": tag},
        correlation_id=f"c{tag}",
    )
    frames = [
        pika.frame.Method(channel, method).marshal(),
        pika.frame.Header(channel, len(body), props).marshal(),
    ]
    pieces = [body[:split], body[split:]] if split else ([body] if body else [])
    frames += [pika.frame.Body(channel, piece).marshal() for piece in pieces]
    return b"".join(frames)


STREAM = b"".join(
    [
        deliver(1, 1, b"[[1, 2], {}, {}]"),
        deliver(1, 2, b""),
        pika.frame.Method(1, pika.spec.Basic.CancelOk("ctag-é")).marshal(),
        pika.frame.Heartbeat().marshal(),
        deliver(1, 3, b"x" * 300, split=100),  # two body frames: pika assembles it
        deliver(5, 4, b"nobody"),  # no such channel: pika's path (it logs and drops)
        deliver(3, 5, b"other channel"),
        deliver(1, 6, bytes(range(256))),
    ]
)
FRAMES = 20


def feed(impl: FakeImpl, stream: bytes, piece: int, *, short_path: bool) -> None:
    reader = data_reader(impl, impl._read_frame, AmqpProperties.read) if short_path else None
    for at in range(0, len(stream), piece):
        chunk = stream[at : at + piece]
        if reader is not None:
            reader(chunk)
        else:  # pika's own loop (Connection._on_data_available)
            impl._frame_buffer += chunk
            while impl._frame_buffer:
                consumed, value = impl._read_frame()
                if not value:
                    break
                impl._trim_frame_buffer(consumed)
                impl._process_frame(value)


def pikas_reading() -> FakeImpl:
    impl = FakeImpl((1, 3))
    feed(impl, STREAM, len(STREAM), short_path=False)
    return impl


@pytest.mark.parametrize("piece", [1, 2, 3, 7, 11, 64, 100, 333, len(STREAM)])
def test_any_split_gives_the_channels_what_pika_gives_them(piece: int) -> None:
    expected = pikas_reading()
    impl = FakeImpl((1, 3))
    feed(impl, STREAM, piece, short_path=True)
    assert impl.seen == expected.seen
    assert [e[0] for e in impl.seen].count("deliver") == 5
    # the four one-frame-body deliveries on known channels took the short path (11 frames)
    assert (impl.through_pika, expected.through_pika) == (FRAMES - 11, FRAMES)
    assert impl.bytes_received == len(STREAM) == expected.bytes_received
    assert impl.frames_received == FRAMES == expected.frames_received
    assert impl._frame_buffer == b""


def test_a_delivery_after_a_half_read_one_waits_for_its_rest() -> None:
    impl = FakeImpl((1,))
    one = deliver(1, 7, b"body")
    reader = data_reader(impl, impl._read_frame, AmqpProperties.read)
    reader(one[:-1])
    assert impl.seen == [] and impl._frame_buffer == one[:-1]
    reader(one[-1:])
    assert [e[3] for e in impl.seen] == [7]


def test_a_channel_mid_message_gets_its_frames_through_pika() -> None:
    impl = FakeImpl((1,))
    # pika's assembler holds a method frame whose content has not come: what follows on that
    # channel is pika's to sort out, frame by frame
    impl._channels[1]._content_assembler.process(
        pika.frame.Method(1, pika.spec.Basic.Deliver("t", 1, False, "", ""))
    )
    reader = data_reader(impl, impl._read_frame, AmqpProperties.read)
    reader(deliver(1, 2, b"body"))
    assert impl.through_pika == 3
    assert [e[3] for e in impl.seen] == [2]


def test_a_delivery_becomes_the_envelope_the_general_mapping_makes() -> None:
    fields: dict[str, Any] = {
        "content_type": "application/json",
        "content_encoding": "utf-8",
        "headers": {"id": "x", "timelimit": [2.5, None]},
        "delivery_mode": 2,
        "priority": 3,
        "correlation_id": "c",
        "reply_to": "r",
        "expiration": "60000",
        "message_id": "m",
        "timestamp": 1700000000,
        "type": "t",
        "user_id": "guest",
        "app_id": "a",
    }
    method = pika.spec.Basic.Deliver("ctag", 9, True, "ex", "rk")
    ours = AmqpProperties.read(b"".join(AmqpProperties(**fields).encode()))
    general = pika.spec.BasicProperties(**fields)  # not ours: the getattr mapping
    got = envelope_from_pika(method, ours, b"body")
    assert got == envelope_from_pika(method, general, b"body")
    assert got.properties.headers == fields["headers"] and got.delivery_tag == 9
    empty = AmqpProperties.read(b"".join(AmqpProperties().encode()))
    assert envelope_from_pika(method, empty, b"") == envelope_from_pika(
        method, pika.spec.BasicProperties(), b""
    )


def test_a_callback_that_raises_leaves_the_buffer_after_its_delivery() -> None:
    impl = FakeImpl((1,))
    calls: list[int] = []

    def refuse(method_frame: Any, header_frame: Any, body: bytes) -> None:
        calls.append(method_frame.method.delivery_tag)
        if len(calls) == 1:
            raise RuntimeError("consumer bug")

    impl._channels[1]._on_deliver = refuse  # type: ignore[method-assign]
    reader = data_reader(impl, impl._read_frame, AmqpProperties.read)
    first, second = deliver(1, 1, b"a"), deliver(1, 2, b"b")
    with pytest.raises(RuntimeError):
        reader(first + second)
    assert impl._frame_buffer == second  # the first is consumed, as in pika's own loop
    reader(b"")
    assert calls == [1, 2] and impl._frame_buffer == b""
