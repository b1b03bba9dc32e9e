"""Pre-encoded result properties (:mod:`amqptool.codec.wire`): the same bytes as the transport.

A prefork child encodes its result's properties; the broker thread writes those bytes as they
are. They must be exactly what :func:`~amqptool.transport.properties.pika_properties` would have
written for the same :class:`Properties`, survive the pipe (pickle), and decode back.
"""

from __future__ import annotations

import pickle
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from amqptool.codec.envelope import Envelope, Properties
from amqptool.codec.results import encode_result, result_body
from amqptool.codec.wire import WireEnvelope, decode_properties, encode_properties, prepare
from amqptool.transport.frames import publish_frames
from amqptool.transport.properties import pika_properties

short = st.text(max_size=40).filter(lambda s: len(s.encode()) <= 255)
octet = st.integers(min_value=0, max_value=255)


@settings(max_examples=80, deadline=None)
@given(
    content_type=st.none() | short,
    content_encoding=st.none() | short,
    delivery_mode=st.none() | octet,
    priority=st.none() | octet,
    correlation_id=st.none() | short,
    reply_to=st.none() | short,
    expiration=st.none() | short,
    message_id=st.none() | short,
    timestamp=st.none() | st.integers(min_value=0, max_value=2**63),
    type=st.none() | short,
    user_id=st.none() | short,
    app_id=st.none() | short,
)
def test_encoded_properties_are_the_transports_bytes(**fields: Any) -> None:
    props = Properties(**fields)
    wire = encode_properties(props)
    assert wire == b"".join(pika_properties(props).encode())
    back = decode_properties(wire)
    assert back.content_type == (props.content_type or "application/octet-stream")
    assert back.content_encoding == (props.content_encoding or "binary")
    for name in ("delivery_mode", "priority", "correlation_id", "reply_to", "timestamp", "app_id"):
        assert getattr(back, name) == getattr(props, name)


def test_a_result_travels_as_its_wire_form_and_publishes_the_same_frames() -> None:
    tid = "0f8c3b5e-6f7d-4a53-9e2e-3d4b5c6d7e8f"
    env = encode_result(result_body(tid, "SUCCESS", [1, 2.5]), reply_to="r-1", correlation_id=tid)
    prepared = prepare(env)
    assert type(prepared) is WireEnvelope
    copy = pickle.loads(pickle.dumps(prepared, pickle.HIGHEST_PROTOCOL))
    assert "properties" not in vars(copy)  # not decoded until something asks for it
    assert (copy.body, copy.exchange, copy.routing_key) == (env.body, "", "r-1")
    expected = publish_frames(5, "", "r-1", False, pika_properties(env.properties), env.body, 100)
    assert publish_frames(5, "", "r-1", False, copy.wire, copy.body, 100) == expected
    assert copy.properties == env.properties  # decoded on demand (e.g. for a too-large result)


def test_messages_with_headers_or_delivery_info_are_left_as_they_are() -> None:
    with_headers = Envelope(b"{}", Properties(headers={"x": 1}), routing_key="q")
    assert prepare(with_headers) is with_headers
    incoming = Envelope(b"{}", Properties(), routing_key="q", delivery_tag=3)
    assert prepare(incoming) is incoming
    long_key = Envelope(b"{}", Properties(correlation_id="x" * 300))
    assert prepare(long_key) is long_key
