"""Publisher confirms, pipelined: what returns is in the queue; what the broker refuses raises."""

from __future__ import annotations

import pytest

from amqptool.client import Client
from amqptool.codec.envelope import Envelope, Properties
from amqptool.errors import ChannelClosedError, MessageTooLargeError, PublishError
from amqptool.settings import BrokerSettings
from amqptool.transport import ConfirmedPublisher, Connection, UnroutableError


def connect(url: str) -> Connection:
    return Connection(BrokerSettings.from_url(url, environ={})).connect()


def message(body: bytes, routing_key: str, exchange: str = "") -> Envelope:
    props = Properties(content_type="text/plain", delivery_mode=2)
    return Envelope(body=body, properties=props, exchange=exchange, routing_key=routing_key)


def depth(url: str, queue: str) -> int:
    with connect(url) as conn:
        return conn.channel().queue_declare(queue, passive=True).message_count


def test_pipelined_publishes_are_all_confirmed_and_in_the_queue(
    broker_url: str, unique_name: str
) -> None:
    with connect(broker_url) as conn:
        conn.channel().queue_declare(unique_name, durable=True)
        pub = ConfirmedPublisher(conn)
        items = [pub.publish(message(b"m%d" % i, unique_name)) for i in range(3000)]
        assert pub.in_flight > 0  # nothing waited yet: they are pipelined
        pub.wait(timeout=60)
        assert all(item.ok for item in items) and pub.in_flight == 0
    assert depth(broker_url, unique_name) == 3000


def test_unroutable_mandatory_fails_alone(broker_url: str, unique_name: str) -> None:
    with connect(broker_url) as conn:
        conn.channel().queue_declare(unique_name, auto_delete=False)
        pub = ConfirmedPublisher(conn)
        before = pub.publish(message(b"a", unique_name), mandatory=True)
        lost = pub.publish(message(b"b", "nobody-" + unique_name), mandatory=True)
        after = pub.publish(message(b"c", unique_name), mandatory=True)
        with pytest.raises(UnroutableError, match="312 NO_ROUTE"):
            pub.wait([before, lost, after], timeout=30)
        assert before.ok and after.ok and not lost.ok
        conn.channel().queue_delete(unique_name)


def test_a_nack_names_the_reason(broker_url: str, unique_name: str) -> None:
    with connect(broker_url) as conn:
        ch = conn.channel()
        ch.queue_declare(unique_name, arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
        pub = ConfirmedPublisher(conn)
        first = pub.publish(message(b"1", unique_name))
        second = pub.publish(message(b"2", unique_name))
        with pytest.raises(PublishError, match="nacked"):
            pub.wait(timeout=30)
        assert first.ok and second.error is not None
        ch.queue_delete(unique_name)


def test_a_channel_closed_under_unconfirmed_messages_republishes_the_neighbours(
    broker_url: str, unique_name: str
) -> None:
    with connect(broker_url) as conn:
        conn.channel().queue_declare(unique_name)
        pub = ConfirmedPublisher(conn)
        good = [pub.publish(message(b"g%d" % i, unique_name)) for i in range(200)]
        bad = pub.publish(message(b"x", "k", exchange="missing-" + unique_name))
        good += [pub.publish(message(b"h%d" % i, unique_name)) for i in range(200)]
        with pytest.raises(ChannelClosedError, match="404"):
            pub.wait(timeout=30)
        assert bad.error is not None and all(item.ok for item in good)
        got = conn.channel().queue_delete(unique_name)
    assert got >= 400  # each good one at least once (a resent one may have arrived before)


def test_oversized_task_is_an_error_at_the_caller_and_nothing_is_sent(
    broker_url: str, unique_name: str
) -> None:
    url = broker_url + ("&" if "?" in broker_url else "?") + "max_message_size=2000"
    with Client(url=url) as client:
        with pytest.raises(MessageTooLargeError, match=r"is \d+ bytes, the broker accepts 2000"):
            client.send_task("t.big", args=["x" * 5000], queue=unique_name)
        client.send_task("t.small", args=[1], queue=unique_name)
    assert depth(broker_url, unique_name) == 1


def test_send_task_and_send_many_return_once_the_broker_has_the_messages(
    broker_url: str, unique_name: str
) -> None:
    with Client(url=broker_url) as client:
        client.send_task("t.one", args=[0], queue=unique_name)
        assert depth(broker_url, unique_name) == 1
        results = client.send_many(
            [("t.many", [i], {}, {"queue": unique_name}) for i in range(2500)]
        )
        assert len({r.id for r in results}) == 2500
        assert depth(broker_url, unique_name) == 2501
