"""JSON bodies are read through orjson where that cannot change the answer: every body must give
exactly what the json module path gives (same values, same types, same errors)."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amqptool.codec import serialization
from amqptool.codec.serialization import json_dumps, loads
from amqptool.errors import DecodeError


def both_ways(body: bytes) -> tuple[tuple[str, Any], tuple[str, Any]]:
    def run(fn: Any) -> tuple[str, Any]:
        try:
            return "ok", fn(body)
        except DecodeError as exc:
            return "error", type(exc)

    return run(serialization._json_load_bytes), run(serialization._json_load_bytes_slow)


def same(a: Any, b: Any) -> bool:
    """Equal, with the same types all the way down (1 is not 1.0, nan is nan)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (
            a == b and math.copysign(1, a) == math.copysign(1, b)
        )
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def check(body: bytes) -> None:
    fast, slow = both_ways(body)
    assert fast[0] == slow[0], body
    assert same(fast[1], slow[1]), body


EDGES = [
    b'{"a": 1, "a": 2}',
    b"123456789012345678901234567890",  # beyond 64 bits: exact int, not a float
    b"-9223372036854775809",
    b"[18446744073709551616, 9223372036854775807]",
    b"[NaN, Infinity, -Infinity]",
    b"1e400",
    b'"\\ud800"',  # a lone surrogate
    b'{"\\u005f_type__": "uuid", "__value__": {"hex": "' + b"0a" * 16 + b'"}}',  # escaped key
    b'{"__type__": "decimal", "__value__": "1.5"}',
    b"\xef\xbb\xbf[1]",  # a UTF-8 BOM
    b'["\xff"]',  # not UTF-8
    b"[1]\x00",
    b"",
    b"   ",
    b'"a\nb"',  # a raw control character in a string
    b"[1.0, -0.0, 0.1, 1e-400, 5e-324]",
    b'{"a": [true, false, null, {"b": []}]}',
    b"[" * 5000 + b"]" * 5000,  # deeper than orjson goes
    '["caf\u00e9"]'.encode(),
]


@pytest.mark.parametrize("body", EDGES)
def test_edge_cases_read_the_same_both_ways(body: bytes) -> None:
    check(body)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(json_values, st.booleans())
def test_whatever_python_writes_is_read_the_same_both_ways(value: Any, ascii_only: bool) -> None:
    check(json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass"))


@settings(max_examples=400, deadline=None)
@given(json_values, st.data())
def test_damaged_bodies_fail_or_read_the_same_both_ways(value: Any, data: st.DataObject) -> None:
    body = bytearray(json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    for _ in range(data.draw(st.integers(1, 3))):
        if body:
            i = data.draw(st.integers(0, len(body) - 1))
            body[i] = data.draw(st.integers(0, 255))
    check(bytes(body))


def test_tagged_values_still_come_back_as_objects() -> None:
    value = {
        "when": datetime(2026, 12, 7, 15, 0, tzinfo=UTC),
        "id": uuid.UUID(int=7),
        "amount": Decimal("1.50"),
        "raw": b"\x00\x01",
    }
    assert loads(json_dumps(value).encode(), "application/json") == value


def test_a_big_integer_argument_stays_exact() -> None:
    body = json.dumps([[2**70, -(2**65)], {}, {}]).encode()
    assert loads(body, "application/json") == [[2**70, -(2**65)], {}, {}]
