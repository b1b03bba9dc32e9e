"""Failover across ';'-separated broker URLs, with a second broker node whose app we stop.

The main broker (5672) is shared with other tests and is never stopped: it plays the
"always there" side, the second node plays the broker that goes away and comes back.
"""

from __future__ import annotations

import pytest

from amqptool.codec.envelope import Envelope, Properties
from amqptool.errors import ConnectionFailedError
from amqptool.settings import BrokerSettings
from amqptool.transport import Connection
from tests import harness
from tests.brokers import SecondBroker, failover_url, free_port

pytestmark = pytest.mark.faults


def settings(url: str) -> BrokerSettings:
    return BrokerSettings.from_url(url, environ={})


def round_trip(conn: Connection, queue: str) -> bytes:
    """Declare, publish, get and delete: proves the connection really works."""
    ch = conn.channel(confirm=True)
    ch.queue_declare(queue, auto_delete=True)
    ch.publish(
        Envelope(
            body=queue.encode(),
            properties=Properties(content_type="text/plain", content_encoding="utf-8"),
            routing_key=queue,
        )
    )
    got = ch.get(queue, no_ack=True)
    ch.queue_delete(queue)
    ch.close()
    assert got is not None
    return got.body


def test_a_stopped_first_broker_fails_over_to_the_second(
    broker_b: SecondBroker, broker_url: str, unique_name: str
) -> None:
    url = failover_url(broker_b.url(), broker_url)
    with broker_b.app_stopped(), Connection(settings(url)).connect() as conn:
        assert conn.endpoint.port == 5672
        assert round_trip(conn, unique_name) == unique_name.encode()


def test_a_dead_first_address_fails_over_to_the_second_node(
    broker_b: SecondBroker, unique_name: str
) -> None:
    dead = f"amqp://guest:guest@127.0.0.1:{free_port()}//"
    with Connection(settings(failover_url(dead, broker_b.url()))).connect() as conn:
        assert conn.endpoint.port == broker_b.amqp_port
        assert round_trip(conn, unique_name) == unique_name.encode()


def test_when_every_broker_is_down_the_error_is_a_connection_error(
    broker_b: SecondBroker,
) -> None:
    dead = f"amqp://guest:guest@127.0.0.1:{free_port()}//"
    with broker_b.app_stopped(), pytest.raises(ConnectionFailedError) as err:
        Connection(settings(failover_url(broker_b.url(), dead))).connect()
    assert err.value.exit_code == 70 and "guest:guest" not in str(err.value)


def test_a_live_connection_moves_to_the_second_broker_and_a_new_one_returns_to_the_first(
    broker_b: SecondBroker, broker_url: str, unique_name: str
) -> None:
    url = failover_url(broker_b.url(), broker_url)
    conn = Connection(settings(url), heartbeat=5).connect()
    try:
        assert conn.endpoint.port == broker_b.amqp_port
        ch = conn.channel()
        durable = f"{unique_name}-durable"
        ch.queue_declare(durable, durable=True)
        ch.publish(
            Envelope(
                body=b"survives",
                properties=Properties(content_type="text/plain", delivery_mode=2),
                routing_key=durable,
            )
        )
        with broker_b.app_stopped():

            def lost() -> bool:
                try:
                    conn.process_events(0.1)
                except ConnectionFailedError:
                    return True
                return False

            harness.wait_until(lost, timeout=20, message="the connection to notice the stop")
            conn.connect_with_retry(max_retries=3, interval_start=0.1)
            assert conn.endpoint.port == 5672
            assert round_trip(conn, unique_name) == unique_name.encode()
        conn.close()
        with Connection(settings(url)).connect() as back:
            assert back.endpoint.port == broker_b.amqp_port
            ch = back.channel()
            got = ch.get(durable, no_ack=True)
            assert got is not None and got.body == b"survives"
            ch.queue_delete(durable)
    finally:
        conn.close()


def test_closing_all_connections_on_one_node_is_seen_as_a_lost_connection(
    broker_b: SecondBroker,
) -> None:
    with Connection(settings(broker_b.url()), name="amqptool-test-closeme").connect() as conn:
        harness.wait_until(
            lambda: any(name == "amqptool-test-closeme" for _, name in broker_b.connections()),
            timeout=10,
            message="the broker to list the connection",
        )
        assert broker_b.close_connections("amqptool-test-closeme") == 1

        def lost() -> ConnectionFailedError | None:
            try:
                conn.process_events(0.1)
            except ConnectionFailedError as exc:
                return exc
            return None

        error = harness.wait_until(lost, timeout=10, message="the forced close to reach the client")
        assert "320" in str(error) and "closed by test" in str(error)
        conn.connect_with_retry(max_retries=3, interval_start=0.1)
        assert conn.is_open
