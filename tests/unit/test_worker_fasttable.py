"""The worker's header-table decoder gives exactly what pika's (with the float fix) gives."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pika.data
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amqptool.codec.tasks import TaskMessage, encode_task
from amqptool.transport import fasttable, pikapatch

pikapatch.install()


def pika_decode(data: bytes) -> Any:
    """pika's own decoder (with pikapatch's float fix), nested tables included."""
    current = pika.data.decode_table
    pika.data.decode_table = fasttable.PIKA_DECODE_TABLE
    try:
        return pika.data.decode_table(data, 0)
    finally:
        pika.data.decode_table = current


def encode(table: dict[str, Any]) -> bytes:
    pieces: list[bytes] = []
    pika.data.encode_table(pieces, table)
    return b"".join(pieces)


keys = st.text(max_size=20).filter(lambda k: len(k.encode()) <= 255)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.binary(max_size=30),
    st.decimals(min_value=-(10**6), max_value=10**6, places=2, allow_nan=False),
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1)).map(
        lambda d: d.replace(microsecond=0, tzinfo=UTC)
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(keys, values, max_size=8))
def test_any_table_decodes_like_pika(table: dict[str, Any]) -> None:
    data = encode(table)
    assert fasttable.decode_table(data, 0) == pika_decode(data)


def test_a_celery_header_table_round_trips() -> None:
    env = encode_task(TaskMessage(task="peer.add", args=[1, 2], time_limit=2.5))
    decoded, end = fasttable.decode_table(encode(env.headers), 0)
    assert decoded == env.headers and end == len(encode(env.headers))
    assert decoded["timelimit"] == [2.5, None]


def test_an_unknown_field_type_is_pikas_error() -> None:
    bad = b"\x00\x00\x00\x03\x01kZ"
    with pytest.raises(pika.exceptions.InvalidFieldTypeException):
        fasttable.decode_table(bad, 0)


def test_non_utf8_strings_stay_bytes_as_in_pika() -> None:
    table = {"k": b"\xff\xfe"}
    data = encode(table)
    assert fasttable.decode_table(data, 0)[0] == pika_decode(data)[0]
    assert Decimal("1.5") == fasttable.decode_table(encode({"d": Decimal("1.5")}), 0)[0]["d"]
