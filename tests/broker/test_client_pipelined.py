"""``Client(confirm="pipelined")`` against the real broker: send_task does not wait for its
confirm, yet nothing is lost and nothing the broker refuses goes unreported.

A full ``x-max-length`` queue with ``x-overflow: reject-publish`` makes the broker nack; a
frozen TCP proxy (tests/netfakes.py) holds messages the broker never sees, then drops the
connection: those must be sent again on the next connection.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from amqptool.client import Client
from amqptool.codec import results
from amqptool.codec.envelope import Envelope
from amqptool.errors import (
    ChannelClosedError,
    ConnectionFailedError,
    MessageTooLargeError,
    PublishError,
)
from amqptool.settings import BrokerSettings
from amqptool.transport import Channel, Connection
from tests import harness
from tests.netfakes import TcpProxy


@pytest.fixture
def channel(broker_url: str) -> Iterator[Channel]:
    with Connection(BrokerSettings.from_url(broker_url, environ={})).connect() as conn:
        yield conn.channel()


def drain(ch: Channel, queue: str) -> list[Envelope]:
    """Every message in ``queue`` now (taken, acked)."""
    got: list[Envelope] = []
    while (env := ch.get(queue, no_ack=True)) is not None:
        got.append(env)
    return got


def full_queue(ch: Channel, name: str) -> None:
    """A queue that holds one message and makes the broker nack every other."""
    ch.queue_declare(
        name, durable=True, arguments={"x-max-length": 1, "x-overflow": "reject-publish"}
    )


def test_every_message_arrives_once_and_flush_returns_when_all_are_confirmed(
    broker_url: str, channel: Channel, unique_name: str
) -> None:
    with Client(url=broker_url, confirm="pipelined") as client:
        sent = [client.send_task("t.piped", [i], queue=unique_name).id for i in range(2500)]
        client.flush()
        assert client.unconfirmed == 0
        assert channel.queue_declare(unique_name, passive=True).message_count == 2500
    got = drain(channel, unique_name)
    assert sorted(env.headers["id"] for env in got) == sorted(sent)  # each exactly once
    assert [env.headers["argsrepr"] for env in got[:3]] == ["(0,)", "(1,)", "(2,)"]
    channel.queue_delete(unique_name)


def test_nacked_tasks_raise_on_flush_naming_them_once_and_again_on_their_get(
    broker_url: str, channel: Channel, unique_name: str
) -> None:
    full_queue(channel, unique_name)
    with Client(url=broker_url, confirm="pipelined") as client:
        kept = client.send_task("t.kept", queue=unique_name)
        refused = [client.send_task("t.refused", [i], queue=unique_name) for i in range(2)]
        with pytest.raises(PublishError, match="did not take 2 tasks") as err:
            client.flush()
        line = str(err.value)
        assert "\n" not in line and kept.id not in line
        assert all(r.id in line for r in refused) and "nacked" in line
        client.flush()  # reported once
        with pytest.raises(PublishError, match=f"task {refused[0].id}: .*nacked"):
            refused[0].get(timeout=10)
        with pytest.raises(PublishError, match=refused[1].id):
            client.AsyncResult(refused[1].id).get(timeout=10)  # a handle made by id too
    assert [env.headers["id"] for env in drain(channel, unique_name)] == [kept.id]
    channel.queue_delete(unique_name)


def test_a_nack_raises_at_a_later_send_task_which_then_sends_nothing(
    broker_url: str, channel: Channel, unique_name: str
) -> None:
    full = unique_name + "-full"
    full_queue(channel, full)
    with Client(url=broker_url, confirm="pipelined") as client:
        client.send_task("t.kept", queue=full)
        refused = client.send_task("t.refused", queue=full)
        went = 0
        with pytest.raises(PublishError, match=f"task {refused.id}: .*nacked"):
            for i in range(20_000):  # the nack is read within a few calls of its arrival
                client.send_task("t.other", [i], queue=unique_name)
                went += 1
        client.flush()
    assert len(drain(channel, unique_name)) == went  # the call that raised sent nothing
    channel.queue_delete(unique_name)
    channel.queue_delete(full)


def test_leaving_the_with_block_raises_what_the_broker_refused(
    broker_url: str, channel: Channel, unique_name: str
) -> None:
    full_queue(channel, unique_name)
    refused: list[str] = []

    def send_and_leave() -> None:
        with Client(url=broker_url, confirm="pipelined") as client:
            client.send_task("t.kept", queue=unique_name)
            refused.append(client.send_task("t.refused", queue=unique_name).id)

    with pytest.raises(PublishError, match="nacked") as err:
        send_and_leave()
    assert refused[0] in str(err.value)
    channel.queue_delete(unique_name)


def test_an_oversized_task_raises_at_once_naming_it_and_sends_nothing(
    broker_url: str, channel: Channel, unique_name: str
) -> None:
    url = broker_url + ("&" if "?" in broker_url else "?") + "max_message_size=2000"
    with Client(url=url, confirm="pipelined") as client:
        with pytest.raises(MessageTooLargeError, match=r"task [-0-9a-f]{36} \('t.big'\)"):
            client.send_task("t.big", ["x" * 5000], queue=unique_name)
        small = client.send_task("t.small", [1], queue=unique_name)
    assert [env.headers["id"] for env in drain(channel, unique_name)] == [small.id]
    channel.queue_delete(unique_name)


def test_get_waits_for_the_confirm_then_reads_the_result(
    broker_url: str, channel: Channel, unique_name: str
) -> None:
    with Client(url=broker_url, confirm="pipelined") as client:
        r = client.send_task("t.add", (2, 3), queue=unique_name)
        env = harness.wait_until(
            lambda: channel.get(unique_name, no_ack=True), timeout=10, message="the task"
        )
        assert isinstance(env, Envelope) and env.headers["id"] == r.id
        body = results.result_body(r.id, "SUCCESS", 5)
        reply_to = env.properties.reply_to
        assert reply_to == client.oid
        channel.publish(results.encode_result(body, reply_to=reply_to, correlation_id=r.id))
        assert r.get(timeout=10) == 5
        assert client.unconfirmed == 0
    channel.queue_delete(unique_name)


def test_messages_a_lost_connection_swallowed_are_sent_again_on_the_next(
    broker_url: str, channel: Channel, unique_name: str
) -> None:
    with TcpProxy(5672) as proxy:
        # First endpoint the proxy; once it is gone the client fails over to the broker.
        client = Client(url=f"{proxy.url(broker_url)};{broker_url}", confirm="pipelined")
        with client:
            before = [client.send_task("t.before", [i], queue=unique_name).id for i in range(10)]
            client.flush()
            proxy.freeze()  # what the client writes now never reaches the broker
            held = [client.send_task("t.held", [i], queue=unique_name).id for i in range(20)]
            assert client.unconfirmed == 20
            proxy.close()  # and the connection is lost with them
            client.flush()
            assert client.unconfirmed == 0
    got = [env.headers["id"] for env in drain(channel, unique_name)]
    assert sorted(got) == sorted(before + held)  # none lost, none twice (none had arrived)
    channel.queue_delete(unique_name)


def test_unconfirmed_tasks_are_named_when_the_broker_stays_away(
    broker_url: str, channel: Channel, unique_name: str
) -> None:
    with TcpProxy(5672) as proxy:
        client = Client(url=proxy.url(broker_url), confirm="pipelined")
        client.send_task("t.before", queue=unique_name)
        client.flush()
        proxy.freeze()
        held = client.send_task("t.held", queue=unique_name)
        proxy.close()
        with pytest.raises(ConnectionFailedError, match=f"kept to send again: {held.id}"):
            client.flush()
        assert client.unconfirmed == 1
        with pytest.raises(ConnectionFailedError, match=f"dropped.*closing: {held.id}"):
            client.close()
        assert client.unconfirmed == 0
    assert len(drain(channel, unique_name)) == 1
    channel.queue_delete(unique_name)


def test_a_message_reaches_the_queue_with_no_call_after_it_also_after_a_close(
    broker_url: str, channel: Channel, unique_name: str
) -> None:
    channel.queue_declare(unique_name, durable=True)
    client = Client(url=broker_url, confirm="pipelined")
    for sent in (1, 2):  # the second time on the client used again after close()
        client.send_task("t.lone", queue=unique_name)  # its writer thread writes it
        harness.wait_until(
            lambda n=sent: channel.queue_declare(unique_name, passive=True).message_count == n,
            timeout=10,
            message=f"{sent} message(s) in the queue",
        )
        client.close()
    channel.queue_delete(unique_name)


def test_a_task_to_a_missing_exchange_is_named_and_its_neighbours_still_arrive(
    broker_url: str, channel: Channel, unique_name: str
) -> None:
    channel.queue_declare(unique_name, durable=True)
    errors: list[ChannelClosedError] = []
    with Client(url=broker_url, confirm="pipelined") as client:
        good = [client.send_task("t.good", [i], queue=unique_name).id for i in range(50)]
        lost = client.send_task("t.lost", exchange="missing-" + unique_name, routing_key="k")
        for i in range(200):  # the refusal comes at one of these calls (it sends nothing)...
            try:
                good.append(client.send_task("t.good", [i], queue=unique_name).id)
            except ChannelClosedError as exc:
                errors.append(exc)
        try:
            client.flush()  # ... or here
        except ChannelClosedError as exc:
            errors.append(exc)
        client.flush()
    assert len(errors) == 1 and f"task {lost.id}: " in str(errors[0])
    assert errors[0].reply_code == 404
    got = {env.headers["id"] for env in drain(channel, unique_name)}
    assert got == set(good)  # each at least once (one resent may have arrived before)
    channel.queue_delete(unique_name)


def test_the_window_bounds_what_is_unconfirmed(
    broker_url: str, channel: Channel, unique_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from amqptool.client import sending

    monkeypatch.setattr(sending, "CONFIRM_WINDOW", 8)
    seen: list[int] = []
    with Client(url=broker_url, confirm="pipelined") as client:
        for i in range(60):
            client.send_task("t.piped", [i], queue=unique_name)
            seen.append(client.unconfirmed)
        client.flush()
    assert max(seen) <= 8  # never more than the window in flight
    assert len(drain(channel, unique_name)) == 60
    channel.queue_delete(unique_name)
