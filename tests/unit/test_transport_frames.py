"""Our connections' property codec: what pika reads and writes, plus floats, and faster.

:mod:`amqptool.transport.fasttable` must decode any table exactly as pika does, and
:class:`~amqptool.transport.frames.AmqpProperties` must write exactly pika's bytes whenever pika
can write them at all; where pika cannot (a float in a header), it writes an AMQP double that
reads back as the same float.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pika
import pika.data
import pika.frame
import pika.spec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amqptool.codec.tasks import TaskMessage, encode_task
from amqptool.transport import fasttable
from amqptool.transport.frames import AmqpProperties, encode_table, publish_frames


def encode(table: dict[str, Any]) -> bytes:
    pieces: list[bytes] = []
    encode_table(pieces, table)
    return b"".join(pieces)


keys = st.text(max_size=20).filter(lambda k: len(k.encode()) <= 255)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.text(max_size=30),
    st.binary(max_size=30),
    st.decimals(min_value=-(10**6), max_value=10**6, places=2, allow_nan=False),
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1)).map(
        lambda d: d.replace(microsecond=0, tzinfo=UTC)
    ),
)


def nested(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)
        ),
        max_leaves=12,
    )


tables = st.dictionaries(keys, nested(scalars), max_size=8)
tables_with_floats = st.dictionaries(
    keys, nested(st.one_of(scalars, st.floats(allow_nan=False))), max_size=8
)
short = st.text(max_size=20)
octet = st.integers(min_value=0, max_value=255)


@settings(max_examples=50, deadline=None)
@given(tables)
def test_any_table_pika_can_write_is_written_and_read_as_pika_does(table: dict[str, Any]) -> None:
    pieces: list[bytes] = []
    pika.data.encode_table(pieces, table)
    data = b"".join(pieces)
    assert encode(table) == data
    assert fasttable.decode_table(data, 0) == fasttable.PIKA_DECODE_TABLE(data, 0)


@settings(max_examples=50, deadline=None)
@given(tables_with_floats)
def test_floats_at_any_depth_read_back_as_the_same_floats(table: dict[str, Any]) -> None:
    data = encode(table)
    decoded, end = fasttable.decode_table(data, 0)
    assert decoded == table and end == len(data)
    assert kinds(decoded) == kinds(table)  # 2.0 stays a float, 2 an int


def kinds(value: Any) -> Any:
    """The value with each number tagged by its type (so that 2 and 2.0 differ)."""
    if isinstance(value, dict):
        return {k: kinds(v) for k, v in value.items()}
    if isinstance(value, list):
        return [kinds(v) for v in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (type(value).__name__, value)
    return value


@settings(max_examples=50, deadline=None)
@given(
    content_type=st.none() | short,
    headers=st.none() | tables,
    delivery_mode=st.none() | octet,
    priority=st.none() | octet,
    correlation_id=st.none() | short,
    reply_to=st.none() | short,
    timestamp=st.none() | st.integers(min_value=0, max_value=2**63),
    app_id=st.none() | short,
)
def test_properties_are_pikas_bytes_and_decode_as_pika_does(**fields: Any) -> None:
    ours = b"".join(AmqpProperties(**fields).encode())
    assert ours == b"".join(pika.BasicProperties(**fields).encode())
    theirs = pika.BasicProperties().decode(ours)
    assert vars(AmqpProperties().decode(ours)) == vars(theirs)


def test_a_celery_header_table_round_trips_with_its_float_time_limit() -> None:
    env = encode_task(TaskMessage(task="peer.add", args=[1, 2], time_limit=2.5))
    props = AmqpProperties(headers=env.headers, content_type="application/json")
    with pytest.raises(pika.exceptions.UnsupportedAMQPFieldException):
        pika.BasicProperties(headers=env.headers).encode()  # what pika alone would do
    decoded = AmqpProperties().decode(b"".join(props.encode()))
    assert decoded.headers == env.headers
    assert decoded.headers["timelimit"] == [2.5, None]


def test_an_unknown_field_type_is_pikas_error() -> None:
    bad = b"\x00\x00\x00\x03\x01kZ"
    with pytest.raises(pika.exceptions.InvalidFieldTypeException):
        fasttable.decode_table(bad, 0)


def test_non_utf8_strings_stay_bytes_as_in_pika() -> None:
    data = encode({"k": b"\xff\xfe"})
    assert fasttable.decode_table(data, 0)[0] == fasttable.PIKA_DECODE_TABLE(data, 0)[0]
    assert Decimal("1.5") == fasttable.decode_table(encode({"d": Decimal("1.5")}), 0)[0]["d"]


@settings(max_examples=50, deadline=None)
@given(
    channel=st.integers(min_value=1, max_value=2047),
    exchange=short,
    routing_key=short,
    mandatory=st.booleans(),
    headers=st.none() | tables,
    body=st.binary(max_size=300),
    body_max=st.integers(min_value=1, max_value=128),
)
def test_publish_frames_are_the_frames_pika_marshals(
    channel: int,
    exchange: str,
    routing_key: str,
    mandatory: bool,
    headers: dict[str, Any] | None,
    body: bytes,
    body_max: int,
) -> None:
    props = AmqpProperties(content_type="application/json", headers=headers, delivery_mode=2)
    method = pika.spec.Basic.Publish(
        exchange=exchange, routing_key=routing_key, mandatory=mandatory
    )
    theirs = [
        pika.frame.Method(channel, method).marshal(),
        pika.frame.Header(channel, len(body), props).marshal(),
        *(
            pika.frame.Body(channel, body[i : i + body_max]).marshal()
            for i in range(0, len(body), body_max)
        ),
    ]
    ours = publish_frames(channel, exchange, routing_key, mandatory, props, body, body_max)
    assert ours == theirs


def pika_bytes(table: dict[str, Any]) -> bytes:
    pieces: list[bytes] = []
    pika.data.encode_table(pieces, table)
    return b"".join(pieces)


def test_reused_entries_keep_bools_ints_and_none_apart() -> None:
    """Entries are cached by key, value and type: True == 1 as a dict key, but not on the wire."""
    values: list[Any] = [True, 1, False, 0, None, 2**40, -1, 1, True, 0, False]
    for value in values * 2:
        table = {"retries": value, "id": f"x{value}", "nested": {"retries": value}}
        assert encode(table) == pika_bytes(table), value


def test_the_entry_caches_stay_bounded_and_correct_past_their_size() -> None:
    from amqptool.transport import frames

    for i in range(frames._CACHE_MAX * 2 + 5):
        table = {f"k{i}": i, f"s{i}": "v", "flag": i % 2 == 0}
        assert encode(table) == pika_bytes(table)
    assert len(frames._SCALARS) <= frames._CACHE_MAX
    assert len(frames._KEYS) <= frames._CACHE_MAX
