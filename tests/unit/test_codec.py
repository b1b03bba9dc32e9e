"""The wire codec against the golden vectors captured from Celery 5.7 (docs/protocol.md)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from amqptool.codec import control, events, results, serialization, tasks
from amqptool.codec.envelope import Envelope, Properties
from amqptool.errors import DecodeError
from tests import vectors


def envelope(vector: dict[str, Any]) -> Envelope:
    p = dict(vector["properties"])
    props = Properties(headers=dict(vector.get("headers") or {}), **p)
    return Envelope(
        body=json.dumps(vector["body"]).encode(),
        properties=props,
        exchange=vector.get("exchange", ""),
        routing_key=vector.get("routing_key", "celery"),
    )


def test_plain_v2_message_decodes_to_its_fields() -> None:
    msg = tasks.decode_task(envelope(vectors.PLAIN_ADD))
    assert (msg.protocol, msg.task, msg.args, msg.kwargs) == (2, "proto_app.add", [2, 3], {})
    assert msg.id == msg.correlation_id == msg.root_id == "04f87bf7-2f27-4215-b5ce-f8ae08df6cce"
    assert msg.reply_to == "e8ecb041-74f6-3c2e-a75f-0c1e7cb0ea79"
    assert msg.eta is None and msg.expires is None and msg.callbacks is None


def test_full_v2_message_keeps_eta_expires_timelimit_shadow_and_links() -> None:
    msg = tasks.decode_task(envelope(vectors.FULL_ADD))
    assert msg.eta == datetime(2026, 11, 21, 9, 59, 20, 531838, tzinfo=UTC)
    assert msg.expires == datetime(2026, 11, 21, 10, 1, 17, 531838, tzinfo=UTC)
    assert (msg.time_limit, msg.soft_time_limit) == (30.0, 20.0)  # [hard, soft] order
    assert msg.shadow == "add-alias" and msg.display_name == "add-alias"
    assert msg.priority == 5
    assert msg.callbacks is not None and msg.callbacks[0]["args"] == [10]
    assert msg.errbacks is not None and msg.errbacks[0]["immutable"] is True
    assert msg.extra_headers == {"x_custom": "hi"}


def test_plain_v2_message_re_encodes_to_the_captured_headers_and_body() -> None:
    msg = tasks.decode_task(envelope(vectors.PLAIN_ADD))
    out = tasks.encode_task(msg)
    assert out.headers == vectors.PLAIN_ADD["headers"]
    assert json.loads(out.body) == vectors.PLAIN_ADD["body"]
    assert out.properties.as_dict() | {"headers": None} == vectors.PLAIN_ADD["properties"] | {
        "headers": None
    }


def test_full_v2_message_re_encodes_with_the_same_headers() -> None:
    msg = tasks.decode_task(envelope(vectors.FULL_ADD))
    out = tasks.encode_task(msg)
    assert out.headers == vectors.FULL_ADD["headers"]
    assert json.loads(out.body) == vectors.FULL_ADD["body"]
    assert out.properties.expiration == "0"  # the captured expiry is in the past now


def test_chain_steps_are_kept_in_wire_order() -> None:
    env = envelope(vectors.PLAIN_ADD)
    env.body = json.dumps(vectors.CHAIN_FIRST_BODY).encode()
    msg = tasks.decode_task(env)
    assert msg.chain is not None
    assert [s["options"]["task_id"][:8] for s in msg.chain] == ["ff37f644", "e07adacf"]


def test_v1_messages_from_celery5_and_celery1_decode() -> None:
    v5 = tasks.decode_task(envelope(vectors.V1_CELERY5))
    assert (v5.protocol, v5.args, v5.reply_to) == (
        1,
        [20, 22],
        "165a9caf-7646-3172-9413-5b7e8baa0a02",
    )
    assert v5.expires is not None and v5.expires.tzinfo is not None
    v1 = tasks.decode_task(envelope(vectors.V1_CELERY1))
    assert v1.eta == datetime(2026, 11, 21, 10, 1, 53, 70898, tzinfo=UTC)  # naive -> UTC


def test_minimal_v2_headers_are_enough() -> None:
    env = Envelope(
        body=b"[[5, 5], {}, {}]",
        properties=Properties(
            content_type="application/json",
            content_encoding="utf-8",
            headers={"task": "t.add", "id": "abc"},
        ),
    )
    msg = tasks.decode_task(env)
    assert (msg.task, msg.id, msg.args, msg.retries) == ("t.add", "abc", [5, 5], 0)


@pytest.mark.parametrize(
    ("headers", "body", "error"),
    [
        ({}, b'{"hello": 1}', tasks.NotATaskMessage),
        ({}, b"[1, 2, 3]", tasks.NotATaskMessage),
        ({"task": "a", "id": "b"}, b"[[], [], {}]", tasks.InvalidTaskMessage),
        ({"task": "a", "id": "b"}, b'{"x": 1}', tasks.InvalidTaskMessage),
        ({"task": "a", "id": "b", "eta": "tomorrow"}, b"[[], {}, {}]", tasks.InvalidTaskMessage),
        ({"task": "a", "id": "b"}, b"[[], {}", DecodeError),
        ({"task": "a", "id": "b"}, b"\xff\xfe", DecodeError),
    ],
)
def test_bad_task_messages_raise_only_decode_errors(
    headers: dict[str, Any], body: bytes, error: type[Exception]
) -> None:
    env = Envelope(
        body=body,
        properties=Properties(
            content_type="application/json", content_encoding="utf-8", headers=headers
        ),
    )
    with pytest.raises(error):
        tasks.decode_task(env)


def test_pickle_is_refused_unless_accepted() -> None:
    import pickle

    body = pickle.dumps([[1], {}, {}])
    env = Envelope(
        body=body,
        properties=Properties(
            content_type="application/x-python-serialize",
            content_encoding="binary",
            headers={"task": "a", "id": "b"},
        ),
    )
    with pytest.raises(DecodeError, match="not accepted"):
        tasks.decode_task(env)
    accept = serialization.normalize_accept(["json", "pickle"])
    assert tasks.decode_task(env, accept=accept).args == [1]


def test_kombu_tagged_json_values_round_trip() -> None:
    value = {
        "when": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "amount": Decimal("12.50"),
        "id": uuid.UUID("12345678123456781234567812345678"),
        "raw": b"\x00\xff",
        "text": b"hello",
    }
    text = serialization.json_dumps(value)
    assert '"__type__": "base64"' in text and '"__type__": "bytes"' in text
    assert serialization.json_loads(text) == value


@pytest.mark.parametrize("name", ["zlib", "gzip", "bzip2", "lzma"])
def test_compression_round_trips_and_names_kombus_mime_type(name: str) -> None:
    msg = tasks.TaskMessage(task="t.add", args=[1, 2])
    env = tasks.encode_task(msg, compression=name)
    assert env.headers["compression"].startswith("application/")
    assert tasks.decode_task(env).args == [1, 2]


@pytest.mark.parametrize("serializer", ["msgpack", "yaml"])
def test_optional_serializers_round_trip(serializer: str) -> None:
    msg = tasks.TaskMessage(task="t.add", args=[1, "x"], kwargs={"k": [1]})
    env = tasks.encode_task(msg, serializer=serializer)
    accept = serialization.normalize_accept([serializer])
    back = tasks.decode_task(env, accept=accept)
    assert (back.args, back.kwargs) == ([1, "x"], {"k": [1]})


def test_result_bodies_match_the_captured_shape() -> None:
    body = results.result_body(
        "04f87bf7-2f27-4215-b5ce-f8ae08df6cce",
        "SUCCESS",
        5,
        date_done=datetime(2026, 11, 21, 9, 59, 17, 528926, tzinfo=UTC),
    )
    assert body == vectors.RESULT_SUCCESS
    failure = results.result_body("x", "FAILURE", KeyError("nope 7"))
    assert failure["result"] == vectors.RESULT_FAILURE["result"]
    env = results.encode_result(body, reply_to="q1", correlation_id="c1")
    assert (env.exchange, env.routing_key, env.properties.delivery_mode) == ("", "q1", 1)
    assert env.properties.content_type == "application/json"


def test_exceptions_decode_to_the_same_type_or_a_lookalike() -> None:
    exc = results.decode_exception(vectors.RESULT_FAILURE["result"])
    assert isinstance(exc, KeyError) and exc.args == ("nope 7",)
    odd = results.decode_exception(
        {"exc_type": "Weird", "exc_message": ["m"], "exc_module": "no.such.module"}
    )
    assert type(odd).__name__ == "Weird" and isinstance(odd, Exception)
    sneaky = results.decode_exception(
        {"exc_type": "system", "exc_message": ["echo hi"], "exc_module": "os"}
    )
    assert type(sneaky).__name__ == "system"  # os.system is not an exception: never called


def test_unserializable_exception_args_become_reprs() -> None:
    encoded = results.encode_exception(ValueError(object()))
    assert encoded["exc_type"] == "ValueError"
    assert isinstance(encoded["exc_message"][0], str)


def test_events_single_and_batched_decode() -> None:
    single = events.decode_events(
        Envelope(
            body=json.dumps(vectors.HEARTBEAT).encode(),
            properties=Properties(content_type="application/json"),
        )
    )
    assert single[0]["type"] == "worker-heartbeat"
    batch = events.decode_events(
        Envelope(
            body=json.dumps(vectors.TASK_MULTI).encode(),
            properties=Properties(content_type="application/json"),
        )
    )
    assert [e["type"] for e in batch] == ["task-received", "task-started"]


def test_made_events_carry_the_common_fields() -> None:
    clock = events.LamportClock()
    ev = events.make_event("task-started", hostname="w@h", clock=clock.forward(), uuid="u")
    assert set(ev) >= {"type", "hostname", "timestamp", "utcoffset", "pid", "clock", "uuid"}
    env = events.encode_event(ev)
    assert (env.exchange, env.routing_key) == ("celeryev", "task.started")
    assert env.headers == {"hostname": "w@h"}
    assert clock.adjust(10) == 11 and clock.forward() == 12


def test_control_request_round_trip_and_matching() -> None:
    env = Envelope(
        body=json.dumps(vectors.PING_REQUEST).encode(),
        properties=Properties(
            content_type="application/json", headers={"clock": 1, "expires": 1795255205.796705}
        ),
    )
    req = control.decode_request(env)
    assert req.method == "ping" and req.wants_reply and req.matches("any@node")
    again = control.decode_request(control.encode_request(req, clock=3))
    assert again == req
    cast = control.decode_request(
        Envelope(
            body=json.dumps(vectors.REVOKE_CAST).encode(),
            properties=Properties(content_type="application/json"),
        )
    )
    assert not cast.wants_reply
    assert control.ControlRequest("ping", destination=["a@x"]).matches("a@x")
    assert not control.ControlRequest("ping", destination=["a@x"]).matches("b@x")
    assert control.ControlRequest("ping", pattern="w*", matcher="glob").matches("w1@x")
    assert control.ControlRequest("ping", pattern="^w\\d", matcher="pcre").matches("w1@x")


def test_control_reply_has_ticket_and_int_clock_headers() -> None:
    env = control.encode_reply(
        "w@h",
        {"ok": "pong"},
        ticket="t1",
        clock=7,
        reply_to={"exchange": "reply.celery.pidbox", "routing_key": "o"},
    )
    assert env.headers == {"ticket": "t1", "clock": 7}
    assert control.decode_reply(env) == {"w@h": {"ok": "pong"}}
