"""Property-based: the codec turns any message into a value or a DecodeError, never a crash.

A consumer (worker, monitor, control client) calls these decoders on whatever arrives from the
broker. The contract is that they return a value or raise ``amqptool.errors.DecodeError`` (or a
subclass): anything else would kill the consumer or leak a traceback. Pickle is left out of the
accepted types here on purpose: it runs code by design (see test_security_codec.py).
"""

from __future__ import annotations

import json
import zlib
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amqptool.codec import control, events, serialization, tasks
from amqptool.codec.envelope import Envelope, Properties
from amqptool.codec.times import utcnow
from amqptool.errors import DecodeError
from worker.policy.eta import is_expired

FUZZ = settings(
    max_examples=250,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

SAFE_ACCEPT = frozenset(
    {"application/json", "application/x-msgpack", "application/x-yaml", "application/data"}
)

# ---------------------------------------------------------------------------- strategies

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),  # NaN and infinities included
    st.text(max_size=20),
)
header_scalars = st.one_of(
    scalars,
    st.binary(max_size=20),
    st.datetimes(timezones=st.just(UTC)),
    st.decimals(allow_nan=False, allow_infinity=False, places=3),
)
jsonish = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
header_values = st.recursive(
    header_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)

TASK_HEADER_KEYS = [
    "task",
    "id",
    "eta",
    "expires",
    "timelimit",
    "retries",
    "group",
    "group_index",
    "root_id",
    "parent_id",
    "shadow",
    "stamps",
    "stamped_headers",
    "replaced_task_nesting",
    "compression",
    "hostname",
    "argsrepr",
    "ignore_result",
]
TIME_VALUES = st.one_of(
    st.datetimes().map(lambda d: d.isoformat()),
    st.floats(),
    st.integers(),
    st.text(max_size=30),
    st.just("2026-11-21T10:00:00Z"),
)


def _header_value(key: str) -> st.SearchStrategy[Any]:
    if key in ("eta", "expires"):
        return st.one_of(TIME_VALUES, TIME_VALUES, header_values)
    if key == "compression":
        return st.sampled_from(["application/x-gzip", "zlib", "bzip2", "lzma", "brotli", "zstd"])
    if key in ("task", "id"):
        return st.text(max_size=12) | header_values
    return header_values


headers = st.dictionaries(
    st.sampled_from(TASK_HEADER_KEYS) | st.text(max_size=10),
    st.just(None),
    max_size=8,
).flatmap(lambda d: st.fixed_dictionaries({k: _header_value(k) for k in d}) if d else st.just({}))

content_types = st.one_of(
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "APPLICATION/JSON",
            "application/x-msgpack",
            "application/msgpack",
            "application/x-yaml",
            "text/yaml",
            "application/data",
            "application/text",
            "application/x-python-serialize",
            "text/plain",
            "",
        ]
    ),
    st.none(),
    st.text(max_size=30),
)
content_encodings = st.one_of(
    st.sampled_from(["utf-8", "binary", "8bit", "latin-1", "idna", "rot13", "base64", "utf-16"]),
    st.none(),
    st.text(max_size=15),
)
tagged = st.fixed_dictionaries(
    {
        "__type__": st.sampled_from(
            ["datetime", "date", "time", "decimal", "uuid", "bytes", "base64", "nope"]
        ),
        "__value__": jsonish,
    }
)


def _json(value: Any) -> bytes:
    return serialization.json_dumps(value).encode()  # kombu tags for bytes, dates, decimals


bodies = st.one_of(
    st.binary(max_size=300),
    jsonish.map(_json),
    tagged.map(_json),
    st.tuples(jsonish, jsonish, jsonish).map(lambda t: _json(list(t))),  # v2 shape, random parts
    st.tuples(st.lists(jsonish, max_size=3), st.dictionaries(st.text(max_size=5), tagged)).map(
        lambda t: _json([t[0], t[1], {"callbacks": t[1], "chord": t[0]}])
    ),
    st.dictionaries(st.sampled_from(["task", "id", "args", "kwargs", "eta"]), jsonish).map(_json),
    st.just(b"[" * 5000 + b"]" * 5000),  # deep nesting
)


@st.composite
def envelopes(draw: st.DrawFn) -> Envelope:
    return Envelope(
        body=draw(bodies),
        properties=Properties(
            content_type=draw(content_types),
            content_encoding=draw(content_encodings),
            headers=draw(headers),
            correlation_id=draw(st.none() | st.text(max_size=10)),
            reply_to=draw(st.none() | st.text(max_size=10)),
            priority=draw(st.none() | st.integers(0, 255)),
            delivery_mode=draw(st.none() | st.sampled_from([1, 2])),
        ),
        routing_key=draw(st.text(max_size=10)),
    )


OTHER_TASK_KEYS = [k for k in TASK_HEADER_KEYS if k not in ("task", "id", "compression")]


@st.composite
def task_envelopes(draw: st.DrawFn) -> Envelope:
    """Well-formed enough to reach the field checks: a task name, an id and a v2 or v1 body."""
    fields = draw(
        st.dictionaries(st.sampled_from(OTHER_TASK_KEYS), st.just(None), max_size=8).flatmap(
            lambda d: st.fixed_dictionaries({k: _header_value(k) for k in d})
        )
    )
    # mostly well-shaped args/kwargs/embed, so the header fields get checked too
    sig_keys = st.sampled_from(["callbacks", "errbacks", "chain", "chord", "group"])
    embed = draw(st.one_of(*[st.dictionaries(sig_keys, jsonish, max_size=3)] * 3, jsonish))
    args = draw(st.one_of(*[st.lists(jsonish, max_size=3)] * 3, jsonish))
    kwargs = draw(st.one_of(*[st.dictionaries(st.text(max_size=5), jsonish)] * 3, jsonish))
    if draw(st.booleans()):  # protocol v2: fields in the headers
        hdrs = {"task": "t.fuzz", "id": "id-1", **fields}
        body: Any = [args, kwargs, embed]
    else:  # protocol v1: everything in the body
        hdrs = {}
        body = {"task": "t.fuzz", "id": "id-1", "args": args, "kwargs": kwargs, **fields}
    return Envelope(
        body=_json(body),
        properties=Properties(
            content_type="application/json", content_encoding="utf-8", headers=hdrs
        ),
    )


accepts = st.sets(st.sampled_from(sorted(SAFE_ACCEPT)), min_size=1).map(frozenset)


def decodes_or_decode_error(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except DecodeError as exc:
        assert str(exc)  # the log line names what was wrong
        return exc


# ---------------------------------------------------------------------------- properties


@FUZZ
@given(env=envelopes(), accept=accepts)
def test_decode_task_returns_a_task_or_raises_decode_error(env: Envelope, accept: Any) -> None:
    out = decodes_or_decode_error(tasks.decode_task, env, accept=accept)
    if isinstance(out, tasks.TaskMessage):
        assert isinstance(out.task, str) and out.task
        assert isinstance(out.id, str) and out.id
        assert isinstance(out.args, list) and isinstance(out.kwargs, dict)


@FUZZ
@given(env=task_envelopes())
def test_decode_task_with_valid_names_and_random_fields_returns_or_raises_decode_error(
    env: Envelope,
) -> None:
    out = decodes_or_decode_error(tasks.decode_task, env)
    if isinstance(out, tasks.TaskMessage):
        assert (out.task, out.id) == ("t.fuzz", "id-1")
        assert all(t is None or t.tzinfo is not None for t in (out.eta, out.expires))
        is_expired(out.expires, utcnow())  # the decoded times are usable (the worker's check)
        tasks.encode_task(out)  # and the message can be sent on (e.g. a retry)


@FUZZ
@given(env=envelopes(), accept=accepts)
def test_decode_events_returns_events_or_raises_decode_error(env: Envelope, accept: Any) -> None:
    out = decodes_or_decode_error(events.decode_events, env, accept=accept)
    if isinstance(out, list):
        assert all(isinstance(e, dict) and isinstance(e["type"], str) for e in out)


@FUZZ
@given(env=envelopes(), accept=accepts)
def test_decode_control_request_and_reply_return_or_raise_decode_error(
    env: Envelope, accept: Any
) -> None:
    req = decodes_or_decode_error(control.decode_request, env, accept=accept)
    if isinstance(req, control.ControlRequest):
        assert isinstance(req.method, str) and req.method
        assert isinstance(req.matches("celery@host"), bool)
    reply = decodes_or_decode_error(control.decode_reply, env, accept=accept)
    assert isinstance(reply, dict | DecodeError)


@FUZZ
@given(
    body=bodies,
    content_type=content_types,
    content_encoding=content_encodings,
    accept=accepts,
)
def test_loads_with_any_content_type_and_encoding_returns_or_raises_decode_error(
    body: bytes, content_type: str | None, content_encoding: str | None, accept: Any
) -> None:
    decodes_or_decode_error(
        serialization.loads, body, content_type, content_encoding, accept=accept
    )


@FUZZ
@given(text=st.one_of(st.text(max_size=200), tagged.map(json.dumps), jsonish.map(json.dumps)))
def test_json_loads_returns_or_raises_decode_error(text: str) -> None:
    decodes_or_decode_error(serialization.json_loads, text)


@FUZZ
@given(
    body=st.binary(max_size=300),
    header=st.one_of(
        st.sampled_from(
            [
                "application/x-gzip",
                "gzip",
                "zlib",
                "application/x-bz2",
                "bzip2",
                "application/x-lzma",
                "xz",
                "brotli",
                "zstd",
                "application/zstd",
            ]
        ),
        st.text(max_size=30),
    ),
)
def test_decompress_with_any_header_returns_bytes_or_raises_decode_error(
    body: bytes, header: str
) -> None:
    out = decodes_or_decode_error(serialization.decompress, body, header)
    assert isinstance(out, bytes | DecodeError)


@FUZZ
@given(
    body=st.binary(max_size=2000),
    name=st.sampled_from(serialization.available_compressions()),
)
def test_every_available_compression_round_trips(body: bytes, name: str) -> None:
    packed, header = serialization.compress(body, name)
    assert serialization.decompress(packed, header) == body


@settings(max_examples=60, deadline=None, database=None)
@given(prefix=st.binary(max_size=40), size=st.integers(10, 4000))
def test_a_truncated_or_garbled_compressed_task_is_a_decode_error(prefix: bytes, size: int) -> None:
    body = zlib.compress(_json([[1] * size, {}, {}]))
    env = Envelope(
        body=prefix + body[len(prefix) : len(body) // 2],
        properties=Properties(
            content_type="application/json",
            content_encoding="utf-8",
            headers={"task": "t.x", "id": "1", "compression": "application/x-gzip"},
        ),
    )
    out = decodes_or_decode_error(tasks.decode_task, env)
    assert isinstance(out, DecodeError)


def test_the_strategies_reach_the_decoders_happy_paths() -> None:
    """A guard on the fuzzing itself: a well-formed message still decodes."""
    env = Envelope(
        body=_json([[1, 2], {"x": Decimal("1.5").to_eng_string()}, {"callbacks": None}]),
        properties=Properties(
            content_type="application/json",
            content_encoding="utf-8",
            headers={"task": "t.add", "id": "abc", "eta": datetime.now(UTC).isoformat()},
        ),
    )
    msg = tasks.decode_task(env)
    assert (msg.task, msg.id, msg.args) == ("t.add", "abc", [1, 2])
