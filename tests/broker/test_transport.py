"""The pika transport against the real broker: round trips, floats in headers, errors."""

from __future__ import annotations

import pytest

from amqptool.codec import tasks
from amqptool.codec.envelope import Envelope, Properties
from amqptool.errors import AuthenticationError, ChannelClosedError, ConnectionFailedError
from amqptool.settings import BrokerSettings
from amqptool.transport import Connection, UnroutableError


def connect(url: str) -> Connection:
    return Connection(BrokerSettings.from_url(url, environ={})).connect()


def test_publish_get_ack_round_trip_keeps_float_headers(broker_url: str, unique_name: str) -> None:
    with connect(broker_url) as conn:
        ch = conn.channel()
        ch.queue_declare(unique_name, auto_delete=True)
        msg = tasks.TaskMessage(task="t.sleep", args=[1], time_limit=2.5, soft_time_limit=1.25)
        env = tasks.encode_task(msg, routing_key=unique_name)
        env.headers["ratio"] = 0.75
        ch.publish(env)
        got = ch.get(unique_name)
        assert got is not None and got.delivery_tag == 1
        back = tasks.decode_task(got)
        assert (back.time_limit, back.soft_time_limit) == (2.5, 1.25)
        assert got.headers["ratio"] == 0.75
        assert got.properties.content_type == "application/json"
        ch.ack(got.delivery_tag)
        assert ch.queue_declare(unique_name, passive=True).message_count == 0
        ch.queue_delete(unique_name)


def test_broker_errors_keep_reply_code_and_text(broker_url: str, unique_name: str) -> None:
    with connect(broker_url) as conn:
        ch = conn.channel()
        with pytest.raises(ChannelClosedError) as err:
            ch.queue_declare(unique_name, passive=True)
        assert err.value.reply_code == 404
        assert "NOT_FOUND" in str(err.value) and unique_name in str(err.value)


def test_unroutable_mandatory_publish_is_reported_with_confirms(broker_url: str) -> None:
    with connect(broker_url) as conn:
        ch = conn.channel(confirm=True)
        env = Envelope(
            body=b"x",
            properties=Properties(content_type="text/plain"),
            exchange="amq.direct",
            routing_key="nobody-bound-here",
        )
        with pytest.raises(UnroutableError, match="unroutable"):
            ch.publish(env, mandatory=True)


def test_unreachable_broker_is_a_connection_error_with_code_70() -> None:
    with pytest.raises(ConnectionFailedError) as err:
        connect("amqp://guest:guest@127.0.0.1:1//")
    assert err.value.exit_code == 70


def test_wrong_password_is_an_auth_error_without_the_password(broker_vhost: str) -> None:
    with pytest.raises(AuthenticationError) as err:
        connect(f"amqp://guest:wrong-pw@127.0.0.1:5672/{broker_vhost}")
    assert err.value.exit_code == 71 and "wrong-pw" not in str(err.value)


def test_failover_moves_to_the_next_url(broker_url: str) -> None:
    conn = connect("amqp://guest:guest@127.0.0.1:1//;" + broker_url)
    try:
        assert conn.endpoint.port == 5672
    finally:
        conn.close()
